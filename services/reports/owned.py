"""What one replica keeps in memory of the programmes it owns.

`programs.changes` is keyed by programme, so the replica that holds a partition is the only
writer of its programmes' read model: it may keep their tasks and tallies in memory from
the moment it first needs them after an assignment until a rebalance (or a batch that
failed part-way, after which memory may be ahead of the database) makes it forget them.
With every partition (one replica) memory is the whole state; with some, the others'
programmes are read from the documents their owners write."""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import contextmanager
from datetime import date
from typing import Awaitable, Callable, Iterator

import structlog
from aiokafka import ConsumerRebalanceListener

from shared import kafka
from shared.consumer import of_partitions
from shared.statelog import Known

from services.reports.live import Live

log = logging.getLogger("nqt.reports")
made = structlog.get_logger("nqt.reports.status")


class Holdings(ConsumerRebalanceListener):
    """The live state of the owned programmes, and which partitions this replica holds. Without a
    consumer (a replay, a test) it is the only writer there is, and owns everything."""

    def __init__(self, *, consumer: bool = False, partition_count: Callable[[], int] | None = None):
        self.partitions: set[int] | None = set() if consumer else None
        self.partition_count = partition_count or (lambda: 1)
        self.lock = asyncio.Lock()  # loads, batches and rebalances: one at a time, so a load never misses a write
        self.generation = 0  # counts what changed the status: batches applied, memory dropped
        self.stale = asyncio.Event()  # set by a change, cleared by the refresher that makes the status again
        self.refreshed = False  # a refresher (`refresh_status`) keeps the status made: requests never make it
        self.settled = asyncio.Event()  # cleared while a batch is applied to memory (see `applying`)
        self.settled.set()
        self.forget()

    def forget(self) -> None:
        """Start again from the database at the next need."""
        self.live = Live()
        self.programmes: set[str] = set()  # programmes whose tasks are in memory
        self.complete = False              # the small collections and every programme loaded
        self.status: tuple[tuple[int, date], bytes] | None = None  # ((generation, day), JSON) last made
        self.task_docs = Known()           # where their task states are kept, for folding them
        self.changed()

    def changed(self) -> None:
        """A batch was applied (or memory dropped): the status made before it is out of date."""
        self.generation += 1
        self.stale.set()

    async def status_json(self, today: date, build: Callable[[], Awaitable[dict]]) -> bytes:
        """The live status as JSON, made once per applied batch and day while this replica owns
        every programme (memory is then the whole state), so that a request costs a lookup, not
        a roll-up and its serialisation. With a refresher running, the bytes last made, which it
        makes again right after a batch: a request never waits for a roll-up. With some programmes
        only, the others change in the database under other owners' hands: made per request."""
        return self.made_status(today) or await self._make(today, build)

    def made_status(self, today: date) -> bytes | None:
        """The status's JSON as last made, when a request may have it as it is; None when it must
        be made. Reads and changes nothing else, so the HTTP thread may call it (shared/lanes.py)."""
        status = self.status
        if status is not None and self.owns_all():
            (generation, day), body = status
            if day == today and (generation == self.generation or self.refreshed):
                return body
        return None

    async def refresh_status(self, today: Callable[[], date], build: Callable[[], Awaitable[dict]], *,
                             idle_s: float = 1.0) -> None:
        """Make the status again once a batch changed it (or the day turned; looked at every `idle_s`
        while nothing changes), so that requests find it made. Run over and over, at most every so
        often while batches keep coming: batches applied meanwhile are made into one status."""
        self.refreshed = True
        if not self.stale.is_set():
            try:
                await asyncio.wait_for(self.stale.wait(), idle_s)
            except TimeoutError:
                pass
        self.stale.clear()
        day = today()
        if self.owns_all() and (self.status is None or self.status[0] != (self.generation, day)):
            await self._make(day, build)

    async def _make(self, today: date, build: Callable[[], Awaitable[dict]]) -> bytes:
        key, started = (self.generation, today), time.perf_counter()
        body = kafka.dumps(await build())
        if self.owns_all() and key == (self.generation, today):  # no batch applied meanwhile
            self.status = (key, body)
            # what requests answer from now on: with the "changes applied" lines, where a change's time went
            made.info("status made", generation=key[0], ms=round(1000 * (time.perf_counter() - started), 1),
                      size=len(body))
        else:
            self.stale.set()  # made from what changed since: the refresher makes it again
        return body

    @contextmanager
    def applying(self) -> Iterator[None]:
        """A batch is being applied to `live`. Applying a unit or a plan awaits its write, and
        requests are served meanwhile: they wait (`settled`) rather than see the batch half applied."""
        self.settled.clear()
        try:
            yield
        finally:
            self.settled.set()

    async def steady(self) -> None:
        """Return once no batch is half applied to `live` (at once when none is): a reader that
        reads it without awaiting after this sees every batch whole or not at all."""
        while not self.settled.is_set():
            await self.settled.wait()

    def owns_all(self) -> bool:
        return self.partitions is None or len(self.partitions) >= self.partition_count()

    def mine(self, records: list, client) -> list:
        """The records of partitions this replica holds; the others are left to their new owner
        (`of_partitions`). Called with `lock` held."""
        return of_partitions(records, self.partitions, client)

    # --- the consumer's rebalance listener: each waits for the batch in hand (the lock) ---
    async def on_partitions_revoked(self, revoked) -> None:
        async with self.lock:
            if self.partitions is not None:
                self.partitions -= {tp.partition for tp in revoked}
            self.forget()

    async def on_partitions_assigned(self, assigned) -> None:
        async with self.lock:
            self.partitions = {tp.partition for tp in assigned}
            self.forget()
        log.info("holding partitions %s of the changes", sorted(self.partitions))
