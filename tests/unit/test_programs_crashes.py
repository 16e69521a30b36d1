"""Property: the batch path crashed anywhere (before or after any of its bulk writes, before or
after publishing, before the offsets are committed), its batch then read again by a fresh
replica over the same database, ends where the reference model does, and announces what the
model does: an outcome published by an attempt that crashed is the same as the one published
again, never another."""

from __future__ import annotations

import asyncio
from unittest.mock import patch

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from shared import statelog
from shared.events import parse_event
from tests.fakes import FakeProgramsStore
from tests.programs_model import REGISTRY, service_state, streams
from tests.unit.test_programs_property import (DROPPED_THEN_UPDATED, REVISION_OUT_OF_ORDER, SENT_AGAIN_WHILE_HELD,
                                               UPDATE_BEFORE_PLAN_AND_OLDER_LATE, expected)

from services.programs.service import Accepted, ProgramsService

# Every write the batch path makes, in the store's terms.
WRITES = ("put_tasks", "put_plan", "put_versioned", "insert_many_once",
          "put_registry_entry", "hold_many", "record_outcomes", "forget_held", "fold_tasks")


class Crash(Exception):
    """The process died here."""


class Ticks:
    """Counts the places a crash may happen at; raises `Crash` at the chosen ones."""

    def __init__(self, crashes: set[int]):
        self.crashes, self.count, self.armed = crashes, 0, False

    def __call__(self) -> None:
        if self.armed:
            self.count += 1
            if self.count in self.crashes:
                raise Crash(f"at tick {self.count}")


def crashing(store_class: type) -> type:
    """`store_class` with a crash point before and after each write."""
    def wrap(name):
        async def write(self, *args, **kwargs):
            self.tick()
            result = await getattr(store_class, name)(self, *args, **kwargs)
            self.tick()
            return result
        return write

    return type(f"Crashing{store_class.__name__}", (store_class,), {name: wrap(name) for name in WRITES})


async def run_crashing(store, deliveries, batch: int) -> list[tuple[str, str]]:
    """Deliver the stream `batch` records at a time as the consumer does, a fresh replica taking
    over after each crash; return what every attempt published, as (event key, outcome)."""
    service = ProgramsService(store)
    await service.process_batch([Accepted(parse_event(raw), "2021-01-01T00:00:00.000000Z", f"r{i}")
                                 for i, raw in enumerate(REGISTRY)])
    store.tick.armed = True
    published = []
    for start in range(0, len(deliveries), batch):
        records = [Accepted(parse_event(raw), "2021-03-01T00:00:00.000000Z", accept_id)
                   for raw, accept_id in deliveries[start:start + batch]]
        while True:
            try:
                outcomes = await service.process_batch(records)
                store.tick()
                published += [(o["event_key"], o["outcome"]) for o in outcomes]
                store.tick()
                await service.forget_held(outcomes)
                store.tick()  # the offsets are committed after this
                break
            except Crash:
                service = ProgramsService(store)
    return published


async def fake_state(store) -> tuple[list[dict], dict, set]:
    """Tasks, outcomes (event key -> (outcome, code)) and held updates as stored."""
    outcomes = {k: (o["outcome"], o.get("code")) for k, o in store.c["outcomes"].items()
                if not k.startswith("VPTU:reg-")}
    return await store.current_tasks(), outcomes, set(store.c.get("held", {}))


async def check(store, deliveries, batch: int, stored=fake_state) -> None:
    published = await run_crashing(store, deliveries, batch)
    tasks, outcomes, held = await stored(store)
    model = expected(deliveries)
    assert service_state(tasks) == model.state()
    assert {t["_id"]: t["seq"] for t in tasks} == model.seqs()  # each change counted once
    assert outcomes == model.outcomes
    assert held == set(model.held)
    assert set(published) == set(model.published)  # what was announced twice was announced alike


CRASHES = st.sets(st.integers(1, 80), max_size=4)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(), st.integers(1, 8), CRASHES)
@example(DROPPED_THEN_UPDATED, 3, {5, 9})
@example(UPDATE_BEFORE_PLAN_AND_OLDER_LATE, 2, {13, 21})
@example(REVISION_OUT_OF_ORDER, 1, {4, 8, 17})
@example(SENT_AGAIN_WHILE_HELD, 4, {19, 20, 22})
def test_a_batch_crashed_anywhere_and_read_again_ends_where_the_model_does(deliveries, batch, crashes):
    store = crashing(FakeProgramsStore)()
    store.tick = Ticks(crashes)
    asyncio.run(check(store, deliveries, batch))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(), st.integers(1, 8), CRASHES)
@example(DROPPED_THEN_UPDATED, 1, {7, 12})
def test_a_crash_inside_folding_the_task_states_loses_and_doubles_nothing(deliveries, batch, crashes):
    """Folding after every batch, a crash may fall between a fold's checkpoints and its deletes
    (each collection command a crash point too): read again, the batches end where the model does."""
    store = crashing(FakeProgramsStore)()
    store.tick = Ticks(crashes)
    for collection in (store.db.task_states, store.db.task_homes):
        collection.crash = lambda: store.tick()
    with patch.object(statelog, "FOLD_DOCS", 1):
        asyncio.run(check(store, deliveries, batch))
