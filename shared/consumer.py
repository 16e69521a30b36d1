"""How every consumer meets a failure (README "When a record cannot be processed").

An outage (`is_transient`: the database or Kafka unreachable, a peer service down) is
waited out: the record is read again after a backoff, for as long as it takes, and never
dead-lettered. Anything else is a property of the record: one that fails the same way
twice is decided (an inbound event `rejected`, any other record to `<topic>.dlq`, once
per original offset), and the records around it go through."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import OrderedDict
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable

import httpx
from aiokafka import TopicPartition, errors as kafka_errors
from faststream._internal.middlewares import BaseMiddleware
from pymongo import errors as mongo_errors

from shared import heap, metrics
from shared.topics import Topics

log = logging.getLogger("nqt.consumer")


class Poison(Exception):
    """A record that can never be processed (bad bytes, wrong schema): dead-letter it at once."""


class Transient(Exception):
    """Something the record needs is not there yet, and will be (a peer service down): read it
    again later, however long that takes; never dead-letter it."""


# Server errors that say "not now" rather than "never" (MongoDB's own list of retryable codes).
_MONGO_TRANSIENT_CODES = {6, 7, 24, 50, 89, 91, 112, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436}
_TRANSIENT = (Transient, mongo_errors.ConnectionFailure, kafka_errors.KafkaConnectionError,
              kafka_errors.KafkaTimeoutError, httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError,
              ConnectionError, TimeoutError)


def is_transient(exc: BaseException) -> bool:
    """True for an outage, which waiting cures (the database, Kafka or a peer service
    unreachable or overloaded); False for anything the same record would raise again."""
    if isinstance(exc, Poison):
        return False
    if isinstance(exc, _TRANSIENT):
        return True
    if isinstance(exc, kafka_errors.KafkaError):
        return bool(exc.retriable)
    if isinstance(exc, mongo_errors.OperationFailure) and not isinstance(exc, mongo_errors.DuplicateKeyError):
        return exc.code in _MONGO_TRANSIENT_CODES or exc.has_error_label("RetryableWriteError")
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code >= 500 or exc.response.status_code == 429
    return exc.__cause__ is not None and is_transient(exc.__cause__)


class DeadLetters:
    """Where a record that can never be processed goes: `<topic>.dlq`, bytes unchanged, with headers
    naming the failure; once per original offset, however often the record is read again (a
    rewound batch, a restart): the service's `dead_letters` collection remembers which it sent."""

    def __init__(self, service: str):
        self.service = service
        self.broker = None  # set by `attach`
        self.db = None  # the service's database, once connected; without it, nothing is remembered

    async def send(self, record, exc: Exception, *, attempts: int = 1, first: str | None = None) -> None:
        where = f"{record.topic}|{record.partition}|{record.offset}"
        if self.db is not None and await self.db.dead_letters.find_one({"_id": where}, {"_id": 1}):
            return
        headers = {k: v.decode("utf-8", "replace") for k, v in (record.headers or ())
                   if not k.startswith("nqt-dlq-")}
        headers.update({
            "nqt-dlq-error-class": type(exc).__name__,
            "nqt-dlq-error-message": str(exc)[:2000],
            "nqt-dlq-attempts": str(attempts),
            "nqt-dlq-first-failure": first or _now(),
            "nqt-dlq-original-topic": record.topic,
            "nqt-dlq-original-partition": str(record.partition),
            "nqt-dlq-original-offset": str(record.offset),
            "nqt-dlq-service": self.service,
        })
        await self.broker.publish(record.value or b"", Topics.dlq(record.topic), key=record.key, headers=headers)
        if self.db is not None:
            await self.db.dead_letters.update_one({"_id": where}, {"$setOnInsert": {
                "error": type(exc).__name__, "at": _now()}}, upsert=True)
        metrics.DEAD_LETTERS.labels(topic=record.topic, error=type(exc).__name__).inc()
        log.error("dead-lettered %s/%s@%s: %s: %s", record.topic, record.partition, record.offset,
                  type(exc).__name__, exc)


