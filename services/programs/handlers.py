"""Subscribers of the programs service: translate the record, call the service, publish."""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime, timezone

import structlog
from aiokafka import ConsumerRebalanceListener
from faststream.kafka.annotations import KafkaMessage

from services.programs.rules import HELD
from services.programs.service import Accepted, ProgramsService
from services.programs.store import ProgramsStore
from shared import accepted, consumer, kafka, logs, metrics
from shared.events import InvalidEvent
from shared.runtime import Runtime

log = structlog.get_logger("nqt.programs")


def service_for(runtime: Runtime) -> ProgramsService:
    """The replica's one service: it keeps its partitions' state from batch to batch."""
    service = getattr(runtime, "programs", None)
    if service is None or service.store.db is not runtime.db:
        service = ProgramsService(ProgramsStore(runtime.db), hold_seconds=runtime.settings.programs_hold_seconds)
        runtime.programs = service
    return service


class Ownership(ConsumerRebalanceListener):
    """The partitions of `events.accepted` this replica holds: the programmes keyed to them are
    its own to keep in memory and to sweep. Losing any drops what is kept (read again when needed)."""

    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.assigned: set[int] = set()
        self.subscriber = None  # set once the subscriber exists: its consumer knows the topic's partitions

    async def on_partitions_revoked(self, revoked) -> None:
        self.assigned -= {tp.partition for tp in revoked}
        if revoked and self.runtime.db is not None:
            service = service_for(self.runtime)
            async with service.lock:  # after the batch in hand, if any
                service.forget()

    async def on_partitions_assigned(self, assigned) -> None:
        self.assigned |= {tp.partition for tp in assigned}

    def mine(self, records: list, client) -> list:
        """The records of partitions this replica holds; the others are left to their new owner
        (`consumer.of_partitions`). Called with the service's lock held."""
        return consumer.of_partitions(records, self.assigned, client)

    def owns(self, programme: str) -> bool:
        """Whether records keyed by `programme` land on a partition of ours (as the producer's
        default partitioner places them)."""
        consumer_ = getattr(self.subscriber, "consumer", None)
        partitions = consumer_ and consumer_.partitions_for_topic(self.runtime.settings.topics.accepted)
        if not partitions:
            return False
        return kafka.partition_of(programme.encode(), len(partitions)) in self.assigned


def register(runtime: Runtime, group_id: str) -> Ownership:
    ownership = Ownership(runtime)
    ownership.subscriber = kafka.batch_subscriber(runtime, runtime.settings.topics.accepted, group_id=group_id,
                                                  max_records=runtime.settings.programs_batch, listener=ownership)

    @ownership.subscriber
    async def on_accepted(msg: KafkaMessage) -> None:
        await take_batch(runtime, ownership, msg.raw_message, msg.consumer)

    return ownership


async def take_batch(runtime: Runtime, ownership: Ownership, records, client) -> None:
    """A batch from the consumer, decided with the service locked, so that no rebalance or sweep
    lands in the middle of it, and only the records of partitions this replica still holds."""
    async with service_for(runtime).lock:
        await consumer.apply_batch(runtime.broker, ownership.mine(records, client), read=read_accepted,
                                   apply=lambda batch: decide_batch(runtime, batch),
                                   decide=lambda record, item, error: refuse(runtime, item, error))


async def decide_batch(runtime: Runtime, batch: list[Accepted]) -> None:
    """Decide the records, publish their changes and outcomes, then forget the held updates they
    settled. The caller holds the service's lock (`take_batch`)."""
    service, started = service_for(runtime), time.perf_counter()
    with metrics.HANDLER_SECONDS.labels(service="programs", handler="accepted").time():
        outcomes = await service.process_batch(batch, fold=False)
        await publish_outcomes(runtime, outcomes)
        await service.forget_held(outcomes)
        await service.fold()
    decided = {o["_id"] for o in outcomes}
    _count(Counter((item.event.type, "received", "") for item in batch)
           + Counter((item.event.type, HELD, "") for item in batch if item.event.key not in decided))
    log.info("batch decided", records=len(batch), outcomes=len(outcomes),
             ms=round(1000 * (time.perf_counter() - started), 1), **Counter(o["outcome"] for o in outcomes))


# What an outcome keeps for the service alone: its key, the changes (published on their own
# topic), whether a plan released it, and its history entry.
NOT_PUBLISHED = ("_id", "changes", "held", "history")


async def publish_outcomes(runtime: Runtime, outcomes: list[dict]) -> None:
    """Changes first, then the outcomes: whoever sees "applied" can already see its effect."""
    topics = runtime.settings.topics
    changes = [change for outcome in outcomes for change in outcome["changes"]]
    await kafka.send_all(runtime.broker, [(topics.changes, (c["programme"] or c["id"]).encode(), kafka.dumps(c))
                                          for c in changes])
    _count(Counter((f"change.{c['kind']}", "published", "") for c in changes))
    await kafka.send_all(runtime.broker, [(topics.outcomes, o["source"].encode(), kafka.dumps(_published(o)))
                                          for o in outcomes])
    _count(Counter((o["type"], o["outcome"], o.get("code", "")) for o in outcomes)
           + Counter((o["type"], "published", "") for o in outcomes))


def _published(outcome: dict) -> dict:
    """What the outcome says to the world (a copy, then the few keys dropped: half the cost of
    sifting every key)."""
    published = dict(outcome)
    for key in NOT_PUBLISHED:
        published.pop(key, None)
    return published


def _count(counts: Counter) -> None:
    """A batch's event counts in a few increments rather than one per event."""
    for (type_, outcome, code), n in counts.items():
        metrics.event("programs", type_, outcome, code, n=n)


async def refuse(runtime: Runtime, item: Accepted, error: Exception) -> None:
    """An accepted event that failed the same way twice: it is `rejected` as `invalid_event`,
    with the reason, so that its publisher is told and the partition moves on. The caller holds
    the service's lock (`take_batch`)."""
    outcome = await service_for(runtime).refuse(item, reason=f"{type(error).__name__}: {error}")
    await publish_outcomes(runtime, [outcome])
    with logs.about_event(event_id=outcome["id"], unit=outcome["source"], type=outcome["type"]):
        log.error("event refused", code=outcome.get("code"), reason=str(error)[:500])


def read_accepted(value: bytes) -> Accepted:
    try:
        return Accepted(*accepted.read(value))
    except (ValueError, InvalidEvent) as err:
        raise consumer.Poison(str(err)) from err


async def sweep_held(runtime: Runtime, ownership: Ownership) -> None:
    """Between batches, apply the held updates of this replica's programmes whose task appeared
    and reject those that waited too long. Nothing is lost while held: a failed sweep is tried again."""
    service = service_for(runtime)
    async with service.lock:
        decided = await service.sweep(now=datetime.now(timezone.utc), owns=ownership.owns)
        if decided:
            await publish_outcomes(runtime, decided)
            await service.forget_held(decided)
