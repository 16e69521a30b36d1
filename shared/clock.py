"""An injectable clock: services ask it for "now", so tests and replays of 2021
data can run at any time and speed."""

from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo


class Clock:
    def __init__(self, tz: str = "Asia/Ho_Chi_Minh", fixed: datetime | None = None):
        self.tz = ZoneInfo(tz)
        self.fixed = fixed

    def now(self) -> datetime:
        return (self.fixed or datetime.now(timezone.utc)).astimezone(self.tz)

    def today(self) -> date:
        return self.now().date()
