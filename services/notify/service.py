"""Use cases of notify: deliver each notification once per channel, retry failures
with backoff in the background (never holding up other deliveries), and the
deadline scan that turns the day's reminders into one digest per recipient."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict
from datetime import date
from typing import Awaitable, Callable

import httpx
from bson import Binary

from services.notify import domain
from services.notify.channels import Attachment, Channel, Message, routes
from services.notify.settings import NotifySettings
from services.notify.store import NotifyStore
from shared import metrics, records
from shared.consumer import Poison

log = logging.getLogger("nqt.notify")


Keep = Callable[[NotifyStore, records.Change], Awaitable[None]]


# --- changes, by kind: what notify keeps of each (sending nothing, so a replay reuses it) ---
async def _registry(store: NotifyStore, change: records.Change) -> None:
    """Units are recipients; the registry's header names who receives the reports."""
    await store.put_registry(change.kind, change.state)


async def _task(store: NotifyStore, change: records.Change) -> None:
    """A task's deadline and status drive its reminders and escalations."""
    await store.put_task(change.id, change.seq, change.state)


async def _unit_report(store: NotifyStore, change: records.Change) -> None:
    """A unit that reported for a cycle is no longer reminded of it."""
    await store.put_unit_report(change.state["unit"], change.state["cycle"])


async def _ignored(store: NotifyStore, change: records.Change) -> None:
    """A kind no notice depends on."""


ON_CHANGE: dict[str, Keep] = {
    records.UNIT: _registry, records.SETTINGS: _registry, records.TASK: _task, records.UNIT_REPORT: _unit_report,
    **dict.fromkeys((records.PROGRAMME, records.INDICATOR, records.PLAN, records.PROGRAMME_ISSUED,
                     records.INDICATOR_VALUE, records.SUPERVISION), _ignored),
}


def kept(kind: str) -> Keep:
    """What notify keeps of a change of `kind`; Poison, with the reason, for a kind it does not know."""
    if kind not in ON_CHANGE:
        raise Poison(f"unknown change kind {kind[:200]!r}: notify handles or ignores {', '.join(ON_CHANGE)}")
    return ON_CHANGE[kind]


async def keep(*, store: NotifyStore, change: records.Change) -> None:
    """Keep what notify needs to know of a change; send nothing."""
    await kept(change.kind)(store, change)


