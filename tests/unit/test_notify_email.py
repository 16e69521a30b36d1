"""What a mail server receives from the email channel (an in-process SMTP sink)."""

from __future__ import annotations

import asyncio

from deploy.local import infra, mailsink
from services.notify.channels import EmailChannel, Message
from services.notify.domain import identity, message_id
from services.notify.settings import NotifySettings


async def test_a_long_notification_identity_reaches_the_receiver_unchanged():
    """The identity header is how a receiver tells a repeat from a new notice; one longer
    than a folded line (78 characters with its name) must not arrive with a leading space."""
    controller, mailbox = mailsink.serve(infra.free_port(), None)
    try:
        channel = EmailChannel(NotifySettings(smtp_port=controller.port))
        sent = []
        for event in ("Q-BADINH:t36ac8c87pkafka-U999", "Q-BADINH:t36ac8c87pkafka-U1041",
                      "Q-BADINH:" + "x" * 200):
            ident = identity("rejected", event, "Q-BADINH", "2026-11-27")
            await channel.send(Message(identity=ident, message_id=message_id(ident), recipient="Q-BADINH",
                                       address="q-badinh@hanoi.example", subject="Sự kiện bị từ chối",
                                       body="Nội dung", kind="rejected"))
            sent.append(ident)
        await asyncio.sleep(0.1)
        received = [(m["X-NQT-Notification"], m["Message-ID"]) for m in mailbox.snapshot()]
    finally:
        controller.stop()
    assert received == [(ident, message_id(ident)) for ident in sent]
