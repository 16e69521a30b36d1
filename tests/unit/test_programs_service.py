"""The programs service as one replica among several: it sweeps only the held updates of
the programmes it holds, forgets what it kept when it loses its partitions, and refuses an
event type it has no rule for, with the reason."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest
from aiokafka import TopicPartition

from shared import consumer, kafka
from shared.events import parse_event
from tests.fakes import FakeProgramsStore
from tests.unit.test_consumer_errors import FakeBroker, FakeConsumer, Record, letters_for
from tests.unit.test_programs_property import _plan, _update, run

from services.programs import handlers, service as programs_service
from services.programs.service import Accepted, ProgramsService
from services.programs.settings import ProgramsSettings
from tests import samples


def test_the_sweep_decides_only_the_held_updates_of_programmes_this_replica_holds():
    store = FakeProgramsStore()
    waiting = [(_update("U1", "T1", "in_progress", "2021-03-03T08:00:00+07:00"), "a1"),
               (samples.task_update("SO-KHDT", "U2", "T2", "02", "blocked", 10, time="2021-03-03T08:00:00+07:00"),
                "a2")]
    asyncio.run(run(store, waiting))
    swept = asyncio.run(ProgramsService(store, hold_seconds=60).sweep(
        now=datetime(2030, 1, 1, tzinfo=timezone.utc), owns=lambda programme: programme == "02"))

    assert [(o["event_key"], o["code"]) for o in swept] == [("SO-KHDT:U2", "unknown_task")]
    assert set(store.c["held"]) == {"SO-KHDT:U1", "SO-KHDT:U2"}  # forgotten once published


def test_a_replica_that_loses_its_partitions_reads_the_state_again():
    """Another replica took the partition over and changed a task meanwhile; given the
    partition back, this one decides from the state in the database, not from its memory."""
    store = FakeProgramsStore()
    store.db = object()  # the replica's database, as its runtime has it
    asyncio.run(run(store, [(_plan("P1", ["T1"], "2021-03-01T08:00:00+07:00"), "a1")]))
    mine, theirs = ProgramsService(store), ProgramsService(store)
    runtime = SimpleNamespace(db=store.db, programs=mine, settings=ProgramsSettings())
    later = _update("U2", "T1", "completed", "2021-03-05T08:00:00+07:00")
    earlier = _update("U1", "T1", "blocked", "2021-03-04T08:00:00+07:00")

    async def scenario():
        await mine.process_batch([Accepted(parse_event(earlier), "2021-03-04T00:00:00.000000Z", "a2")])
        await handlers.Ownership(runtime).on_partitions_revoked({TopicPartition("events.accepted", 0)})
        await theirs.process_batch([Accepted(parse_event(later), "2021-03-05T00:00:00.000000Z", "a3")])
        again = _update("U3", "T1", "in_progress", "2021-03-06T08:00:00+07:00")
        return await mine.process_batch([Accepted(parse_event(again), "2021-03-06T00:00:00.000000Z", "a4")])

    outcome, = asyncio.run(scenario())
    change, = outcome["changes"]
    assert (change["old"]["status"], change["seq"]) == ("completed", 4)  # plan, U1, U2 (theirs), U3


def replica() -> tuple[FakeBroker, SimpleNamespace]:
    """A programs replica over in-memory fakes: the broker it publishes to, and its runtime."""
    store = FakeProgramsStore()
    store.db = object()
    broker = FakeBroker()
    letters_for(broker)
    return broker, SimpleNamespace(db=store.db, programs=ProgramsService(store), broker=broker,
                                   settings=ProgramsSettings())


def test_an_event_type_without_a_rule_is_refused_with_the_reason(monkeypatch):
    monkeypatch.delitem(programs_service.RULES, "task.updated")
    broker, runtime = replica()
    stamped = [kafka.dumps({**_update("U1", "T1", "in_progress", "2021-03-03T08:00:00+07:00"),
                            "nqtacceptedtime": "2021-03-03T01:00:00.000000Z", "nqtacceptid": "a1"})]

    asyncio.run(consumer.apply_batch(broker, [Record(i, v) for i, v in enumerate(stamped)], read=handlers.read_accepted,
                                     apply=lambda batch: handlers.decide_batch(runtime, batch),
                                     decide=lambda record, item, error: handlers.refuse(runtime, item, error)))

    outcome, = [kafka.loads(v) for t, v, _ in broker.published if t.endswith("programs.outcomes")]
    assert (outcome["outcome"], outcome["code"]) == ("rejected", "invalid_event")
    assert "no rule for event type 'task.updated'" in outcome["message_en"]


@pytest.mark.parametrize("reassigned", [True, False], ids=["after-the-new-assignment", "while-the-group-rebalances"])
def test_a_batch_fetched_before_a_rebalance_leaves_the_partitions_it_lost_to_their_new_owner(reassigned):
    """A rebalance lands between the fetch and the decision and takes the partitions away, then
    gives partition 0 back. A record of a partition not held is neither decided nor published
    here, and the commit after the batch does not pass it: its owner reads it from the last
    commit. Until the group has answered, the consumer still holds every partition it had and
    would commit their positions (a fault run lost three updates that way)."""
    broker, runtime = replica()
    ownership = handlers.Ownership(runtime)
    kept, lost = (kafka.dumps({**_plan(plan, [task], "2021-03-01T08:00:00+07:00"),
                               "nqtacceptedtime": "2021-03-01T01:00:00.000000Z", "nqtacceptid": accept_id})
                  for plan, task, accept_id in (("P1", "T1", "a1"), ("P2", "T2", "a2")))
    tp0, tp1 = TopicPartition("t.events.accepted", 0), TopicPartition("t.events.accepted", 1)
    client = FakeConsumer()
    batch = client.fetched([Record(3, kept, partition=0), Record(4, lost, partition=1)])

    async def scenario():
        await ownership.on_partitions_assigned({tp0, tp1})
        await ownership.on_partitions_revoked({tp0, tp1})
        if reassigned:
            await ownership.on_partitions_assigned({tp0})
            client.positions = {tp0: 3}  # the consumer holds what it was assigned, from the last commit
            client.fetched(batch[:1])
        await handlers.take_batch(runtime, ownership, batch, client)
        await client.commit()

    asyncio.run(scenario())
    outcomes = [kafka.loads(v) for t, v, _ in broker.published if t.endswith("programs.outcomes")]
    assert [o["id"] for o in outcomes] == ([kafka.loads(kept)["id"]] if reassigned else [])
    assert client.committed.get(tp1, 4) == 4  # not past the record left to partition 1's owner
    assert client.committed[tp0] == (4 if reassigned else 3)


def test_a_record_breaking_the_schema_is_dead_lettered_and_the_rest_of_its_batch_decided():
    """One batch: a plan, a status report whose time is no time, a status report. The broken one
    goes to the dead letters, bytes unchanged, with the field it breaks named; the others are
    decided as if it were not there."""
    broker, runtime = replica()
    asyncio.run(run(runtime.programs.store, []))  # the registry
    ownership = handlers.Ownership(runtime)

    def stamped(raw: dict, accept_id: str) -> bytes:
        return kafka.dumps({**raw, "nqtacceptedtime": "2021-03-01T01:00:00.000000Z", "nqtacceptid": accept_id})

    plan = stamped(_plan("P1", ["T1"], "2021-03-01T08:00:00+07:00"), "a1")
    broken = stamped({**_update("U1", "T1", "blocked", "2021-03-02T08:00:00+07:00"), "time": "yesterday"}, "a2")
    update = stamped(_update("U2", "T1", "completed", "2021-03-03T08:00:00+07:00"), "a3")

    async def scenario():
        await ownership.on_partitions_assigned({TopicPartition("t.events.accepted", 0)})
        await handlers.take_batch(runtime, ownership, [Record(0, plan), Record(1, broken), Record(2, update)],
                                  FakeConsumer())

    asyncio.run(scenario())
    dead = [(value, headers) for topic, value, headers in broker.published if topic.endswith(".dlq")]
    assert [value for value, _ in dead] == [broken]
    assert dead[0][1]["nqt-dlq-error-class"] == "Poison" and dead[0][1]["nqt-dlq-error-message"].startswith("/time:")
    outcomes = [kafka.loads(v) for t, v, _ in broker.published if t.endswith("programs.outcomes")]
    assert [(o["id"], o["outcome"]) for o in outcomes] == [("P1", "applied"), ("U2", "applied")]


def test_a_batch_publishes_its_changes_before_it_folds_the_task_states():
    """The fold (a checkpoint per programme, tens of ms, every hundred batches or so) waits until
    the batch's changes are out: it held back every change of the batch it fell in, the freshness p99."""
    broker, runtime = replica()
    store, service = runtime.programs.store, runtime.programs
    asyncio.run(run(store, [(_plan("P1", ["T1"], "2021-03-01T08:00:00+07:00"), "a1")]))
    changes_out_at_fold = []

    async def fold_tasks(*args, **kwargs):
        changes_out_at_fold.append(sum(t.endswith("programs.changes") for t, _, _ in broker.published))

    store.fold_tasks = fold_tasks
    service.forget()  # read the plan's task afresh
    stamped = kafka.dumps({**_update("U1", "T1", "in_progress", "2021-03-03T08:00:00+07:00"),
                           "nqtacceptedtime": "2021-03-03T01:00:00.000000Z", "nqtacceptid": "a2"})
    asyncio.run(consumer.apply_batch(broker, [Record(0, stamped)], read=handlers.read_accepted,
                                     apply=lambda batch: handlers.decide_batch(runtime, batch)))

    assert changes_out_at_fold == [1]  # one fold, once the status report's change was published
