"""A replay of `events.accepted` into an empty database looks up only the event keys it has
met, and still decides an event sent again as the duplicate it was."""

from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace

from nqt.rebuild import ProgramsReplay, Seen, Skipped
from services.programs.service import ProgramsService
from shared import accepted
from shared.events import parse_event
from tests import samples
from tests.fakes import FakeProgramsStore


def test_a_key_met_is_always_known_and_few_keys_not_met_are_taken_for_met():
    seen = Seen()
    met = [f"SO-KHDT:E-{i}" for i in range(200_000)]
    new = sum(seen.add(key) for key in met)  # each says whether it was new
    assert len(met) - 100 < new <= len(met)
    assert all(key in seen for key in met)
    assert not any(seen.add(key) for key in met[:1000])  # met again: not new
    assert sum(f"SO-TC:E-{i}" in seen for i in range(10_000)) < 100


def accepted_record(offset: int, raw: dict) -> SimpleNamespace:
    _, value = accepted.stamp(parse_event(raw), now=datetime(2021, 3, 1, 2, offset, tzinfo=timezone.utc))
    return SimpleNamespace(topic="events.accepted", partition=0, offset=offset, value=value, key=None, headers=())


async def test_a_replay_looks_up_only_keys_it_met_and_an_event_sent_again_is_a_duplicate():
    store, asked = FakeProgramsStore(), []
    looked_up = store.outcomes_for

    async def outcomes_for(keys):
        asked.append(sorted(keys))
        return await looked_up(keys)

    store.outcomes_for = outcomes_for
    replay = ProgramsReplay(store.db, Skipped(), hold_seconds=3 * 24 * 3600,
                            started=datetime(2021, 4, 1, tzinfo=timezone.utc))
    replay.service = ProgramsService(store, hold_seconds=3 * 24 * 3600)
    decided, process_batch = [], replay.service.process_batch

    async def deciding(batch, **options):
        outcomes = await process_batch(batch, **options)
        decided.append([(o["_id"], o["outcome"]) for o in outcomes])
        return outcomes

    replay.service.process_batch = deciding
    update = samples.task_update("SO-KHDT", "E-U1", "T1", "02", "in_progress", 30)
    await replay.apply([accepted_record(i, raw) for i, raw in enumerate([
        samples.envelope("VPTU", "reg-u1", "registry.unit", samples.registry_unit("SO-KHDT", "Sở KH&ĐT")),
        samples.envelope("VPTU", "reg-p2", "registry.programme", samples.registry_programme("02")),
        samples.plan("SO-KHDT", "E-P1", "KH-1", "02", [samples.task("T1", lead_unit="SO-KHDT")]), update])])
    first = list(asked)
    asked.clear()
    again = samples.task_update("SO-KHDT", "E-U2", "T1", "02", "completed", 100)
    await replay.apply([accepted_record(10, update), accepted_record(11, again)])

    assert first == [[]]
    assert asked == [["SO-KHDT:E-U1"]]
    assert decided[-1] == [("SO-KHDT:E-U1", "duplicate"), ("SO-KHDT:E-U2", "applied")]
    outcomes = {k: o["outcome"] for k, o in store.c["outcomes"].items()}
    assert outcomes == {"VPTU:reg-u1": "applied", "VPTU:reg-p2": "applied", "SO-KHDT:E-P1": "applied",
                        "SO-KHDT:E-U1": "applied", "SO-KHDT:E-U2": "applied"}
    assert [t["status"] for t in await store.current_tasks()] == ["completed"]
