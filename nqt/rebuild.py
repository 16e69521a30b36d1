"""What each service does with the records of a topic it consumes, when its state is rebuilt
from the log: its own batch code, minus everything that reaches outside its database. Nothing
is published (no outcome, no change, no dead letter) and nothing is sent (no e-mail, no
webhook).

A record the live service could not read or apply is dead-lettered there; here it is counted
and skipped (`Skipped`), exactly where the live service let it go."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Awaitable, Callable

from shared import consumer, kafka, records
from shared.consumer import attach
from shared.topics import Topics

from services.ingest import handlers as ingest_handlers, service as ingest_service
from services.ingest.store import INDEXES as INGEST_INDEXES, IngestStore
from services.notify import handlers as notify_handlers, service as notify_service
from services.notify.store import INDEXES as NOTIFY_INDEXES, NotifyStore
from services.programs import handlers as programs_handlers
from services.programs.service import Accepted, ProgramsService
from services.programs.store import INDEXES as PROGRAMS_INDEXES, ProgramsStore
from services.reports import changes as report_changes
from services.reports.store import INDEXES as REPORTS_INDEXES, ReportsStore

log = logging.getLogger("nqt.replay")
INDEXES = {"programs": PROGRAMS_INDEXES, "reports": REPORTS_INDEXES, "ingest": INGEST_INDEXES,
           "notify": NOTIFY_INDEXES}


class Skipped:
    """Stands in for a service's dead letters (`shared.consumer.apply_batch` hands them what it
    cannot process): counts the records per topic and sends nothing anywhere. It is its own
    "broker", the key `apply_batch` finds its dead letters by."""

    def __init__(self):
        self.counts: Counter = Counter()
        attach(self, self)

    async def send(self, record, exc: Exception, **_) -> None:
        self.counts[record.topic] += 1
        log.warning("skipped %s/%s@%s, as the live service dead-lettered it: %s: %s", record.topic,
                    record.partition, record.offset, type(exc).__name__, exc)


@dataclass
class Applier:
    """What one service does with a batch of one topic's records; `finish` once the topic is read."""
    service: str
    topic: str
    apply: Callable[[list], Awaitable[None]]
    finish: Callable[[], Awaitable[None]] | None = None


