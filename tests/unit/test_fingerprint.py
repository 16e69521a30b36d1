"""Fingerprints of the state the log determines: the same state gives the same print whatever
the order it was written in, fields that follow the clock do not count, and a difference is
named by its collection and `_id`."""

from __future__ import annotations

from datetime import datetime, timezone

from bson import Binary

from nqt.fingerprint import STATE, Counted, ServicePrint, collection_print, first_difference

OUTCOMES = Counted("outcomes", frozenset({"decided_at"}))


def outcome(key: str, outcome: str = "applied", decided_at: str = "2021-03-01T00:00:00Z") -> dict:
    return {"_id": key, "event_key": key, "outcome": outcome, "decided_at": decided_at,
            "changes": [{"kind": "task", "id": "T1", "seq": 1, "state": {"status": "in_progress", "progress": 40}}]}


def printed(*collections) -> ServicePrint:
    return ServicePrint("programs", "db", list(collections))


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


def test_the_first_difference_names_the_collection_and_the_id():
    tasks = Counted("tasks")
    live = printed(collection_print(tasks, [{"_id": "T1", "seq": 1}, {"_id": "T2", "seq": 2}, {"_id": "T3", "seq": 1}]),
                   collection_print(OUTCOMES, [outcome("A:1")]))
    same = printed(collection_print(tasks, [{"_id": "T3", "seq": 1}, {"_id": "T2", "seq": 2}, {"_id": "T1", "seq": 1}]),
                   collection_print(OUTCOMES, [outcome("A:1", decided_at="later")]))
    assert first_difference(live, same) is None and live.digest == same.digest

    changed = printed(collection_print(tasks, [{"_id": "T1", "seq": 1}, {"_id": "T2", "seq": 3}, {"_id": "T3", "seq": 9}]),
                      collection_print(OUTCOMES, []))
    found = first_difference(live, changed)
    assert (found.collection, found.id, found.how) == ("tasks", "T2", "differs")
    assert live.digest != changed.digest

    missing = printed(collection_print(tasks, [{"_id": "T1", "seq": 1}, {"_id": "T2", "seq": 2}, {"_id": "T3", "seq": 1}]),
                      collection_print(OUTCOMES, []))
    missing.database = "replay_nqt_programs"
    found = first_difference(live, missing)
    assert (found.collection, found.id, found.how) == ("outcomes", "A:1", "only in db")


def test_what_depends_on_when_a_service_ran_does_not_count():
    counted = {service: {c.name for c in collections} for service, collections in STATE.items()}
    assert set(counted) == {"programs", "reports", "ingest", "notify"}
    for service, names in counted.items():
        assert not names & {"claims", "dead_letters", "keys", "webhook_ids", "deliveries", "digests", "items",
                            "locks", "archive", "numbers", "counters"}, service
    assert "cycles" not in counted["reports"]  # opened by its scheduler, on its clock
