from __future__ import annotations

from pydantic import Field, SecretStr

from shared.settings import CommonSettings


class NotifySettings(CommonSettings):
    notify_port: int = 8083
    notify_group: str = "nqt-notify"
    notify_batch: int = Field(100, ge=1, le=10_000)  # records of a topic read (and committed) together
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_s: float = 10.0
    mail_from: str = "nq-tracker <no-reply@hanoi.example>"
    # Standard Webhooks secrets per unit, JSON {"SO-KHDT": "whsec_..."}; never in the registry file.
    notify_webhook_secrets: dict[str, SecretStr] = Field(default_factory=dict)
    # Attempts per delivery and the first retry delay (doubling each time); then it is recorded failed.
    notify_attempts: int = Field(4, ge=1)
    notify_retry_seconds: float = Field(30.0, gt=0)
    # One attempt may take this long; a delivery left in flight by a crash is retried after it.
    notify_lease_seconds: float = Field(60.0, gt=0)
    # Deadline scan: task reminders this many days before due; the Office is told after this many
    # days overdue; units that have not reported are reminded this many days before the due date.
    notify_task_reminder_days: list[int] = Field(default_factory=lambda: [7, 1])
    notify_escalate_after_days: int = Field(7, ge=1)
    notify_report_reminder_days: int = Field(1, ge=0)
    notify_scan_seconds: float = Field(60.0, gt=0)
    # Where issued reports are fetched from: a `report.generated` pointing anywhere else is refused.
    notify_reports_url: str = "http://127.0.0.1:8082"
    # The delivery log asks ingest whose API key a request carries (GET /v1/whoami), and
    # trusts a positive answer this long (a key revoked at ingest stops working within it).
    notify_ingest_url: str = "http://127.0.0.1:8081"
    notify_key_cache_seconds: float = Field(30.0, ge=0)
