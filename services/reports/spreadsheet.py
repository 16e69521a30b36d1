"""The report to the Standing Committee as an Excel workbook (`format=xlsx`): its tables, one
sheet each, written from the very JSON report the other formats render, cell by cell, so
the numbers are the JSON's. A unit's own tasks, to fill in and send back, are the progress
template of ingest (`GET /v1/templates/progress.xlsx`), not a sheet here."""

from __future__ import annotations

from typing import Any

from shared import xlsx

# (sheet, the report's list, [(header, path in one item, width)])
TABLES: list[tuple[str, str, list[tuple[str, str, int]]]] = [
    ("Chương trình", "programmes", [
        ("Mã", "code", 6), ("Chương trình", "title", 50), ("Đã ban hành", "issued", 11),
        ("Ngày ban hành", "issued_on", 13), ("Kế hoạch phải có", "plans.expected", 11),
        ("Kế hoạch đã nộp", "plans.submitted", 11), ("Kế hoạch bị trả lại", "plans.rejected", 11),
        ("Nhiệm vụ", "tasks.total", 9), ("Chưa triển khai", "tasks.not_started", 11),
        ("Đang thực hiện", "tasks.in_progress", 11), ("Hoàn thành", "tasks.completed", 11),
        ("Vướng mắc", "tasks.blocked", 10), ("Dừng", "tasks.cancelled", 8), ("Quá hạn", "tasks.overdue", 9),
        ("Tiến độ (%)", "progress_pct", 10)]),
    ("Nhiệm vụ quá hạn", "overdue_tasks", [
        ("Mã nhiệm vụ", "task_id", 18), ("Nhiệm vụ", "title", 50), ("Chương trình", "programme", 11),
        ("Đơn vị chủ trì", "lead_unit", 14), ("Tên đơn vị", "lead_unit_name", 30),
        ("Người chịu trách nhiệm", "lead_person.name", 24), ("Hạn hoàn thành", "due_date", 13),
        ("Trạng thái", "status", 13), ("Tiến độ (%)", "progress", 10)]),
    ("Đơn vị", "units", [
        ("Mã", "code", 14), ("Đơn vị", "name", 40), ("Phải báo cáo", "reports.expected", 11),
        ("Đúng hạn", "reports.on_time", 9), ("Muộn", "reports.late", 8), ("Chưa nộp", "reports.missing", 9),
        ("Số văn bản", "report.document_no", 16), ("Nhiệm vụ quá hạn", "tasks_overdue", 11)]),
    ("Chỉ tiêu", "indicators", [
        ("Mã", "code", 8), ("Chỉ tiêu", "name", 50), ("Đơn vị tính", "measure", 12), ("Kỳ số liệu", "latest.period", 11),
        ("Giá trị mới nhất", "latest.value", 12), ("Mục tiêu 2025", "target_2025", 12), ("Đánh giá", "status", 14)]),
]
SUMMARY = [("Kỳ báo cáo", "cycle"), ("Tên kỳ", "cycle_label"), ("Số liệu đến ngày", "as_of"),
           ("Theo dữ liệu nhận đến", "known_at"), ("Hạn báo cáo của đơn vị", "due_date"),
           ("Tổng số nhiệm vụ", "totals.tasks.total"), ("Quá hạn", "totals.tasks.overdue"),
           ("Tiến độ chung (%)", "totals.progress_pct")]


def pick(item: dict, path: str) -> Any:
    """The value at a dotted path of a report item (None where a part is missing)."""
    for part in path.split("."):
        item = item.get(part) if isinstance(item, dict) else None
    return item


def shown(value: Any) -> Any:
    """A value as its cell holds it: numbers and text as they are, yes/no in words."""
    if isinstance(value, bool):
        return "có" if value else "không"
    return value


def render_xlsx(report: dict) -> bytes:
    """The report's tables as sheets, after a summary sheet naming the cycle and its cut-off."""
    book = xlsx.new_book()
    xlsx.table(book, "Tổng hợp", [("Mục", 28), ("Giá trị", 40)],
               [[label, shown(pick(report, path))] for label, path in SUMMARY])
    for title, key, columns in TABLES:
        rows = [[shown(pick(item, path)) for _, path, _ in columns] for item in report.get(key) or []]
        xlsx.table(book, title, [(header, width) for header, _, width in columns], rows, frozen="B2")
    return xlsx.to_bytes(book)
