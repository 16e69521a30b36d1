"""Delivery channels behind one small interface."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Protocol

import aiosmtplib

from services.notify.settings import NotifySettings


@dataclass(frozen=True)
class Message:
    identity: str          # what it is about: kind, subject, recipient, day
    message_id: str        # stable across retries, so receivers drop repeats
    recipient: str         # unit code
    address: str           # where this channel delivers it
    subject: str
    body: str


class Channel(Protocol):
    name: str

    async def send(self, message: Message) -> None: ...


class EmailChannel:
    name = "email"

    def __init__(self, settings: NotifySettings):
        self.settings = settings

    async def send(self, message: Message) -> None:
        s = self.settings
        mail = EmailMessage()
        mail["From"] = s.mail_from
        mail["To"] = message.address
        mail["Subject"] = message.subject
        mail["Message-ID"] = message.message_id
        mail["Date"] = formatdate(localtime=False)
        mail["X-NQT-Notification"] = message.identity
        mail.set_content(message.body, charset="utf-8")
        await aiosmtplib.send(
            mail, hostname=s.smtp_host, port=s.smtp_port, start_tls=s.smtp_starttls,
            username=s.smtp_username, password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            timeout=s.smtp_timeout_s,
        )
