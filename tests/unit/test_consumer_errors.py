"""What a consumer does when handling a record fails: an outage is waited out (read again,
never dead-lettered), a record that fails the same way twice is decided (once), and the
good records of a batch go through around a bad one."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace

import httpx
import pytest
from aiokafka import TopicPartition
from aiokafka.errors import IllegalStateError, KafkaConnectionError, MessageSizeTooLargeError
from pymongo.errors import DuplicateKeyError, OperationFailure, ServerSelectionTimeoutError

from shared import consumer


@dataclass(frozen=True)
class Record:
    offset: int
    value: bytes
    topic: str = "t.events.accepted"
    partition: int = 0
    key: bytes = b"01"
    headers: tuple = ()


@dataclass(eq=False)
class FakeConsumer:
    """What FastStream's ack uses of aiokafka's consumer: positions advanced by what a fetch
    returned, `seek`, and a `commit` of every position the consumer still holds. While the group
    rebalances, it still holds the partitions being taken away (their revocation has been heard,
    their new owner not yet named)."""
    positions: dict[TopicPartition, int] = field(default_factory=dict)
    committed: dict[TopicPartition, int] = field(default_factory=dict)

    def fetched(self, records) -> list:
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            self.positions[tp] = max(self.positions.get(tp, 0), record.offset + 1)
        return list(records)

    def seek(self, partition: TopicPartition, offset: int) -> None:
        if partition not in self.positions:
            raise IllegalStateError(f"No current assignment for partition {partition}")
        self.positions[partition] = offset

    async def commit(self) -> None:
        self.committed.update(self.positions)


@dataclass(eq=False)
class FakeBroker:
    published: list[tuple[str, bytes, dict]] = field(default_factory=list)

    async def publish(self, value, topic, *, key=None, headers=None, **_):
        self.published.append((topic, value, headers))

    @property
    def config(self):
        """Where `shared.kafka.producer` finds the producer under a FastStream broker: this one."""
        return SimpleNamespace(producer=SimpleNamespace(_producer=SimpleNamespace(producer=self)))

    async def send(self, topic, value, *, key=None, partition=None):
        self.published.append((topic, value, None))
        return self._acked()

    # the producer's batch path (`shared.kafka.send_all`): one partition per topic, batches unbounded
    async def partitions_for(self, topic):
        return {0}

    def create_batch(self):
        return FakeBatch()

    async def send_batch(self, batch, topic, *, partition):
        self.published += [(topic, value, None) for value in batch.values]
        return self._acked()

    def _acked(self):
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


@dataclass
class FakeBatch:
    values: list[bytes] = field(default_factory=list)

    def append(self, *, key, value, timestamp):
        self.values.append(value)
        return object()  # its metadata: appended


class FakeCollection:
    def __init__(self):
        self.docs: dict[str, dict] = {}

    async def find_one(self, query, projection=None):
        return self.docs.get(query["_id"])

    async def update_one(self, query, update, upsert=False):
        self.docs.setdefault(query["_id"], {"_id": query["_id"], **update.get("$setOnInsert", {})})


class FakeDb:
    def __init__(self):
        self.dead_letters = FakeCollection()


def letters_for(broker: FakeBroker, db: FakeDb | None = None) -> consumer.DeadLetters:
    letters = consumer.DeadLetters("test")
    letters.broker, letters.db = broker, db
    consumer.attach(broker, letters)
    return letters


def response(status: int) -> httpx.Response:
    return httpx.Response(status, request=httpx.Request("GET", "http://reports/v1/x"))


@pytest.mark.parametrize("error", [
    ServerSelectionTimeoutError("no servers"), KafkaConnectionError(), TimeoutError(), ConnectionRefusedError(),
    httpx.ConnectError("refused"), httpx.HTTPStatusError("503", request=response(503).request, response=response(503)),
    OperationFailure("not primary", code=10107), consumer.Transient("peer down"),
])
def test_outages_are_transient(error):
    assert consumer.is_transient(error)


@pytest.mark.parametrize("error", [
    KeyError("state"), ValueError("year -1 is out of range"), OverflowError("date value out of range"),
    MessageSizeTooLargeError(), DuplicateKeyError("dup"), OperationFailure("bad", code=2), consumer.Poison("bad"),
    httpx.HTTPStatusError("404", request=response(404).request, response=response(404)),
    httpx.UnsupportedProtocol("ftp"),
])
def test_what_the_record_itself_causes_is_not(error):
    assert not consumer.is_transient(error)


class Applier:
    """Applies values; any batch holding a value in `bad` fails the way the bad value says."""

    def __init__(self, bad: dict[bytes, Exception]):
        self.bad, self.applied, self.calls = bad, [], []

    async def __call__(self, values: list[bytes]) -> None:
        self.calls.append(list(values))
        for value in values:
            if value in self.bad:
                raise self.bad[value]
        self.applied += values


async def test_a_bad_record_is_decided_and_the_records_around_it_go_through():
    broker, decided = FakeBroker(), []
    letters_for(broker)
    apply = Applier({b"bad": KeyError("seq")})
    records = [Record(1, b"a"), Record(2, b"bad"), Record(3, b"b")]

    async def decide(record, value, error):
        decided.append((record.offset, value, str(error)))

    await consumer.apply_batch(broker, records, read=lambda v: v, apply=apply, decide=decide)
    assert apply.applied == [b"a", b"b"]
    assert decided == [(2, b"bad", "'seq'")]
    assert apply.calls.count([b"bad"]) == 2, "decided once it failed the same way twice"
    assert broker.published == []  # decided by `decide`, not dead-lettered


async def test_without_a_decision_a_bad_record_is_dead_lettered_with_its_reason():
    broker = FakeBroker()
    letters_for(broker)
    await consumer.apply_batch(broker, [Record(7, b"bad"), Record(8, b"ok")], read=lambda v: v,
                            apply=Applier({b"bad": ValueError("year -1 is out of range")}))
    [(topic, value, headers)] = broker.published
    assert (topic, value) == ("t.events.accepted.dlq", b"bad")
    assert headers["nqt-dlq-error-class"] == "ValueError" and headers["nqt-dlq-original-offset"] == "7"
    assert headers["nqt-dlq-attempts"] == "2"


async def test_an_outage_is_raised_so_the_batch_is_read_again_and_nothing_is_decided():
    broker = FakeBroker()
    letters_for(broker)
    apply = Applier({b"a": ServerSelectionTimeoutError("no servers")})
    with pytest.raises(ServerSelectionTimeoutError):
        await consumer.apply_batch(broker, [Record(1, b"a"), Record(2, b"b")], read=lambda v: v, apply=apply,
                                decide=pytest.fail)
    assert broker.published == [] and apply.applied == []


async def test_an_outage_while_a_bad_record_is_decided_is_waited_out_too():
    broker = FakeBroker()
    letters_for(broker)

    async def decide(record, value, error):
        raise ServerSelectionTimeoutError("no servers")

    with pytest.raises(ServerSelectionTimeoutError):
        await consumer.apply_batch(broker, [Record(1, b"bad")], read=lambda v: v, apply=Applier({b"bad": KeyError("x")}),
                                decide=decide)
    assert broker.published == [], "not dead-lettered because the decision met an outage"


async def test_a_record_is_dead_lettered_once_however_often_its_batch_is_read_again():
    broker, db = FakeBroker(), FakeDb()
    letters_for(broker, db)

    def read(value: bytes) -> bytes:
        if value == b"\x00":
            raise consumer.Poison("not JSON")
        return value

    records = [Record(1, b"\x00"), Record(2, b"ok")]
    for _ in range(3):  # e.g. the batch failed later by an outage and was read again
        await consumer.apply_batch(broker, records, read=read, apply=Applier({}))
    assert [p[1] for p in broker.published] == [b"\x00"]


class Message:
    def __init__(self, record):
        self.raw_message = record


async def consume(middleware, record, error: Exception | None):
    async def call_next(msg):
        if error is not None:
            raise error
        return "done"

    return await middleware(None, context=None).consume_scope(call_next, Message(record))


async def test_a_single_record_subscriber_waits_out_an_outage_however_long(monkeypatch):
    monkeypatch.setattr(consumer.asyncio, "sleep", _no_sleep)
    broker = FakeBroker()
    middleware = consumer.dead_letter_middleware(letters_for(broker), max_attempts=5)
    record = Record(3, b"registry change", topic="t.programs.changes")
    for _ in range(20):
        with pytest.raises(ServerSelectionTimeoutError):
            await consume(middleware, record, ServerSelectionTimeoutError("no servers"))
    assert broker.published == []
    assert await consume(middleware, record, None) == "done"


async def test_a_single_record_that_fails_the_same_way_twice_is_dead_lettered(monkeypatch):
    monkeypatch.setattr(consumer.asyncio, "sleep", _no_sleep)
    broker = FakeBroker()
    middleware = consumer.dead_letter_middleware(letters_for(broker), max_attempts=5)
    record = Record(4, b"{}", topic="t.programs.changes")
    with pytest.raises(KeyError):
        await consume(middleware, record, KeyError("seq"))
    assert await consume(middleware, record, KeyError("seq")) is None  # decided: the partition moves on
    [(topic, value, headers)] = broker.published
    assert topic == "t.programs.changes.dlq" and headers["nqt-dlq-attempts"] == "2"


async def _no_sleep(_seconds):
    return None


async def test_a_request_waiting_while_a_long_batch_is_read_is_served_before_its_end():
    """Reading thousands of records takes a while: whatever else the process serves (the status,
    /healthz) gets its turn between them, not after the whole batch."""
    broker, seen = FakeBroker(), []
    letters_for(broker)

    def read(value: bytes) -> bytes:
        seen.append(value)
        return value

    async def request() -> None:
        seen.append(b"request")

    records = [Record(offset, str(offset).encode()) for offset in range(1000)]
    waiting = asyncio.ensure_future(request())
    await consumer.apply_batch(broker, records, read=read, apply=Applier({}))
    await waiting
    assert seen.index(b"request") < len(records)


def test_a_batch_leaves_the_records_of_partitions_taken_away_uncommitted():
    """A rebalance took partition 1 away between the fetch and the batch: its records are left to
    its new owner, which starts from the last commit, so the commit after this batch (of every
    position the consumer holds, partition 1 among them until the new owner is named) must not
    pass them. Partition 0's records are applied and committed past."""
    client = FakeConsumer()
    records = client.fetched([Record(5, b"a", partition=0), Record(7, b"b", partition=1),
                              Record(6, b"c", partition=0), Record(8, b"d", partition=1)])

    kept = consumer.of_partitions(records, {0}, client)
    asyncio.run(client.commit())

    assert [r.value for r in kept] == [b"a", b"c"]
    assert client.committed == {TopicPartition("t.events.accepted", 0): 7, TopicPartition("t.events.accepted", 1): 7}


def test_a_partition_the_consumer_no_longer_holds_is_left_as_it_is():
    client = FakeConsumer()
    records = [Record(3, b"a", partition=2)]  # fetched before the new assignment dropped partition 2

    assert consumer.of_partitions(records, {0}, client) == []
    assert consumer.of_partitions(records, None, client) == records  # no rebalance heard: every record
