"""Fingerprints of the state the log determines: the same state gives the same print whatever
the order it was written in, fields that follow the clock do not count, and a difference is
named by its collection and `_id`; outcomes are read one pack at a time."""

from __future__ import annotations

import tracemalloc
from datetime import datetime, timezone

from bson import Binary

from nqt.fingerprint import STATE, Counted, _documents, collection_print, documents, first_differing_id
from shared import mongo
from tests.fakes import FakeDb

OUTCOMES = Counted("outcomes", frozenset({"decided_at"}))


def outcome(key: str, outcome: str = "applied", decided_at: str = "2021-03-01T00:00:00Z") -> dict:
    return {"_id": key, "event_key": key, "outcome": outcome, "decided_at": decided_at,
            "changes": [{"kind": "task", "id": "T1", "seq": 1, "state": {"status": "in_progress", "progress": 40}}]}


def test_the_order_of_documents_and_of_their_keys_does_not_count():
    docs = [outcome("A:1"), outcome("B:2", "rejected"), outcome("C:3")]
    shuffled = [docs[2], {k: docs[0][k] for k in reversed(list(docs[0]))}, docs[1]]
    shuffled[1]["changes"] = [{k: v for k, v in reversed(list(docs[0]["changes"][0].items()))}]
    assert collection_print(OUTCOMES, docs).digest == collection_print(OUTCOMES, shuffled).digest


def test_fields_left_out_do_not_count_and_every_other_field_does():
    base = collection_print(OUTCOMES, [outcome("A:1")]).digest
    assert collection_print(OUTCOMES, [outcome("A:1", decided_at="2026-11-30T18:00:00Z")]).digest == base
    assert collection_print(OUTCOMES, [outcome("A:1", "rejected")]).digest != base
    nested = outcome("A:1")
    nested["changes"][0]["state"]["progress"] = 41
    assert collection_print(OUTCOMES, [nested]).digest != base
    assert collection_print(OUTCOMES, [outcome("A:1"), outcome("B:2")]).digest != base


def test_values_json_has_no_type_for_are_fingerprinted_too():
    counted = Counted("archive")
    at = datetime(2021, 3, 1, tzinfo=timezone.utc)
    one = collection_print(counted, [{"_id": "x", "at": at, "file": Binary(b"%PDF-1")}]).digest
    assert one == collection_print(counted, [{"_id": "x", "at": at, "file": Binary(b"%PDF-1")}]).digest
    assert one != collection_print(counted, [{"_id": "x", "at": at, "file": Binary(b"%PDF-2")}]).digest


def test_the_first_difference_is_named_by_its_id():
    tasks = Counted("tasks")
    live = documents(tasks, [{"_id": "T1", "seq": 1}, {"_id": "T2", "seq": 2}, {"_id": "T3", "seq": 1}])
    same = documents(tasks, [{"_id": "T3", "seq": 1}, {"_id": "T2", "seq": 2}, {"_id": "T1", "seq": 1}])
    assert first_differing_id(live, same, "nqt_reports", "replay_nqt_reports") is None
    assert collection_print(tasks, live) == collection_print(tasks, same)

    changed = documents(tasks, [{"_id": "T1", "seq": 1}, {"_id": "T2", "seq": 3}, {"_id": "T3", "seq": 9}])
    assert first_differing_id(live, changed, "nqt_reports", "replay_nqt_reports") == ("T2", "differs")
    assert collection_print(tasks, live).digest != collection_print(tasks, changed).digest

    fewer = documents(tasks, [{"_id": "T1", "seq": 1}, {"_id": "T3", "seq": 1}])
    assert first_differing_id(live, fewer, "nqt_reports", "replay_nqt_reports") == ("T2", "only in nqt_reports")
    more = {**live, **documents(tasks, [{"_id": "T0", "seq": 1}])}
    assert first_differing_id(live, more, "nqt_reports", "replay_nqt_reports") == ("T0", "only in replay_nqt_reports")


def test_what_depends_on_when_a_service_ran_does_not_count():
    counted = {service: {c.name for c in collections} for service, collections in STATE.items()}
    assert set(counted) == {"programs", "reports", "ingest", "notify"}
    for service, names in counted.items():
        assert not names & {"claims", "dead_letters", "keys", "webhook_ids", "deliveries", "digests", "items",
                            "locks", "archive", "numbers", "counters"}, service
    assert "cycles" not in counted["reports"]  # opened by its scheduler, on its clock


async def test_outcomes_are_fingerprinted_one_pack_at_a_time():
    """A whole term's million outcomes, each with its changes, took gigabytes when read all at
    once for `nqt replay --compare`: they are digested as each pack is unpacked, and a pack that
    no outcome names (a crash between writing it and filing its outcomes) does not count."""
    db = FakeDb()
    note = "x" * 2000  # each outcome 2 KB once unpacked, a few bytes packed
    for n in range(50):
        part = [{**outcome(f"U:{n}-{i}"), "note": note} for i in range(200)]
        pack = {"_id": f"p{n}", "z": mongo.pack({o["_id"]: o for o in part})}
        await db.outcome_packs.insert_many([pack])
        await db.outcomes.insert_many([{"_id": o["_id"], "pack": pack["_id"]} for o in part])
    await db.outcome_packs.insert_many([{"_id": "left", "z": mongo.pack({"U:0-0": outcome("U:0-0", "rejected")})}])
    counted = next(c for c in STATE["programs"] if c.name == "outcomes")

    tracemalloc.start()
    try:
        digests = await _documents(db, counted)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(digests) == 10_000
    assert digests["U:0-0"] == documents(counted, [{**outcome("U:0-0"), "note": note}])["U:0-0"]
    assert peak < 12_000_000, peak  # all 10,000 unpacked at once: about 40 MB
