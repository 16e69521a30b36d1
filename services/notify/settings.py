from __future__ import annotations

from pydantic import Field, SecretStr

from shared.settings import CommonSettings


class NotifySettings(CommonSettings):
    notify_port: int = 8083
    notify_group: str = "nqt-notify"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_s: float = 10.0
    mail_from: str = "nq-tracker <no-reply@hanoi.example>"
    send_attempts: int = Field(3, ge=1)
