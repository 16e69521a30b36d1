from __future__ import annotations


from pydantic import AwareDatetime

from shared.settings import CommonSettings


class ReportsSettings(CommonSettings):
    reports_port: int = 8082
    reports_group: str = "nqt-reports"
    # Pin "now" (e.g. 2021-04-05T09:00:00+07:00) to replay a past term; unset = the real time.
    clock_fixed: AwareDatetime | None = None
