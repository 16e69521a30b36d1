"""The fault suite's checker, fed hand-made histories: what the load generator was told
against what the system shows. An event duplicated on the way in, a lost event and a wrong
count of an event's duplicates are each reported; a faithful history is not."""

from __future__ import annotations

from tests import samples
from tests.faults.judge import History, judge
from tests.faults.load import Load, Send

PLAN = samples.plan("SO-KHDT", "P1", "KH-1", "01", [samples.task(t, lead_unit="SO-KHDT") for t in ("T1", "T2")],
                    time="2021-02-01T09:00:00+07:00")
UPDATE = samples.task_update("SO-KHDT", "U1", "T1", "01", "in_progress", 40, time="2021-03-02T09:00:00+07:00")
SENDS = (Send((PLAN,), "http"), Send((UPDATE,), "kafka"))
TASK = {"plan": "SO-KHDT|KH-1", "programme": "01", "lead_unit": "SO-KHDT", "dropped": False}
NO_TASKS = {"total": 0, "not_started": 0, "in_progress": 0, "completed": 0, "blocked": 0, "cancelled": 0}


class NoDeployment:
    def ingest_urls(self) -> list[str]:
        return []


def load(*acknowledged: Send, unsure: tuple[Send, ...] = ()) -> Load:
    """The load generator's bookkeeping after these sends were acknowledged (and these failed
    in a way that may have got them in all the same: a 503)."""
    sent = Load(NoDeployment(), list(SENDS), rate=1)
    for send in acknowledged:
        sent._record(send)
    for send in unsure:
        sent._failed(send, "503")
    return sent


def stamped(event: dict, accept_id: str) -> dict:
    return {**event, "nqtacceptid": accept_id, "nqtacceptedtime": "2021-04-05T02:00:00.000000Z"}


def faithful(**changes) -> History:
    """What a system that kept its promise shows after the plan and the update were each sent
    once; `changes` replace parts of it."""
    history = History(
        accepted={0: [stamped(PLAN, "a1"), stamped(UPDATE, "a2")]},
        outcomes={"SO-KHDT:P1": {"outcome": "applied"}, "SO-KHDT:U1": {"outcome": "applied"}},
        tasks={"T1": {**TASK, "status": "in_progress", "progress": 40.0, "seq": 2},
               "T2": {**TASK, "status": "not_started", "progress": 0.0, "seq": 1}},
        held=set(),
        statuses={"SO-KHDT:P1": {"status": "applied", "duplicates": 0},
                  "SO-KHDT:U1": {"status": "applied", "duplicates": 0}},
        status={"programmes": [
            {"code": "01", "tasks": {**NO_TASKS, "total": 2, "not_started": 1, "in_progress": 1},
             "progress_pct": 20.0, "plans": {"submitted": 1, "rejected": 0}},
            {"code": "02", "tasks": NO_TASKS, "progress_pct": None, "plans": {"submitted": 0, "rejected": 0}}]},
        notices=[])
    for name, value in changes.items():
        setattr(history, name, value)
    return history


def test_a_history_that_kept_the_promise_passes():
    verdict = judge(faithful(), load(*SENDS))

    assert verdict.ok, verdict.summary()
    assert verdict.facts["acknowledged"] == 2


def test_an_event_duplicated_on_the_way_in_is_doubled():
    # Sent once, acknowledged once; on events.accepted twice (ingest took the record in twice
    # under two acceptance ids), and ingest tells the publisher of a repeat it never made.
    twice = faithful(accepted={0: [stamped(PLAN, "a1"), stamped(UPDATE, "a2"), stamped(UPDATE, "a3")]},
                     statuses={"SO-KHDT:P1": {"status": "applied", "duplicates": 0},
                               "SO-KHDT:U1": {"status": "applied", "duplicates": 1}})

    verdict = judge(twice, load(*SENDS))

    assert not verdict.lost
    assert [d for d in verdict.doubled if d.startswith("SO-KHDT:U1: 2 copies on events.accepted, sent 1")]


def test_a_copy_the_publisher_may_have_sent_is_not_doubled():
    # The update's first send failed with a 503 after Kafka had it after all: two copies,
    # counted as one duplicate, is what the publisher must expect.
    retried = faithful(accepted={0: [stamped(PLAN, "a1"), stamped(UPDATE, "a2"), stamped(UPDATE, "a3")]},
                       statuses={"SO-KHDT:P1": {"status": "applied", "duplicates": 0},
                                 "SO-KHDT:U1": {"status": "applied", "duplicates": 1}})

    verdict = judge(retried, load(*SENDS, unsure=(SENDS[1],)))

    assert verdict.ok, verdict.summary()


def test_an_acknowledged_event_missing_from_events_accepted_is_lost():
    verdict = judge(faithful(accepted={0: [stamped(PLAN, "a1")]}), load(*SENDS))

    assert "SO-KHDT:U1: acknowledged 1 time(s), 0 on events.accepted" in verdict.lost


def test_an_event_never_decided_is_lost():
    undecided = faithful(outcomes={"SO-KHDT:P1": {"outcome": "applied"}},
                         statuses={"SO-KHDT:P1": {"status": "applied", "duplicates": 0},
                                   "SO-KHDT:U1": {"status": "accepted", "duplicates": 0}})

    verdict = judge(undecided, load(*SENDS))

    assert "SO-KHDT:U1: no outcome (model: applied)" in verdict.lost
    assert "SO-KHDT:U1: ingest tells the publisher 'accepted', not 'applied'" in verdict.lost


def test_a_wrong_count_of_duplicates_is_doubled():
    # The update was sent twice and acknowledged twice; ingest counts no repeat.
    sent_twice = faithful(accepted={0: [stamped(PLAN, "a1"), stamped(UPDATE, "a2"), stamped(UPDATE, "a3")]})

    verdict = judge(sent_twice, load(*SENDS, SENDS[1]))

    assert not verdict.lost
    assert [d for d in verdict.doubled if d.startswith("SO-KHDT:U1: ingest counts 0 duplicate(s)")]
