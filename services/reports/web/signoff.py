"""The sign-off of a cycle's report in the web view: the list of cycles with their status, and
approving a draft or sending it back. The approval itself (numbering, freezing `known_at`,
publishing `report.generated`) is the reports app's (`app.state.approve` / `send_back`): this
module checks who may sign and what, and words the answer."""

from __future__ import annotations

from typing import Awaitable, Callable

from services.reports.service import BadRequest, Busy, ReportsService
from services.reports.web.auth import PageError
from services.reports.web.users import User

STATUS_NAMES = {"draft": "Dự thảo", "approved": "Đã duyệt", "issued": "Đã ban hành", "returned": "Trả lại"}
MAX_COMMENT = 2_000


async def cycle_reports(*, service: ReportsService) -> list[dict]:
    """Each cycle of the term that has a report (a draft at least), with its status."""
    return await service.cycle_reports()


async def decide(*, service: ReportsService, approve: Callable[..., Awaitable[dict]],
                 send_back: Callable[..., Awaitable[None]], user: User, cycle_code: str, decision: str,
                 comment: str) -> str:
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
    try:
        if decision == "approve":
            result = await approve(cycle_code=cycle_code, approver=user.name)
            number = result.get("document", {}).get("number_text")
            return f"Đã duyệt báo cáo kỳ {cycle_code}" + (f", {number}." if number else ".")
        if decision == "send_back":
            if not comment or len(comment) > MAX_COMMENT:
                raise PageError(400, f"Trả lại dự thảo cần ghi rõ lý do (1-{MAX_COMMENT} ký tự).")
            await send_back(cycle_code=cycle_code, approver=user.name, comment=comment)
            return f"Đã trả lại dự thảo báo cáo kỳ {cycle_code}."
    except BadRequest as err:
        raise PageError(409, f"Không thực hiện được: {err}") from err
    except Busy as err:
        raise PageError(409, "Báo cáo đang được duyệt hoặc ban hành ở nơi khác; vui lòng thử lại sau giây lát.") from err
    raise PageError(400, f"Quyết định {decision!r} không có; chọn duyệt (approve) hoặc trả lại (send_back).")
