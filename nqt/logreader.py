"""Reading a topic's whole history once: every partition from its first offset up to the end
offset taken when reading starts, with no consumer group and nothing committed, so reading
changes nothing on the cluster.

The partitions are merged into one stream in the order their records were written (the record
timestamp; a partition's own order always kept), the order the live services met them in:
registry entries and the plans that name their units travel on different partitions, and a
plan read before its lead unit would be rejected where it was applied live."""

from __future__ import annotations

import heapq
import time
from collections import deque
from typing import AsyncIterator

from aiokafka import AIOKafkaConsumer, TopicPartition

from nqt.dlq import topic_partitions
from shared.kafka import client_options
from shared.settings import CommonSettings

STALL_S = 60.0  # reading gives up when Kafka returns nothing this long while records are left


class Stalled(RuntimeError):
    pass


class LogReader:
    """`async with LogReader(settings, topic) as log:` then `log.total` and `log.batches(n)`.
    Reading ends at the end offsets the topic has as it begins, or at `ends` (partition ->
    offset: where another reader of the topic began, `log.ends_by_partition`)."""

    def __init__(self, settings: CommonSettings, topic: str, *, param_hint: str = "NQT_TOPIC_PREFIX",
                 ends: dict[int, int] | None = None):
        self.settings, self.topic, self.param_hint, self.given_ends = settings, topic, param_hint, ends
        self.buffers: dict[TopicPartition, deque] = {}
        self.ends: dict[TopicPartition, int] = {}
        self.total = self.lost = 0

    async def __aenter__(self) -> "LogReader":
        numbers = await topic_partitions(self.settings, self.topic, param_hint=self.param_hint)
        self.consumer = AIOKafkaConsumer(**client_options(self.settings), group_id=None, enable_auto_commit=False,
                                         auto_offset_reset="earliest", client_id="nqt-cli-replay",
                                         max_partition_fetch_bytes=4 * 1024 * 1024)
        await self.consumer.start()
        parts = [TopicPartition(self.topic, p) for p in numbers]
        self.consumer.assign(parts)
        await self.consumer.seek_to_beginning(*parts)
        starts = await self.consumer.beginning_offsets(parts)
        if self.given_ends is None:
            self.ends = await self.consumer.end_offsets(parts)
        else:
            self.ends = {tp: self.given_ends[tp.partition] for tp in parts}
        self.buffers = {tp: deque() for tp in parts}
        self.total = sum(self.ends[tp] - starts[tp] for tp in parts)
        self.lost = sum(starts.values())  # records deleted from the front (a retention that is not for ever)
        return self

    @property
    def ends_by_partition(self) -> dict[int, int]:
        return {tp.partition: offset for tp, offset in self.ends.items()}

    async def __aexit__(self, *exc) -> None:
        await self.consumer.stop()

    async def _fill(self, tp: TopicPartition) -> None:
        """Buffer more of partition `tp`, unless it is read up to its end offset."""
        stalled_since = time.monotonic()
        while not self.buffers[tp] and await self.consumer.position(tp) < self.ends[tp]:
            got = await self.consumer.getmany(tp, timeout_ms=500, max_records=10_000)
            records = [r for r in got.get(tp, ()) if r.offset < self.ends[tp]]
            self.buffers[tp].extend(records)
            if records:
                return
            if time.monotonic() - stalled_since > STALL_S:
                raise Stalled(f"{self.topic} partition {tp.partition}: nothing read for {STALL_S:.0f} s at offset "
                              f"{await self.consumer.position(tp)} of {self.ends[tp]}")

    def _head(self, tp: TopicPartition) -> tuple[int, int]:
        return self.buffers[tp][0].timestamp, tp.partition

    async def batches(self, size: int) -> AsyncIterator[list]:
        """The records in batches of up to `size`, partitions merged by record time."""
        by_number = {tp.partition: tp for tp in self.buffers}
        heads = []
        for tp in self.buffers:
            await self._fill(tp)
            if self.buffers[tp]:
                heads.append(self._head(tp))
        heapq.heapify(heads)
        batch: list = []
        while heads:
            tp = by_number[heapq.heappop(heads)[1]]
            batch.append(self.buffers[tp].popleft())
            if not self.buffers[tp]:
                await self._fill(tp)
            if self.buffers[tp]:
                heapq.heappush(heads, self._head(tp))
            if len(batch) >= size:
                yield batch
                batch = []
        if batch:
            yield batch
