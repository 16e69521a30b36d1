from __future__ import annotations

import limits
from pydantic import Field, SecretStr, field_validator, model_validator

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
    # GET /v1/status lists the first this many overdue tasks and tasks due next period, with how
    # many there are; GET /v1/status/tasks pages through the rest.
    reports_status_list_limit: int = Field(100, ge=0, le=10_000)
    # The status is made again at most this often while batches keep coming (and once they stop),
    # in the background: a request reads the bytes last made.
    reports_status_refresh_s: float = Field(0.05, gt=0, le=5)
    # Where this service is reached, for links in notifications.
    reports_public_url: str = "http://127.0.0.1:8082"
    # The web view (/ui/): sessions are cookies signed with this secret. Unset in dev/test: a random
    # one per process (sessions end with it, and replicas do not share them); required in prod.
    ui_secret: SecretStr | None = None
    ui_cookie_secure: bool = False  # send the session cookie over HTTPS only (set behind TLS)
    ui_session_hours: float = Field(8.0, gt=0, le=24 * 30)
    # Failed logins allowed per user name and per client address (`limits` notation), counted in
    # this process's memory over at most `ui_login_keys` names and addresses.
    ui_login_rate_user: str = "5/15 minutes"
    ui_login_rate_address: str = "20/15 minutes"
    ui_login_keys: int = Field(10_000, ge=10)
    # Where the unit pages read notifications: notify's delivery log, with an Office API key.
    ui_notify_url: str | None = None
    ui_notify_key: SecretStr | None = None

    @field_validator("ui_login_rate_user", "ui_login_rate_address")
    @classmethod
    def _a_rate(cls, value: str) -> str:
        limits.parse(value)  # fail at start-up, not at the first login
        return value

    @model_validator(mode="after")
    def _a_secret_in_prod(self):
        if self.env == "prod" and not (self.ui_secret and len(self.ui_secret.get_secret_value()) >= 32):
            raise ValueError("NQT_ENV=prod needs NQT_UI_SECRET (at least 32 characters) for the web view's sessions")
        return self
