"""Delivery channels behind one small interface: e-mail over SMTP and signed webhooks.

Every message carries its identity to the receiver (the e-mail `Message-ID`, the
`webhook-id`), so a repeated delivery after a crash is one the receiver can drop."""

from __future__ import annotations

import email.policy
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Protocol

import aiosmtplib
import httpx
import orjson
from standardwebhooks import Webhook

from services.notify.settings import NotifySettings


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    content: bytes


@dataclass(frozen=True)
class Message:
    identity: str          # what it is about: kind, subject, recipient, day
    message_id: str        # stable across attempts, so receivers drop repeats
    recipient: str         # unit code (or unit:person for a named person)
    address: str           # where the channel delivers it: e-mail address or URL
    subject: str
    body: str              # Vietnamese text
    kind: str = "notice"
    data: dict = field(default_factory=dict)         # machine-readable content, for webhooks
    attachments: tuple[Attachment, ...] = ()


class Channel(Protocol):
    name: str

    async def send(self, message: Message) -> None: ...


class DeliveryError(RuntimeError):
    """The receiver did not take the message; worth another attempt later."""


# Headers are not folded: Python's folding of encoded words loses the space at a fold
# ("1 nội dung" arrived as "1nội dung"). RFC 5322 allows lines of up to 998 characters.
MAIL_POLICY = email.policy.SMTP.clone(max_line_length=998)


class EmailChannel:
    name = "email"

    def __init__(self, settings: NotifySettings):
        self.settings = settings

    async def send(self, message: Message) -> None:
        s = self.settings
        mail = EmailMessage(policy=MAIL_POLICY)
        mail["From"] = s.mail_from
        mail["To"] = message.address
        mail["Subject"] = message.subject
        mail["Message-ID"] = message.message_id
        mail["Date"] = formatdate(localtime=False)
        mail["X-NQT-Notification"] = message.identity
        mail.set_content(message.body, charset="utf-8")
        for attachment in message.attachments:
            maintype, _, subtype = attachment.content_type.partition("/")
            mail.add_attachment(attachment.content, maintype=maintype, subtype=subtype, filename=attachment.filename)
        # Flattened here, with long lines allowed: aiosmtplib's own flattening folds a header at
        # 78 characters, and a folded X-NQT-Notification reaches receivers with a leading space.
        await aiosmtplib.send(
            mail.as_bytes(policy=MAIL_POLICY), sender=parseaddr(s.mail_from)[1], recipients=[message.address],
            hostname=s.smtp_host, port=s.smtp_port, start_tls=s.smtp_starttls,
            username=s.smtp_username, password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            timeout=s.smtp_timeout_s,
        )


class WebhookChannel:
    """HTTP POST of a JSON body, signed the Standard Webhooks way with the unit's secret."""

    name = "webhook"

    def __init__(self, settings: NotifySettings, client: httpx.AsyncClient | None = None):
        self.secrets = {unit: secret.get_secret_value() for unit, secret in settings.notify_webhook_secrets.items()}
        self.timeout = settings.smtp_timeout_s
        self.client = client

    async def send(self, message: Message) -> None:
        unit = message.recipient.split(":")[0]
        secret = self.secrets.get(unit)
        if not secret:
            raise DeliveryError(f"no webhook secret configured for {unit} (NQT_NOTIFY_WEBHOOK_SECRETS)")
        body = orjson.dumps({"type": message.kind, "id": message.message_id, "subject": message.subject,
                             "text": message.body, "data": message.data,
                             "attachments": [a.filename for a in message.attachments]}).decode()
        now = datetime.now(timezone.utc)
        headers = {"content-type": "application/json", "webhook-id": message.message_id,
                   "webhook-timestamp": str(int(now.timestamp())),
                   "webhook-signature": Webhook(secret).sign(message.message_id, now, body)}
        client = self.client or httpx.AsyncClient(timeout=self.timeout)
        try:
            response = await client.post(message.address, content=body, headers=headers)
        finally:
            if self.client is None:
                await client.aclose()
        if response.status_code >= 300:
            raise DeliveryError(f"the receiver answered {response.status_code}")


def routes(unit: dict) -> list[tuple[str, str]]:
    """(channel, address) pairs a unit is reached by: its registry `channels`, or every
    channel it has an address for."""
    addresses = {"email": unit.get("email"), "webhook": unit.get("webhook")}
    wanted = unit.get("channels") or [c for c, address in addresses.items() if address]
    return [(c, addresses[c]) for c in wanted if addresses.get(c)]
