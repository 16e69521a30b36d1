"""A value packed into one field comes back as it was, and one value packs to one byte string
whatever the order of its keys: a replay of the log, which builds its documents in another
order, then stores the very bytes the live service stored (`nqt replay --compare`)."""

from __future__ import annotations

from shared import mongo

OUTCOME = {"outcome": "applied", "event_key": "SO-KHDT:KHDT-2", "changes": [
    {"kind": "task", "id": "T-1", "seq": 2, "state": {"status": "in_progress", "progress": 40.0, "as_of": None,
                                                    "lead_person": {"name": "Nguyễn Văn An", "position": "Phó Giám đốc"}}}],
    "history": {"subject": "T-1", "data": {"progress": 40.0, "note": "đúng tiến độ"}}}


def reordered(value):
    if isinstance(value, dict):
        return {k: reordered(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [reordered(v) for v in value]
    return value


def test_a_packed_value_comes_back_as_it_was():
    assert mongo.unpack(mongo.pack(OUTCOME)) == OUTCOME


def test_one_value_packs_to_one_byte_string_whatever_the_order_of_its_keys():
    assert reordered(OUTCOME) == OUTCOME and list(reordered(OUTCOME)) != list(OUTCOME)
    assert mongo.pack(reordered(OUTCOME)) == mongo.pack(OUTCOME)
