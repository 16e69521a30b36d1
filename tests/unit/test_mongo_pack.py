"""A value packed into one field comes back as it was, and one value packs to one byte string
whatever the order of its keys: a replay of the log, which builds its documents in another
order, then stores the very bytes the live service stored (`nqt replay --compare`)."""

from __future__ import annotations

import zlib

import orjson

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


def test_a_value_packed_before_zstd_still_comes_back():
    """Databases written before keep their zlib-packed outcomes and task states: still read."""
    old = zlib.compress(orjson.dumps(OUTCOME, option=orjson.OPT_SORT_KEYS), 1)
    assert mongo.unpack(old) == OUTCOME


def test_a_thousand_outcomes_pack_small():
    """A batch's outcomes are alike: what FerretDB stores of them is a small fraction of their JSON."""
    outcomes = {f"SO-KHDT:U{i}": {**OUTCOME, "event_key": f"SO-KHDT:U{i}"} for i in range(1000)}
    assert len(mongo.pack(outcomes, sort_keys=False)) < len(orjson.dumps(outcomes)) / 70  # zlib: 1/47
