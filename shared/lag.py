"""Consumer lag of a service's own consumer groups, as the `nqt_consumer_lag` gauge.

Measured from the broker's running consumers (so with the same connection settings
and authentication): for each partition assigned to this process, the end offset
minus the group's committed offset (minus the earliest offset when the group has
committed nothing yet). Each replica reports the partitions it holds, so summing
over instances gives the group's lag without counting a partition twice."""

from __future__ import annotations

import asyncio

from aiokafka import TopicPartition
from faststream.kafka import KafkaBroker

from shared import metrics

INTERVAL_S = 10.0  # cheap: per group two ListOffsets and one OffsetFetch per partition held
TIMEOUT_S = 5.0
_reported: dict[str, set[tuple[str, str, str, str]]] = {}  # service -> label sets set last time


async def _group_lag(consumer, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
    ends, starts, *committed = await asyncio.gather(
        consumer.end_offsets(partitions), consumer.beginning_offsets(partitions),
        *(consumer.committed(tp) for tp in partitions))
    return {tp: max(ends[tp] - (offset if offset is not None else starts[tp]), 0)
            for tp, offset in zip(partitions, committed)}


async def measure(broker: KafkaBroker, service: str) -> None:
    """Set the lag of every partition this process consumes; drop the series of partitions it gave up."""
    held = []
    for subscriber in broker.subscribers:
        consumer, group = getattr(subscriber, "consumer", None), getattr(subscriber, "group_id", None)
        if consumer is not None and group and consumer.assignment():
            held.append((group, consumer, sorted(consumer.assignment())))
    # Concurrently: a ListOffsets request may wait behind the consumer's own fetch (up to fetch_max_wait_ms).
    lags = await asyncio.wait_for(asyncio.gather(*(_group_lag(c, parts) for _, c, parts in held)), TIMEOUT_S)
    seen: set[tuple[str, str, str, str]] = set()
    for (group, _, _), by_partition in zip(held, lags):
        for tp, lag in by_partition.items():
            labels = (service, group, tp.topic, str(tp.partition))
            metrics.CONSUMER_LAG.labels(*labels).set(lag)
            seen.add(labels)
    for labels in _reported.get(service, set()) - seen:
        metrics.CONSUMER_LAG.remove(*labels)
    _reported[service] = seen