_LETTERS: "weakref.WeakKeyDictionary[Any, DeadLetters]" = weakref.WeakKeyDictionary()


def attach(broker, letters: DeadLetters) -> None:
    """Make `letters` the dead letters of `broker` (`kafka.make_broker` does)."""
    letters.broker = broker
    _LETTERS[broker] = letters


def dead_letters(broker) -> DeadLetters:
    """The dead letters of a broker made by `kafka.make_broker` (its service gives them a database at start-up)."""
    return _LETTERS[broker]


class Backoff:
    """How long to wait before reading a record again after an outage: doubling per attempt
    at the same place, up to a cap, so that a long outage costs a read every few seconds."""

    def __init__(self, first_s: float = 0.2, cap_s: float = 5.0, remembered: int = 10_000):
        self.first_s, self.cap_s, self.remembered = first_s, cap_s, remembered
        self.attempts: OrderedDict[Any, int] = OrderedDict()

    def next(self, where) -> float:
        attempts = self.attempts.pop(where, 0) + 1
        self.attempts[where] = attempts
        while len(self.attempts) > self.remembered:
            self.attempts.popitem(last=False)
        return min(self.cap_s, self.first_s * 2 ** (attempts - 1))


def dead_letter_middleware(letters: DeadLetters, *, max_attempts: int):
    """What happens when a subscriber fails (it rewinds on error, so the record is read again):

    - an outage (`is_transient`: the database or Kafka unreachable, a peer service down) is
      waited out: the record is read again after a backoff, for as long as it takes, never
      dead-lettered;
    - anything else is a property of the record: one that fails the same way twice (or is
      Poison, or keeps failing `max_attempts` times) goes to `<topic>.dlq`, and the partition
      moves on. Batch subscribers decide their records themselves (`apply_batch`): what
      reaches this from a batch is an outage."""
    failures: OrderedDict[tuple[str, int, int], tuple[int, str, str]] = OrderedDict()
    backoff = Backoff()

    class DeadLetter(BaseMiddleware):
        async def consume_scope(self, call_next, msg):
            try:
                return await call_next(msg)
            except Exception as exc:
                record = msg.raw_message
                if isinstance(record, tuple):  # a batch: pause, then let the subscriber rewind it
                    where = tuple(sorted({(r.topic, r.partition) for r in record}))
                    wait = backoff.next(where)
                    log.warning("reading a batch of %d again in %.1f s after %s: %s", len(record), wait,
                                type(exc).__name__, exc)
                    await asyncio.sleep(wait)
                    raise
                where = (record.topic, record.partition, record.offset)
                if is_transient(exc):
                    wait = backoff.next(where)
                    log.warning("reading %s/%s@%s again in %.1f s after %s: %s", *where, wait,
                                type(exc).__name__, exc)
                    await asyncio.sleep(wait)
                    raise
                attempts, first, failure = failures.pop(where, (0, _now(), ""))
                attempts += 1
                this = f"{type(exc).__name__}: {exc}"
                if not isinstance(exc, Poison) and this != failure and attempts < max_attempts:
                    failures[where] = (attempts, first, this)
                    while len(failures) > 10_000:
                        failures.popitem(last=False)
                    log.warning("retrying %s/%s@%s after %s (attempt %d)", *where, type(exc).__name__, attempts)
                    raise
                await letters.send(record, exc, attempts=attempts, first=first)
                return None

    return DeadLetter


