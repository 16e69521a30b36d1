"""Consumer lag of a service's own consumer groups, as the `nqt_consumer_lag` gauge.

Read from what the running consumers already know, without a request of their own:
for each partition assigned to this process, the end offset the last fetch reported
(the highwater) minus the consumer's position, i.e. the records not read yet. A
partition not fetched yet is left out until its first fetch. Each replica reports
the partitions it holds, so summing over instances gives the group's lag without
counting a partition twice. (Asking the broker on the live consumer, and cancelling
that request on a timeout, would meddle with the consumer's own requests.)"""

from __future__ import annotations

from aiokafka import TopicPartition
from aiokafka.errors import IllegalStateError
from faststream.kafka import KafkaBroker

from shared import metrics

INTERVAL_S = 10.0
_reported: dict[str, set[tuple[str, str, str, str]]] = {}  # service -> label sets set last time


async def _group_lag(consumer, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
    lags = {}
    for tp in partitions:
        try:
            end = consumer.highwater(tp)
            if end is not None:  # fetched, so the position is known: position() returns at once
                lags[tp] = max(end - await consumer.position(tp), 0)
        except (AssertionError, IllegalStateError):  # revoked meanwhile: its new holder reports it
            continue
    return lags


async def measure(broker: KafkaBroker, service: str) -> None:
    """Set the lag of every partition this process consumes; drop the series of partitions it gave up."""
    held = []
    for subscriber in broker.subscribers:
        consumer, group = getattr(subscriber, "consumer", None), getattr(subscriber, "group_id", None)
        if consumer is not None and group and consumer.assignment():
            held.append((group, consumer, sorted(consumer.assignment())))
    lags = [await _group_lag(consumer, parts) for _, consumer, parts in held]
    seen: set[tuple[str, str, str, str]] = set()
    for (group, _, _), by_partition in zip(held, lags):
        for tp, lag in by_partition.items():
            labels = (service, group, tp.topic, str(tp.partition))
            metrics.CONSUMER_LAG.labels(*labels).set(lag)
            seen.add(labels)
    for labels in _reported.get(service, set()) - seen:
        metrics.CONSUMER_LAG.remove(*labels)
    _reported[service] = seen
