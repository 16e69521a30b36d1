"""The layout of the spreadsheets units without a system of their own fill in: one sheet per
kind of row, its columns in order, with Vietnamese headers. The templates are written from
it (services.ingest.templates) and uploads are read by it (services.ingest.imports), so a
column cannot be written in one place and read from another."""

from __future__ import annotations

from dataclasses import dataclass

from openpyxl.utils import get_column_letter

HEADER_ROW = 1  # data starts on the next row
INSTRUCTIONS, LISTS = "Hướng dẫn", "Danh mục"
UNIT_CELL = "B3"  # on the instructions sheet: the unit the template was made for

# A task's status as a unit reads it in a list, and as the contract names it.
STATUSES = {"not_started": "Chưa triển khai", "in_progress": "Đang thực hiện", "completed": "Hoàn thành",
            "blocked": "Vướng mắc", "cancelled": "Dừng thực hiện"}


@dataclass(frozen=True)
class Column:
    key: str
    header: str            # as the sheet shows it
    english: str           # in error messages
    value: str = "text"    # text, long, date, number, progress, status, programme, unit, units, indicator,
    #                        period, cycle: how a cell is read and which list validates it
    required: bool = False
    width: int = 18
    given: bool = False    # filled in by the template (for information, or the row's key), not by the unit


@dataclass(frozen=True)
class Sheet:
    title: str
    slug: str              # ASCII: the event ids made of its rows name it
    columns: tuple[Column, ...]

    def letter(self, key: str) -> str:
        """The column letter of field `key`."""
        return get_column_letter(1 + [c.key for c in self.columns].index(key))

    def column(self, key: str) -> Column:
        return next(c for c in self.columns if c.key == key)


PLANS = Sheet("Kế hoạch", "plan", (
    Column("plan_id", "Mã kế hoạch", "plan code", required=True, width=16),
    Column("programme", "Chương trình", "programme", "programme", required=True, width=12),
    Column("title", "Tên kế hoạch", "plan title", required=True, width=50),
    Column("document_no", "Số văn bản", "document number", required=True),
    Column("issued_on", "Ngày ban hành", "issue date", "date", required=True, width=14),
))
TASKS = Sheet("Nhiệm vụ", "task", (
    Column("plan_id", "Mã kế hoạch", "plan code", required=True, width=16),
    Column("task_id", "Mã nhiệm vụ", "task code", required=True),
    Column("title", "Tên nhiệm vụ", "task title", required=True, width=50),
    Column("lead_unit", "Đơn vị chủ trì", "lead unit", "unit", required=True, width=16),
    Column("lead_person", "Người chịu trách nhiệm", "responsible person", required=True, width=24),
    Column("lead_position", "Chức vụ", "position", required=True, width=20),
    Column("coordinating_units", "Đơn vị phối hợp (cách nhau bởi dấu phẩy)", "coordinating units", "units",
           width=24),
    Column("due_date", "Hạn hoàn thành", "completion date", "date", required=True, width=14),
))
MILESTONES = Sheet("Lộ trình", "milestone", (
    Column("task_id", "Mã nhiệm vụ", "task code", required=True),
    Column("title", "Mốc lộ trình", "milestone", required=True, width=50),
    Column("due_date", "Hạn", "milestone date", "date", required=True, width=14),
))
PROGRESS = Sheet("Tiến độ", "progress", (
    Column("task_id", "Mã nhiệm vụ", "task code", required=True, given=True),
    Column("programme", "Chương trình", "programme", "programme", required=True, width=12, given=True),
    Column("title", "Tên nhiệm vụ", "task title", width=50, given=True),
    Column("due_date", "Hạn hoàn thành", "completion date", "date", width=14, given=True),
    Column("current_status", "Trạng thái hiện tại", "current status", width=18, given=True),
    Column("current_progress", "Tiến độ hiện tại (%)", "current progress", "number", width=12, given=True),
    Column("status", "Trạng thái mới", "new status", "status", required=True, width=18),
    Column("progress", "Tiến độ (%)", "progress", "progress", required=True, width=12),
    Column("as_of", "Tính đến ngày", "as of", "date", required=True, width=14),
    Column("note", "Ghi chú", "note", "long", width=40),
    Column("reporter", "Người báo cáo", "reported by", required=True, width=24),
    Column("reporter_position", "Chức vụ", "position", required=True, width=20),
))
INDICATORS = Sheet("Chỉ tiêu", "indicator", (
    Column("indicator", "Mã chỉ tiêu", "indicator code", "indicator", required=True, width=12, given=True),
    Column("name", "Tên chỉ tiêu", "indicator name", width=50, given=True),
    Column("measure", "Đơn vị tính", "measure", width=12, given=True),
    Column("period", "Kỳ số liệu (2021, 2021-H1, 2021-Q2)", "period", "period", required=True, width=16),
    Column("value", "Giá trị", "value", "number", required=True, width=12),
    Column("note", "Ghi chú", "note", "long", width=40),
    Column("reported_on", "Ngày báo cáo", "report date", "date", required=True, width=14),
))
REPORTS = Sheet("Báo cáo", "report", (
    Column("cycle", "Kỳ báo cáo", "cycle", "cycle", required=True, width=12),
    Column("document_no", "Số văn bản", "document number", required=True),
    Column("sent_on", "Ngày gửi", "date sent", "date", required=True, width=14),
    Column("summary", "Tóm tắt kết quả", "summary", "long", required=True, width=50),
    Column("achievements", "Kết quả nổi bật", "achievements", "long", width=40),
    Column("shortcomings", "Tồn tại, hạn chế", "shortcomings", "long", width=40),
    Column("proposals", "Đề xuất, kiến nghị", "proposals", "long", width=40),
))

KINDS: dict[str, tuple[Sheet, ...]] = {
    "plan": (PLANS, TASKS, MILESTONES), "progress": (PROGRESS,), "indicators": (INDICATORS,),
    "unit-report": (REPORTS,),
}
SHEETS = {sheet.title: sheet for sheets in KINDS.values() for sheet in sheets}


def cell(sheet: Sheet, key: str, row: int) -> str:
    """`Kế hoạch!E12`: where a field of a row is, as a spreadsheet names it."""
    return f"{sheet.title}!{sheet.letter(key)}{row}"
