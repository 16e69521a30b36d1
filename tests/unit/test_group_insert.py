"""Concurrent inserts gathered into one round trip while another is in flight."""

from __future__ import annotations

import asyncio

import pytest
from pymongo.errors import BulkWriteError

from shared.mongo import GroupInsert


class SlowCollection:
    """Holds each insert_many until released, as a database round trip would."""

    def __init__(self):
        self.calls: list[list[str]] = []
        self.docs: dict[str, dict] = {}
        self.release = asyncio.Event()
        self.fail_with: Exception | None = None

    async def insert_many(self, docs, ordered=True):
        self.calls.append([d["_id"] for d in docs])
        await self.release.wait()
        if self.fail_with is not None:
            raise self.fail_with
        duplicates = [{"index": i, "code": 11000} for i, d in enumerate(docs) if d["_id"] in self.docs]
        for d in docs:
            self.docs.setdefault(d["_id"], d)
        if duplicates:
            raise BulkWriteError({"writeErrors": duplicates})


async def test_callers_arriving_during_a_write_share_the_next_one():
    collection = SlowCollection()
    group = GroupInsert(collection)
    first = asyncio.create_task(group.insert([{"_id": "a", "n": 1}]))
    await asyncio.sleep(0)
    others = [asyncio.create_task(group.insert([{"_id": k, "n": 2}])) for k in ("b", "c", "a", "b")]
    await asyncio.sleep(0)
    assert collection.calls == [["a"]] and not first.done()
    collection.release.set()
    await asyncio.gather(first, *others)
    assert collection.calls == [["a"], ["b", "c", "a"]]       # one more round trip for four callers
    assert {k: d["n"] for k, d in collection.docs.items()} == {"a": 1, "b": 2, "c": 2}
    await group.insert([{"_id": "d"}])                          # and it starts again when idle
    assert collection.calls[-1] == ["d"]


async def test_a_failed_write_fails_every_caller_it_carried():
    collection = SlowCollection()
    collection.fail_with = RuntimeError("connection closed")
    group = GroupInsert(collection)
    waiting = [asyncio.create_task(group.insert([{"_id": k}])) for k in "xyz"]
    await asyncio.sleep(0)
    collection.release.set()
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    collection.fail_with = None
    await group.insert([{"_id": "x"}])
    assert "x" in collection.docs


async def test_a_caller_that_gives_up_does_not_stop_the_others():
    collection = SlowCollection()
    group = GroupInsert(collection)
    first = asyncio.create_task(group.insert([{"_id": "a"}]))
    await asyncio.sleep(0)
    impatient = asyncio.create_task(group.insert([{"_id": "b"}]))
    patient = asyncio.create_task(group.insert([{"_id": "c"}]))
    await asyncio.sleep(0)
    impatient.cancel()
    collection.release.set()
    await asyncio.gather(first, patient)
    with pytest.raises(asyncio.CancelledError):
        await impatient
    assert set(collection.docs) == {"a", "b", "c"}
