from __future__ import annotations

from pydantic import Field

from shared.settings import CommonSettings


class ReportsSettings(CommonSettings):
    reports_port: int = 8082
    reports_group: str = "nqt-reports"
    # Changes read and applied together (offsets committed after their writes).
    reports_batch: int = Field(1000, ge=1, le=10_000)
    # Open cycles (report.due) and issue their reports once due; every replica may run it.
    reports_scheduler: bool = True
    reports_schedule_seconds: float = Field(30.0, gt=0)
    # Number and issue a report as soon as its cycle falls due, with no one's sign-off. Off: the
    # scheduler prepares the draft, tells the Office, and the report waits for its approval.
    reports_auto_issue: bool = False
    # A replica opening a cycle or issuing a report refreshes its claim a few times in this
    # window; a claim left this long unrefreshed (its replica died) is taken over.
    reports_claim_stale_seconds: float = Field(120.0, gt=0)
    # How often the programme gauges and the overdue-report gauges are brought up to date.
    reports_gauges_seconds: float = Field(60.0, gt=0)
    # Working days after the cut-off when units' reports are due; unset = the registry's (default 2).
    reports_due_working_days: int | None = Field(None, ge=0, le=30)
    # At most this many PDF/DOCX renders at once per process; a request waits this long for
    # one to free up, then gets 503 (the scheduler's renders wait as long as it takes).
    reports_max_renders: int = Field(2, ge=1)
    reports_render_wait_s: float = Field(10.0, ge=0)
    # Where this service is reached, for links in notifications.
    reports_public_url: str = "http://127.0.0.1:8082"
