"""A unit's notifications, for its page. They are notify's state, kept in notify's database,
which the reports service never reads; notify serves them at `GET /v1/notifications`, to a
unit's API key or the Office's. With `NQT_UI_NOTIFY_URL` and an Office key
(`NQT_UI_NOTIFY_KEY`) the page asks notify so; without them, or while notify does not answer,
the page says so and shows what reports itself knows (the unit's reports per cycle)."""

from __future__ import annotations

import logging

import httpx

from services.reports.settings import ReportsSettings

log = logging.getLogger("nqt.reports.web")
SHOWN = 50
KIND_NAMES = {"rejected": "Sự kiện bị từ chối", "cycle_opened": "Mở kỳ báo cáo", "digest": "Thông báo tổng hợp",
              "report_issued": "Báo cáo đã ban hành", "escalation": "Báo cáo Văn phòng"}


async def for_unit(*, settings: ReportsSettings, unit: str) -> dict:
    """The unit's latest notifications (newest first), or why there are none to show."""
    if not (settings.ui_notify_url and settings.ui_notify_key):
        return {"rows": None, "message": "Chưa cấu hình nơi đọc thông báo (NQT_UI_NOTIFY_URL, NQT_UI_NOTIFY_KEY)."}
    try:
        async with httpx.AsyncClient(base_url=settings.ui_notify_url, timeout=3.0) as notify:
            answer = await notify.get("/v1/notifications", params={"unit": unit, "limit": 5000}, headers={
                "Authorization": f"Bearer {settings.ui_notify_key.get_secret_value()}"})
        answer.raise_for_status()
        rows = answer.json()
    except (httpx.HTTPError, ValueError) as err:
        log.warning("notify's delivery log for %s could not be read: %s", unit, err)
        return {"rows": None, "message": "Dịch vụ thông báo chưa trả lời; danh sách thông báo tạm thời chưa hiển thị."}
    return {"rows": list(reversed(rows))[:SHOWN], "total": len(rows), "message": None}
