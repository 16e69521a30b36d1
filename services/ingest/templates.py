"""The Excel templates a unit downloads, fills in and uploads (`GET /v1/templates/{kind}.xlsx`):
an instructions sheet naming the unit, the sheets of the kind (services.ingest.sheets) with
lists to pick codes, statuses and cycles from, and what ingest knows for the unit already
written in: the programmes, its tasks with their status (the progress template is the
unit's own task list to fill in and send back), its indicators, the open cycle. Pure:
given what to write, it writes (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from openpyxl.worksheet.datavalidation import DataValidation

from shared import xlsx

from services.ingest import sheets
from services.ingest.sheets import INDICATORS, KINDS, MILESTONES, PLANS, PROGRESS, REPORTS, TASKS, Sheet

TITLES = {"plan": "Kế hoạch thực hiện (nhiệm vụ, lộ trình)", "progress": "Cập nhật tiến độ nhiệm vụ",
          "indicators": "Số liệu chỉ tiêu", "unit-report": "Báo cáo định kỳ của đơn vị"}
SPARE_ROWS = 300  # rows below what is written in that still have the lists and checks


@dataclass(frozen=True)
class Context:
    """What a template is pre-filled with for one unit."""

    unit: str
    unit_name: str
    today: date
    units: list[str] = field(default_factory=list)
    programmes: list[dict] = field(default_factory=list)    # _id, title
    indicators: list[dict] = field(default_factory=list)    # _id, name, measure, responsible_unit
    tasks: list[dict] = field(default_factory=list)         # _id, programme, title, due_date, status, progress
    cycle: dict | None = None                                # the open cycle: _id, due_date
    cycles: list[str] = field(default_factory=list)


def open_cycle(cycles: list[dict], unit: str) -> dict | None:
    """The latest cycle opened that expects a report from `unit`."""
    mine = [c for c in cycles if unit in c.get("expected_units", ())]
    return max(mine, key=lambda c: c["window"]["cut_off"], default=None)


def write(kind: str, context: Context) -> bytes:
    """The template of `kind` for the unit of `context`, as .xlsx bytes."""
    book = xlsx.new_book()
    _instructions(book, kind, context)
    lists = _lists(book, context)
    for sheet in KINDS[kind]:
        rows = _rows(sheet, context)
        ws = xlsx.table(book, sheet.title, [(c.header, c.width) for c in sheet.columns], rows,
                        frozen="B2" if sheet is PROGRESS else "A2")
        for n, column in enumerate(sheet.columns, 1):
            for row in range(2, len(rows) + 2):
                if column.given:
                    ws.cell(row=row, column=n).fill = xlsx.GIVEN_FILL
        _validations(ws, sheet, lists, last_row=len(rows) + 1 + SPARE_ROWS)
    book.move_sheet(sheets.LISTS, offset=len(book.sheetnames))
    return xlsx.to_bytes(book)


def _rows(sheet: Sheet, context: Context) -> list[list]:
    if sheet is PROGRESS:
        return [[t["_id"], t["programme"], t.get("title"), _day(t.get("due_date")),
                 sheets.STATUSES.get(t.get("status"), t.get("status")), t.get("progress")]
                for t in context.tasks]
    if sheet is INDICATORS:
        mine = [i for i in context.indicators if i.get("responsible_unit") == context.unit] or context.indicators
        return [[i["_id"], i.get("name"), i.get("measure")] for i in mine]
    if sheet is REPORTS and context.cycle:
        return [[context.cycle["_id"]]]
    return []


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def _instructions(book, kind: str, context: Context) -> None:
    ws = book.create_sheet(sheets.INSTRUCTIONS)
    cycle = context.cycle
    lines = [
        [f"Mẫu nhập liệu: {TITLES[kind]}"], [],
        ["Mã đơn vị", context.unit], ["Tên đơn vị", context.unit_name], ["Ngày lập mẫu", context.today],
        ["Kỳ báo cáo đang mở", f"{cycle['_id']} (hạn nộp {cycle['due_date']})" if cycle else "chưa có"], [],
        ["Cách điền"],
        ["1.", "Mỗi dòng là một bản ghi; dòng 1 là tiêu đề, không sửa tiêu đề và tên trang."],
        ["2.", "Cột nền xám do hệ thống ghi sẵn để tham khảo; chỉ điền các cột còn lại."],
        ["3.", "Mã, trạng thái, kỳ: chọn trong danh sách của ô. Ngày: dd/mm/yyyy. Tiến độ: 0 đến 100."],
        ["4.", "Kế hoạch: mỗi nhiệm vụ (trang Nhiệm vụ) phải có đơn vị chủ trì, người chịu trách nhiệm, "
               "hạn hoàn thành và ít nhất một mốc lộ trình (trang Lộ trình)."],
        ["5.", "Công thức không được tính lại khi nhận tệp: ô công thức lấy giá trị đã lưu trong tệp; "
               "ô công thức chưa có giá trị được coi là trống. Macro và liên kết ngoài bị bỏ qua."],
        ["6.", "Gửi tệp: nqt import TEN_TEP.xlsx --unit " + context.unit + " (hoặc POST /v1/imports, trường file). "
               "Tệp có ô sai bị trả lại toàn bộ, kèm tên trang và ô cần sửa; gửi lại dòng không đổi không "
               "tạo bản ghi mới."],
    ]
    for line in lines:
        ws.append(line)
    ws["A1"].font = xlsx.HEADER_FONT
    ws["B5"].number_format = xlsx.DATE_FORMAT
    ws.column_dimensions["A"].width, ws.column_dimensions["B"].width = 22, 100


def _lists(book, context: Context) -> dict[str, str]:
    """A hidden sheet of the codes a cell may take; the range of each list, by column value kind."""
    columns = {"programme": [p["_id"] for p in context.programmes] or [f"{n:02d}" for n in range(1, 11)],
               "unit": context.units, "status": list(sheets.STATUSES.values()),
               "indicator": [i["_id"] for i in context.indicators], "cycle": context.cycles}
    ws = book.create_sheet(sheets.LISTS)
    ranges = {}
    for n, (kind, values) in enumerate(columns.items(), 1):
        ws.cell(row=1, column=n, value=kind)
        for row, value in enumerate(values, 2):
            ws.cell(row=row, column=n, value=value)
        if values:
            letter = ws.cell(row=1, column=n).column_letter
            ranges[kind] = f"'{sheets.LISTS}'!${letter}$2:${letter}${len(values) + 1}"
    ws.sheet_state = "hidden"
    return ranges


def _validations(ws, sheet: Sheet, lists: dict[str, str], *, last_row: int) -> None:
    """Lists, dates and numbers checked by the spreadsheet program as the unit types."""
    own = {(TASKS, "plan_id"): f"'{PLANS.title}'!$A$2:$A${last_row}",
           (MILESTONES, "task_id"): f"'{TASKS.title}'!$B$2:$B${last_row}"}
    for column in sheet.columns:
        if column.given:
            continue
        source = own.get((sheet, column.key)) or lists.get(column.value)
        if source:
            rule = DataValidation(type="list", formula1=f"={source}", allow_blank=True)
        elif column.value == "date":
            rule = DataValidation(type="date", operator="greaterThan", formula1="36526", allow_blank=True)
        elif column.value == "progress":
            rule = DataValidation(type="decimal", operator="between", formula1="0", formula2="100", allow_blank=True)
        else:
            continue
        rule.error, rule.errorTitle = f"Giá trị không hợp lệ cho cột '{column.header}'", "Nhập liệu"
        rule.showErrorMessage = True
        ws.add_data_validation(rule)
        rule.add(f"{sheet.letter(column.key)}2:{sheet.letter(column.key)}{last_row}")