class LetGoOfBatch(BaseMiddleware):
    """Once a batch subscriber has handled its batch, the message lets go of the batch's records
    (a thousand values, read once and applied): a timer started while the message was in hand
    (a request's timeout, a connection's idle check; a cancelled one stays on the event loop
    until its time comes) keeps the context it started in, with the message in it, for up to
    minutes. Reports kept five to seven batches so. A batch that failed keeps them: it is rewound."""

    async def consume_scope(self, call_next, msg):
        result = await call_next(msg)
        if isinstance(msg.raw_message, tuple):
            msg.raw_message, msg.body, msg.batch_headers = (), [], []
        return result


# Reading a record costs tens of microseconds of CPU: a batch of thousands read in one go would
# hold the event loop, and the requests this process serves, for a good part of a second.
YIELD_EVERY = 100
ALONE_ATTEMPTS = 3  # a record on its own: decided once it failed the same way twice (at most this many tries)


def of_partitions(records, held: set[int] | None, client) -> list:
    """The records of the partitions this replica holds (every record while `held` is None: no
    rebalance has said). A batch fetched before a rebalance took some partitions away leaves their
    records to the new owner, whose writes these would race. The consumer (`client`, aiokafka's)
    is rewound to the first of them, because the commit after the batch covers every position it
    holds, and while the group rebalances it still holds the partitions being taken away: it
    would commit past records nobody applied, and their new owner starts from that commit. A
    partition the consumer no longer holds is committed by it no more: nothing to rewind."""
    if held is None:
        return list(records)
    kept, left = [], {}
    for record in records:
        if record.partition in held:
            kept.append(record)
        else:
            where = TopicPartition(record.topic, record.partition)
            left[where] = min(left.get(where, record.offset), record.offset)
    for where, offset in left.items():
        try:
            client.seek(where, offset)
        except kafka_errors.IllegalStateError:
            pass
    return kept


async def apply_batch(broker, records, *, read: Callable[[bytes], Any], apply: Callable[[list], Awaitable[Any]],
                      decide: Callable[[Any, Any, Exception], Awaitable[Any]] | None = None) -> None:
    """Consume a batch: `read` each record's value (one it refuses, Poison, is dead-lettered at
    once), then `apply` them together. If that fails other than by an outage, the records are
    applied one at a time, so that the good ones go through and only a record that fails the
    same way twice is decided: by `decide(record, value, error)` (e.g. a `rejected` outcome),
    else dead-lettered. An outage (`is_transient`) anywhere is raised: the batch is read again."""
    letters = dead_letters(broker)
    items = []
    with heap.phase("batch.read"):
        for n, record in enumerate(records, 1):
            try:
                items.append((record, read(record.value)))
            except Poison as err:
                await letters.send(record, err)
            if n % YIELD_EVERY == 0:  # let a request served by this process in between
                await asyncio.sleep(0)
    if not items:
        return
    try:
        with heap.phase("batch.apply"):
            await apply([value for _, value in items])
        return
    except Exception as exc:
        if is_transient(exc):
            raise
        log.warning("a batch of %d failed (%s: %s); applying its records one at a time", len(items),
                    type(exc).__name__, exc)
    for record, value in items:
        await _apply_alone(record, value, apply=apply, decide=decide, letters=letters)


async def _apply_alone(record, value, *, apply, decide, letters: DeadLetters) -> None:
    failures: list[str] = []
    error: Exception | None = None
    while len(failures) < ALONE_ATTEMPTS:
        try:
            await apply([value])
            return
        except Exception as exc:
            if is_transient(exc):
                raise
            error = exc
            failures.append(f"{type(exc).__name__}: {exc}")
            if len(failures) >= 2 and failures[-1] == failures[-2]:
                break
    log.error("%s/%s@%s failed %d times (%s): deciding it", record.topic, record.partition, record.offset,
              len(failures), failures[-1])
    if decide is not None:
        try:
            await decide(record, value, error)
            return
        except Exception as exc:
            if is_transient(exc):
                raise
            log.exception("could not decide %s/%s@%s; dead-lettering it", record.topic, record.partition,
                          record.offset)
    await letters.send(record, error, attempts=len(failures))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()