class Notifier:
    def __init__(self, store: NotifyStore, channels: dict[str, Channel], settings: NotifySettings):
        self.store = store
        self.channels = channels
        self.settings = settings

    # --- delivery ---
    async def send(self, *, kind: str, recipient: dict, subject: str, body: str, day: str, about: str,
                   data: dict | None = None, attachments: tuple[Attachment, ...] = ()) -> list[str]:
        """Send to every channel of `recipient` once; return each channel's status."""
        ident = domain.identity(kind, about, recipient["code"], day)
        message = Message(identity=ident, message_id=domain.message_id(ident), recipient=recipient["code"],
                          address="", subject=subject, body=body, kind=kind, data=data or {},
                          attachments=attachments)
        results = []
        for channel, address in routes(recipient):
            results.append(await self.deliver(Message(**{**asdict(message), "address": address,
                                                          "attachments": attachments}), channel))
        return results

    async def deliver(self, message: Message, channel: str) -> str:
        key = f"{message.identity}|{channel}"
        doc = {"identity": message.identity, "kind": message.kind, "recipient": message.recipient,
               "address": message.address, "message_id": message.message_id, "subject": message.subject,
               "body": message.body, "data": message.data,
               "attachments": [{"filename": a.filename, "content_type": a.content_type, "content": Binary(a.content)}
                               for a in message.attachments]}
        record = await self.store.claim(key=key, message=doc, channel=channel, lease_s=self.settings.notify_lease_seconds)
        if not record["leased"]:
            return record["status"]  # sent, failed, or another attempt in hand
        return await self._attempt(key, record)

    async def retry_due(self) -> int:
        """Attempt the deliveries whose retry time has come; safe in every replica."""
        done = 0
        for key in await self.store.due_retries():
            record = await self.store.lease(key, self.settings.notify_lease_seconds)
            if record["leased"]:
                await self._attempt(key, record)
                done += 1
        return done

    async def _attempt(self, key: str, record: dict) -> str:
        message = Message(identity=record["identity"], message_id=record["message_id"],
                          recipient=record["recipient"], address=record["address"], subject=record["subject"],
                          body=record["body"], kind=record["kind"], data=record.get("data") or {},
                          attachments=tuple(Attachment(a["filename"], a["content_type"], bytes(a["content"]))
                                            for a in record.get("attachments") or ()))
        channel = self.channels[record["channel"]]
        attempt = len(record.get("attempts") or []) + 1  # FerretDB 1.24 drops an empty array set on insert
        try:
            await channel.send(message)
        except Exception as err:  # any channel failure: logged, retried later, never blocks others
            final = attempt >= self.settings.notify_attempts
            retry_in = None if final else self.settings.notify_retry_seconds * 2 ** (attempt - 1)
            await self.store.record_attempt(key, ok=False, error=f"{type(err).__name__}: {err}", retry_in=retry_in)
            metrics.NOTIFICATIONS.labels(channel=channel.name, result="failed" if final else "retried").inc()
            log.warning("delivery %s attempt %d failed: %s", key, attempt, err)
            return "failed" if final else "pending"
        await self.store.record_attempt(key, ok=True, error=None, retry_in=None)
        metrics.NOTIFICATIONS.labels(channel=channel.name, result="sent").inc()
        return "sent"

    async def _recipient(self, code: str, *, kind: str, about: str, trigger: dict) -> dict | None:
        """The unit, or None when notify's registry copy does not know it yet: the notice then
        waits for it (registry changes and the events that name a unit travel on different
        topics), and goes out when the unit arrives (`recipient_known`)."""
        unit = await self.store.unit(code)
        if unit is not None:
            return unit
        key = await self.store.wait_for(code, kind=kind, about=about, trigger=trigger)
        # The unit may have arrived meanwhile, its waiting notices looked for before this one was
        # there: look again (a notice sent twice is sent once, by its identity).
        unit = await self.store.unit(code)
        if unit is None:
            log.warning("%s about %s waits for unit %s, which notify does not know yet", kind, about, code)
        else:
            await self.store.forget_waiting(key)
        return unit

    async def recipient_known(self, code: str, today: date, fetch: httpx.AsyncClient) -> int:
        """Send the notices that were waiting for unit `code` to be known; how many there were."""
        waiting = await self.store.waiting_for(code)
        for notice in waiting:
            trigger = notice["trigger"]  # the record that triggered it, as it was read
            if notice["kind"] == "rejected":
                await self.rejection(records.Outcome.model_validate(trigger))
            elif notice["kind"] == "cycle_opened":
                await self.cycle_opened(records.ReportDue.model_validate(trigger), today, only=code)
            elif notice["kind"] == "report_drafted":
                await self.report_drafted(records.ReportDrafted.model_validate(trigger))
            else:
                await self.report_generated(records.ReportGenerated.model_validate(trigger), today, fetch, only=code)
            await self.store.forget_waiting(notice["_id"])
        return len(waiting)

    # --- what triggers a notification ---
    async def rejection(self, outcome: records.Outcome) -> list[str]:
        """Tell the publishing unit that its event was rejected, and why."""
        unit = await self._recipient(outcome.source, kind="rejected", about=outcome.event_key,
                                     trigger=outcome.model_dump())
        if unit is None:
            return []
        subject, body = domain.rejection_text(outcome, unit["name"])
        return await self.send(kind="rejected", recipient=unit, subject=subject, body=body,
                               day=outcome.decided_at[:10], about=outcome.event_key,
                               data=outcome.model_dump(include={"id", "type", "code", "message_vi", "message_en",
                                                                "findings"}))

    async def cycle_opened(self, event: records.ReportDue, today: date, only: str | None = None) -> None:
        """Every unit a cycle expects (or `only` that one) hears that it opened and when its report is due."""
        if only is None:
            await self.store.put_cycle(event.model_dump())
        for code in [only] if only else event.expected_units:
            unit = await self._recipient(code, kind="cycle_opened", about=event.cycle, trigger=event.model_dump())
            if unit is None:
                continue
            subject, body = domain.cycle_opened_text(unit["name"], event)
            await self.send(kind="cycle_opened", recipient=unit, subject=subject, body=body,
                            day=today.isoformat(), about=event.cycle, data=event.model_dump())

    async def report_generated(self, event: records.ReportGenerated, today: date, fetch: httpx.AsyncClient,
                               only: str | None = None) -> None:
        """The report's recipients (or `only` that one) get it, the PDF attached and links to the
        other formats. The PDF is fetched from the reports service: while it is down, this waits."""
        url = event.formats["pdf"]
        if not url.startswith(self.settings.notify_reports_url.rstrip("/") + "/"):
            raise Poison(f"the report's PDF {url[:200]!r} is not on the reports service "
                         f"({self.settings.notify_reports_url}, NQT_NOTIFY_REPORTS_URL)")
        response = await fetch.get(url)
        response.raise_for_status()
        pdf = Attachment(f"bao-cao-{event.cycle}.pdf", "application/pdf", response.content)
        settings = await self.store.settings()
        recipients = (settings.get("reporting") or {}).get("recipients", ["BTV"])
        for code in [only] if only else recipients:
            unit = await self._recipient(code, kind="report_generated", about=event.cycle,
                                         trigger=event.model_dump())
            if unit is None:
                continue
            subject, body = domain.report_generated_text(unit["name"], event)
            await self.send(kind="report_generated", recipient=unit, subject=subject, body=body,
                            day=today.isoformat(), about=event.cycle, data=event.model_dump(), attachments=(pdf,))

    async def report_drafted(self, event: records.ReportDrafted) -> None:
        """The Office hears that a report's draft awaits its sign-off, once per draft."""
        unit = await self._recipient(domain.OFFICE, kind="report_drafted", about=event.id, trigger=event.model_dump())
        if unit is not None:
            subject, body = domain.report_drafted_text(unit["name"], event)
            await self.send(kind="report_drafted", recipient=unit, subject=subject, body=body, day=event.drafted_on,
                            about=event.id, data=event.model_dump())

    async def scan(self, today: date) -> int:
        """The day's reminders, overdue notices and escalations, one digest per recipient."""
        s = self.settings
        items = domain.scan(today=today, tasks=await self.store.open_tasks(), cycles=await self.store.cycles(),
                            reported=await self.store.reported(), reminder_days=s.notify_task_reminder_days,
                            escalate_after=s.notify_escalate_after_days,
                            report_reminder_days=s.notify_report_reminder_days)
        items += await self._persons_in_charge([i for i in items if i.kind == "escalation"])
        sent = 0
        for digest in await self.store.undelivered_digests():  # claimed by a scan that did not finish
            sent += await self._send_digest(digest)
        known = await self.store.known_items([i.identity for i in items])
        for code, group in domain.digests([i for i in items if i.identity not in known]).items():
            digest_id = "digest-" + hashlib.sha256("|".join(i.identity for i in group).encode()).hexdigest()[:16]
            await self.store.claim_digest(digest_id, recipient=code, day=today.isoformat(),
                                          items=[asdict(i) for i in group])
            await self.store.record_items(digest_id, [i.identity for i in group])
            sent += await self._send_digest(await self.store.digest(digest_id))
        return sent

    async def _persons_in_charge(self, escalations: list[domain.Item]) -> list[domain.Item]:
        """An escalation also goes to the person in charge the registry names (the lead unit's, else the Office's)."""
        extra = []
        for item in escalations:
            for code in (item.data["lead_unit"], domain.OFFICE):
                unit = await self.store.unit(code)
                if unit and (unit.get("person_in_charge") or {}).get("email"):
                    who = domain.person_in_charge(code)
                    extra.append(domain.Item(domain.identity("escalation", item.data["task_id"], who,
                                                             item.data["due_date"]),
                                             item.kind, who, item.text, item.data))
                    break
        return extra

    async def _send_digest(self, digest: dict) -> int:
        """Send a claimed digest with the items it owns (an item goes in one digest only)."""
        recipient = await self._digest_recipient(digest["recipient"])
        if recipient is None:
            return 0
        owned = await self.store.owned_items(digest["_id"], [i["identity"] for i in digest["items"]])
        items = [i for i in digest["items"] if i["identity"] in owned]
        if items:
            day = date.fromisoformat(digest["day"])
            subject, body = domain.digest_text(recipient["name"], day, items)
            await self.send(kind="digest", recipient=recipient, subject=subject, body=body, day=digest["day"],
                            about=digest["_id"],
                            data={"items": [{k: i[k] for k in ("kind", "text", "data")} for i in items]})
        await self.store.mark_digest_delivered(digest["_id"])
        return int(bool(items))

    async def _digest_recipient(self, code: str) -> dict | None:
        unit_code, _, person = code.partition(":")
        unit = await self.store.unit(unit_code)
        if unit is None:
            log.warning("no registry entry for %s; its reminders wait until the registry knows it", unit_code)
            return None
        if person:
            who = unit["person_in_charge"]
            return {"code": code, "name": f"{who.get('name', '')} ({who.get('position', '')})",
                    "email": who["email"]}
        return unit
