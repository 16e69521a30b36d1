"""Task states kept as a changelog plus checkpoints (`shared.statelog`): whatever write a crash
interrupts (a batch's changelog, a fold's checkpoints half-written, its deletes not done) and
however a batch read again is bounded, a fresh load of each group gives the states the writes
before the crash made, the highest `seq` of each key, and the documents stay few."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from shared import statelog
from shared.statelog import Known, StateLog
from tests.fakes import FakeCollection


class Crash(Exception):
    pass


def _log(collection) -> StateLog:
    return StateLog(collection, key="id", group=lambda s: s["group"])


def _model(batches: list[list[dict]]) -> dict[str, dict]:
    latest: dict[str, dict] = {}
    for batch in batches:
        for state in batch:
            if state["id"] not in latest or latest[state["id"]]["seq"] < state["seq"]:
                latest[state["id"]] = state
    return latest


# a batch: (key, group) changes; each key's seq counts its changes, a change of group is a move
changes = st.lists(st.lists(st.tuples(st.sampled_from("abcdef"), st.sampled_from("PQR")), min_size=1, max_size=6),
                   min_size=1, max_size=12)


def _batches(drawn) -> list[list[dict]]:
    seq: dict[str, int] = {}
    group: dict[str, str] = {}
    left: dict[str, set[str]] = {}
    batches = []
    for batch in drawn:
        states = {}
        for key, g in batch:
            seq[key] = seq.get(key, 0) + 1
            if key in group and group[key] != g:
                left[key] = (left.get(key, set()) | {group[key]}) - {g}
            group[key] = g
            states[key] = {"id": key, "group": g, "seq": seq[key], "left": sorted(left.get(key, ()))}
        batches.append(list(states.values()))
    return batches


async def _owner_run(collection, batches: list[list[dict]], groups: set[str], committed: list | None = None) -> None:
    """An owner of `groups` loads them, then logs each batch and folds every other batch;
    `committed` counts the batches done (the consumer commits their offsets)."""
    log, known = _log(collection), Known()
    held = await log.read(groups, known)
    for n, batch in enumerate(batches):
        await log.append(batch, known)
        held.update({s["id"]: s for s in batch})
        if n % 2:
            await log.fold(list(held.values()), groups, known)
        if committed is not None:
            committed.append(n)


@settings(max_examples=300, deadline=None)
@given(drawn=changes, crash_at=st.integers(1, 40), partial=st.booleans(), restart_from=st.integers(0, 11))
def test_a_crash_between_any_two_writes_then_a_fresh_load_gives_the_same_states(drawn, crash_at, partial,
                                                                                  restart_from):
    """The owner dies at any write (mid-insert too), a new owner reads the batches again from an
    earlier point (a re-read bounded differently) and goes on: each group loads as the model says."""
    batches = _batches(drawn)
    writes = {"n": 0}

    def crash():
        writes["n"] += 1
        if writes["n"] == crash_at:
            raise Crash

    collection = FakeCollection(crash)
    collection.partial = partial
    groups = {"P", "Q", "R"}
    committed: list[int] = []
    try:
        asyncio.run(_owner_run(collection, batches, groups, committed))
    except (Crash, ConnectionError):
        collection.crash = lambda: None
        again = batches[min(restart_from, len(committed)):]  # from the committed offset or before
        asyncio.run(_owner_run(collection, [[s for b in again for s in b]], groups))  # one bigger batch
    want = _model(batches)
    for group in groups:
        loaded = asyncio.run(_log(collection).read({group}))
        assert loaded == {k: s for k, s in want.items() if s["group"] == group}
    assert asyncio.run(_log(collection).read()) == want


def test_a_group_left_by_a_key_held_by_another_owner_no_longer_loads_it():
    """A key moves from P (one owner's) to Q (another's): after both fold, P loads without it."""
    collection = FakeCollection()
    first = [{"id": "a", "group": "P", "seq": 1}, {"id": "b", "group": "P", "seq": 1}]
    moved = [{"id": "a", "group": "Q", "seq": 2, "left": ["P"]}]
    asyncio.run(_owner_run(collection, [first, []], {"P"}))
    asyncio.run(_owner_run(collection, [moved, []], {"Q"}))
    assert set(asyncio.run(_log(collection).read({"P"}))) == {"b"}
    assert asyncio.run(_log(collection).read({"Q"}))["a"]["seq"] == 2


def test_folding_keeps_a_load_to_a_checkpoint_per_group_and_a_bounded_changelog(monkeypatch):
    """Many small batches: the documents stay a checkpoint per group plus fewer than a fold's worth."""
    monkeypatch.setattr(statelog, "FOLD_FLOOR", 10)
    collection = FakeCollection()

    async def run():
        log, known = _log(collection), Known()
        held: dict[str, dict] = {}
        for n in range(1, 501):
            state = {"id": f"k{n % 40}", "group": "PQ"[n % 2], "seq": n}
            await log.append([state], known)
            held[state["id"]] = state
            await log.fold_if_due(held.values(), {"P", "Q"}, known)

    asyncio.run(run())
    assert len(collection.docs) <= 2 + 40
    assert len(asyncio.run(_log(collection).read())) == 40
