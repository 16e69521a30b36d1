"""The sign-off of a cycle's report: the list of cycles with their status, and approving a draft
or sending it back. The approval itself (numbering, freezing `known_at`, publishing
`report.generated`) belongs to the scheduler's side of the service; this module only calls it,
by the names agreed for it, and is the one place that knows them:

- `ReportsService.cycle_reports() -> list[dict]` (cycle, status draft|approved|issued|returned,
  number, approved_by, approved_at, comment);
- `approve(*, cycle_code, approver) -> dict` and `send_back(*, cycle_code, approver, comment)`.

Until those exist, the cycles' status is what the archive says (issued, or a draft once the
cycle's cut-off has come) and approving answers 501."""

from __future__ import annotations

from services.reports.service import ReportsService
from services.reports.web.auth import PageError
from services.reports.web.users import User

STATUS_NAMES = {"draft": "Dự thảo", "approved": "Đã duyệt", "issued": "Đã ban hành", "returned": "Trả lại"}
MAX_COMMENT = 2_000


async def cycle_reports(*, service: ReportsService) -> list[dict]:
    """Each cycle of the term whose cut-off has come, with its report's status."""
    if hasattr(service, "cycle_reports"):
        return await service.cycle_reports()
    _, cycles = await service.cycles_of_term()
    today, rows = service.clock.today(), []
    for cycle in cycles:
        if cycle.cut_off >= today:
            continue
        archived = await service.store.issued_report(cycle.code) or {}
        issued = archived.get("status") == "issued"
        rows.append({"cycle": cycle.code, "status": "issued" if issued else "draft",
                     "number": archived.get("number") if issued else None, "approved_by": None,
                     "approved_at": archived.get("known_at") if issued else None, "comment": None})
    return rows


def _approval(service: ReportsService, name: str):
    action = getattr(service, name, None)
    if action is None:
        raise PageError(501, "Chức năng duyệt báo cáo chưa có trong phiên bản này của dịch vụ.")
    return action


async def decide(*, service: ReportsService, user: User, cycle_code: str, decision: str, comment: str) -> str:
    """Approve the cycle's draft or send it back with a comment; the message to show. Only an
    Office user with the approver flag may; bad input changes nothing."""
    if not user.may_approve:
        raise PageError(403, "Chỉ cán bộ Văn phòng Thành ủy được giao duyệt mới được duyệt báo cáo.")
    rows = {r["cycle"]: r for r in await cycle_reports(service=service)}
    row = rows.get(cycle_code)
    if row is None:
        raise PageError(404, f"Kỳ {cycle_code} chưa đến hạn báo cáo hoặc không thuộc nhiệm kỳ.")
    if row["status"] != "draft":
        raise PageError(409, f"Báo cáo kỳ {cycle_code} đang ở trạng thái "
                             f"“{STATUS_NAMES.get(row['status'], row['status'])}”, không còn là dự thảo để duyệt.")
    comment = comment.strip()
    if decision == "approve":
        result = await _approval(service, "approve")(cycle_code=cycle_code, approver=user.name)
        return f"Đã duyệt báo cáo kỳ {cycle_code}" + (f", số {result['number']}." if result.get("number") else ".")
    if decision == "send_back":
        if not comment or len(comment) > MAX_COMMENT:
            raise PageError(400, f"Trả lại dự thảo cần ghi rõ lý do (1-{MAX_COMMENT} ký tự).")
        await _approval(service, "send_back")(cycle_code=cycle_code, approver=user.name, comment=comment)
        return f"Đã trả lại dự thảo báo cáo kỳ {cycle_code}."
    raise PageError(400, f"Quyết định {decision!r} không có; chọn duyệt (approve) hoặc trả lại (send_back).")