class Seen:
    """The event keys a replay has met, as a Bloom filter: a whole term's million keys in 2 MB
    (a set of them takes about fifty times that). A key added is always found; one never added is
    found now and then (about one in a hundred at a million keys), which costs only the lookup
    the live service makes for every key. Python's `hash` of a str is the same throughout a process."""

    BITS = 1 << 24

    def __init__(self):
        self.bits = bytearray(self.BITS // 8)

    def _slots(self, key: str) -> tuple[int, int]:
        h = hash(key) & 0xFFFF_FFFF_FFFF
        return h & (self.BITS - 1), h >> 24

    def add(self, key: str) -> bool:
        """Mark `key` met; True when it was not taken for met before."""
        bits, new = self.bits, False
        for slot in self._slots(key):
            byte, bit = slot >> 3, 1 << (slot & 7)
            if not bits[byte] & bit:
                bits[byte] |= bit
                new = True
        return new

    def __contains__(self, key: str) -> bool:
        return all(self.bits[slot >> 3] & (1 << (slot & 7)) for slot in self._slots(key))


class ProgramsReplay:
    """`events.accepted` through the programs service's batch decision, as its handler does but
    for publishing. Held updates expire as they did live, where a sweep rejects those held
    longer than the hold: the sweep's clock is the acceptance time of the record about to be
    decided (once all are read, the moment the replay started), and a batch is decided in
    windows no longer than the hold, so no update's hold runs out inside one.

    The database starts empty (`nqt.replay` sees to it), so an event has an outcome or a held
    update there only once the replay has met its key: keys met for the first time (`Seen`) are
    not looked up (live, two queries name every key of a batch; in a replay they find nothing).
    A key is marked met before its batch is decided, so a batch decided again (an outage, a
    record alone) looks its keys up as the live service does."""

    def __init__(self, db, skipped: Skipped, *, hold_seconds: float, started: datetime):
        self.service = ProgramsService(ProgramsStore(db), hold_seconds=hold_seconds)
        self.skipped, self.started = skipped, started
        self.hold = timedelta(seconds=hold_seconds)
        self.seen = Seen()

    async def apply(self, records: list) -> None:
        await consumer.apply_batch(self.skipped, records, read=programs_handlers.read_accepted,
                                   apply=self._decide, decide=self._refuse)

    async def _decide(self, batch: list[Accepted]) -> None:
        times = [_instant(item.accepted_at) for item in batch]
        start = 0
        while start < len(batch):
            await self._sweep(times[start])
            store = self.service.store
            oldest = await store.held_of(await store.registry_codes("programmes"), limit=1)
            expiry = min([times[start], *(_instant(h["accepted_at"]) for h in oldest)]) + self.hold
            end = next((i for i in range(start + 1, len(batch)) if times[i] >= expiry), len(batch))
            outcomes = await self.service.process_batch(batch[start:end], first_seen=self._meet(batch[start:end]))
            await self.service.forget_held(outcomes)
            start = end

    def _meet(self, batch: list[Accepted]) -> set[str]:
        """The keys of `batch` met for the first time; all of them met from now on. (One pass,
        each key hashed once: two passes were a twentieth of the process's time.)"""
        first: set[str] = set()
        for item in batch:
            key = item.event.key
            if self.seen.add(key):
                first.add(key)
        return first

    async def _refuse(self, record, item: Accepted, error: Exception) -> None:
        await self.service.refuse(item, reason=f"{type(error).__name__}: {error}")

    async def _sweep(self, now: datetime) -> None:
        await self.service.forget_held(await self.service.sweep(now=now))

    async def finish(self) -> None:
        await self._sweep(self.started)


def _instant(utc_text: str) -> datetime:
    return datetime.fromisoformat(utc_text.replace("Z", "+00:00"))


def _each(handle: Callable[[dict], Awaitable[None]]) -> Callable[[list[dict]], Awaitable[None]]:
    async def apply(values: list[dict]) -> None:
        for value in values:
            await handle(value)
    return apply


async def _notify_changes(store: NotifyStore, changes: list[records.Change]) -> None:
    """What notify keeps of the changes; of several states of a task, only the latest is written
    (the write is guarded by `seq`, so the earlier ones would change nothing after it)."""
    latest: dict[str, records.Change] = {}
    for change in changes:
        if change.kind == records.TASK:
            if change.seq > (latest[change.id].seq if change.id in latest else -1):
                latest[change.id] = change
        else:
            await notify_service.keep(store=store, change=change)
    for change in latest.values():
        await notify_service.keep(store=store, change=change)


def appliers(service: str, db, topics: Topics, skipped: Skipped, *, hold_seconds: float,
             started: datetime) -> list[Applier]:
    """The topics `service` rebuilds its state from, and what it does with their records."""
    def batch(read, apply) -> Callable[[list], Awaitable[None]]:
        return lambda records: consumer.apply_batch(skipped, records, read=read, apply=apply)

    def fields(required: tuple[str, ...]):
        return lambda value: kafka.record(value, required=required)

    if service == "programs":
        programs = ProgramsReplay(db, skipped, hold_seconds=hold_seconds, started=started)
        return [Applier(service, topics.accepted, programs.apply, programs.finish)]
    if service == "reports":
        # what the subscriber's `apply_changes` does but for its metrics (the handlers module
        # brings the report renderers, seconds of imports this command has no use for)
        return [Applier(service, topics.changes, batch(report_changes.read, ReportsStore(db).apply_changes))]
    if service == "ingest":
        store, term = IngestStore(db), ingest_service.Term()
        keep = _each(lambda change: ingest_service.keep_change(store=store, term=term, change=change))
        outcomes = partial(ingest_handlers.record_outcomes, store)
        cycles = _each(lambda due: ingest_service.keep_cycle(store=store, due=due.model_dump()))
        return [Applier(service, topics.outcomes, batch(ingest_handlers.read_outcome, outcomes)),
                Applier(service, topics.changes, batch(fields(ingest_handlers.CHANGE_FIELDS), keep)),
                Applier(service, topics.due, batch(records.read_due, cycles))]
    if service == "notify":
        store = NotifyStore(db)
        return [Applier(service, topics.changes, batch(notify_handlers.read_change,
                                                       lambda cs: _notify_changes(store, cs))),
                Applier(service, topics.due, batch(records.read_due,
                                                   _each(lambda due: store.put_cycle(due.model_dump()))))]
    raise ValueError(f"no service {service!r}; one of {', '.join(INDEXES)}")
