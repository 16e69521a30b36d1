"""Use cases of notify: deliver each notification once, retrying with backoff."""

from __future__ import annotations

import asyncio
import logging

from shared import metrics

from services.notify import domain
from services.notify.channels import Channel, Message
from services.notify.store import NotifyStore

log = logging.getLogger("nqt.notify")


class UnknownRecipient(LookupError):
    """The unit is not (yet) in notify's registry copy; retried, then dead-lettered."""


async def notify_rejection(*, outcome: dict, store: NotifyStore, channel: Channel, attempts: int) -> str:
    """Tell the publishing unit that its event was rejected, and why."""
    unit = await store.unit(outcome["source"])
    if unit is None or not unit.get("email"):
        raise UnknownRecipient(f"no e-mail address known for unit {outcome['source']}")
    day = outcome["decided_at"][:10]
    ident = domain.identity("rejected", outcome["event_key"], unit["code"], day)
    subject, body = domain.rejection_text(outcome, unit["name"])
    message = Message(identity=ident, message_id=domain.message_id(ident), recipient=unit["code"],
                      address=unit["email"], subject=subject, body=body)
    return await deliver_once(message=message, kind="rejected", store=store, channel=channel, attempts=attempts)


async def deliver_once(*, message: Message, kind: str, store: NotifyStore, channel: Channel,
                       attempts: int, backoff_s: float = 0.5) -> str:
    """Send unless already sent; a failure is retried, then recorded as failed (never raised)."""
    record = await store.claim(identity=message.identity, kind=kind, recipient=message.recipient,
                               channel=channel.name, message_id=message.message_id)
    if record["status"] == "sent":
        return "already_sent"
    for attempt in range(1, attempts + 1):
        try:
            await channel.send(message)
        except Exception as err:  # any channel failure: log it, retry, never block others
            final = attempt == attempts
            await store.record_attempt(message.identity, ok=False, error=f"{type(err).__name__}: {err}",
                                       final=final)
            metrics.NOTIFICATIONS.labels(channel=channel.name, result="failed" if final else "retried").inc()
            log.warning("delivery %s attempt %d failed: %s", message.identity, attempt, err)
            if final:
                return "failed"
            await asyncio.sleep(backoff_s * 2 ** (attempt - 1))
            continue
        await store.record_attempt(message.identity, ok=True, error=None, final=True)
        metrics.NOTIFICATIONS.labels(channel=channel.name, result="sent").inc()
        return "sent"
    return "failed"
