"""The report's words and numbers as Vietnamese readers expect them: the names of statuses,
dates and numbers in the Party document's style, an indicator's achievement. No rendering
library here: the web view and the documents share these, and a replica that has rendered
nothing need not load WeasyPrint or matplotlib for them."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from services.reports.document import party_date, short_date

TASK_STATUS = {"not_started": "Chưa triển khai", "in_progress": "Đang thực hiện",
               "completed": "Hoàn thành", "blocked": "Vướng mắc", "cancelled": "Hủy"}
REPORT_STATUS = {"on_time": "Đúng hạn", "late": "Muộn", "missing": "Chưa báo cáo"}
SUPERVISION_KIND = {"giam_sat": "Giám sát", "phan_bien": "Phản biện xã hội"}
INDICATOR_STATUS = {  # status -> (Vietnamese word, bar colour)
    "achieved": ("Đạt", "#2e7d32"),
    "on_track": ("Đúng lộ trình", "#1f5fa8"),
    "at_risk": ("Có nguy cơ", "#e69a00"),
    "off_track": ("Chậm", "#c62828"),
    "no_data": ("Chưa có số liệu", "#9e9e9e"),
}
HANOI = timezone(timedelta(hours=7))  # Viet Nam keeps no daylight saving time


def day(value: str) -> date:
    """The day of an ISO date or timestamp (a timestamp is read in Hanoi time)."""
    if "T" not in value:
        return date.fromisoformat(value)
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return (moment.astimezone(HANOI) if moment.tzinfo else moment).date()


def fmt_date(value: str | None) -> str:
    """A date in a table: '15/3/2021' (`document.short_date`); empty if missing."""
    return short_date(day(value)) if value else ""


def fmt_day(value: str | None) -> str:
    """A date in a sentence: 'ngày 15 tháng 3 năm 2021' (`document.party_date`); empty if missing."""
    return party_date(day(value)) if value else ""


def fmt_datetime(value: str | None) -> str:
    """dd/mm/yyyy HH:MM of an ISO timestamp, in Hanoi time."""
    if not value:
        return ""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return (moment.astimezone(HANOI) if moment.tzinfo else moment).strftime("%d/%m/%Y %H:%M")


def fmt_num(value: float | None, digits: int = 2, fixed: bool = False) -> str:
    """A Vietnamese number (1.234,5): decimal comma, dot for thousands; "–" if missing."""
    if value is None:
        return "–"
    text = f"{value:,.{digits}f}"
    if not fixed and "." in text:
        text = text.rstrip("0").rstrip(".")
    return text.translate(str.maketrans(",.", ".,"))


def achievement_pct(indicator: dict) -> float | None:
    """Latest value as % of the 2025 target; for a decreasing indicator, target/latest."""
    latest, target = (indicator.get("latest") or {}).get("value"), indicator.get("target_2025")
    if latest is None or target is None:
        return None
    if indicator.get("direction") == "decrease":
        return target / latest * 100 if latest > 0 else 100.0
    return latest / target * 100 if target else None
