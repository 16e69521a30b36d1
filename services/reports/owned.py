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
from datetime import date
from typing import Awaitable, Callable

from aiokafka import ConsumerRebalanceListener

from shared import kafka
from shared.statelog import Known

from services.reports.live import Live

log = logging.getLogger("nqt.reports")


class Holdings(ConsumerRebalanceListener):
    """The live state of the owned programmes, and which partitions this replica holds. Without a
    consumer (a replay, a test) it is the only writer there is, and owns everything."""

    def __init__(self, *, consumer: bool = False, partition_count: Callable[[], int] | None = None):
        self.partitions: set[int] | None = set() if consumer else None
        self.partition_count = partition_count or (lambda: 1)
        self.lock = asyncio.Lock()  # loads, batches and rebalances: one at a time, so a load never misses a write
        self.generation = 0  # counts what changed the status: batches applied, memory dropped
        self.forget()

    def forget(self) -> None:
        """Start again from the database at the next need."""
        self.live = Live()
        self.programmes: set[str] = set()  # programmes whose tasks are in memory
        self.complete = False              # the small collections and every programme loaded
        self.task_docs = Known()           # where their task states are kept, for folding them
        self.changed()

    def changed(self) -> None:
        """A batch was applied (or memory dropped): the status made before it is out of date."""
        self.generation += 1
        self.status: tuple[tuple[int, date], bytes] | None = None

    async def status_json(self, today: date, build: Callable[[], Awaitable[dict]]) -> bytes:
        """The live status as JSON, made once per applied batch and day while this replica owns
        every programme (memory is then the whole state), so that a request costs a lookup, not
        a roll-up and its serialisation. With some programmes only, the others change in the
        database under other owners' hands: made per request."""
        key = (self.generation, today)
        if self.status is not None and self.status[0] == key:
            return self.status[1]
        body = kafka.dumps(await build())
        if self.owns_all() and key == (self.generation, today):  # no batch applied meanwhile
            self.status = (key, body)
        return body

    def owns_all(self) -> bool:
        return self.partitions is None or len(self.partitions) >= self.partition_count()

    def mine(self, records: list) -> list:
        """The records of partitions this replica holds. A batch fetched before a rebalance took
        some of them away leaves those to their new owner: its writes would be a second writer's,
        and this replica's commit no longer covers them. Called with `lock` held."""
        if self.partitions is None:
            return list(records)
        return [record for record in records if record.partition in self.partitions]

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
