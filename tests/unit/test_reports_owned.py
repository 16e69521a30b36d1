"""The live status is made once per applied batch and day, not per request, and never outlives
what it was made from: a batch applied, memory dropped, the next day, or a replica holding only
some programmes (whose others change under other owners) makes it again."""

from __future__ import annotations

import asyncio
from datetime import date

from shared import kafka

from services.reports.owned import Holdings

MONDAY, TUESDAY = date(2021, 4, 5), date(2021, 4, 6)


class Roll:
    """Stands for the roll-up: counts how often it was made; its answer says what it was made from."""

    def __init__(self, holdings: Holdings):
        self.holdings, self.made = holdings, 0

    async def __call__(self) -> dict:
        self.made += 1
        return {"generation": self.holdings.generation, "made": self.made}


def test_requests_between_batches_get_the_status_made_once():
    holdings = Holdings()
    roll = Roll(holdings)
    answers = [asyncio.run(holdings.status_json(MONDAY, roll)) for _ in range(3)]
    assert roll.made == 1 and answers[0] == answers[1] == answers[2]
    assert kafka.loads(answers[0])["made"] == 1


def test_a_batch_applied_or_memory_dropped_or_a_new_day_makes_it_again():
    holdings = Holdings()
    roll = Roll(holdings)
    first = kafka.loads(asyncio.run(holdings.status_json(MONDAY, roll)))
    holdings.changed()  # a batch applied
    after_batch = kafka.loads(asyncio.run(holdings.status_json(MONDAY, roll)))
    holdings.forget()  # a rebalance
    after_forget = kafka.loads(asyncio.run(holdings.status_json(MONDAY, roll)))
    next_day = kafka.loads(asyncio.run(holdings.status_json(TUESDAY, roll)))
    assert [s["made"] for s in (first, after_batch, after_forget, next_day)] == [1, 2, 3, 4]
    assert after_batch["generation"] > first["generation"]


def test_a_batch_applied_while_the_status_is_made_is_not_hidden_by_it():
    holdings = Holdings()

    async def slow_roll() -> dict:
        seen = holdings.generation
        holdings.changed()  # a batch lands while this status is being made
        return {"generation": seen}

    asyncio.run(holdings.status_json(MONDAY, slow_roll))
    roll = Roll(holdings)
    assert kafka.loads(asyncio.run(holdings.status_json(MONDAY, roll)))["made"] == 1


def test_a_replica_holding_some_programmes_makes_it_per_request():
    holdings = Holdings(consumer=True, partition_count=lambda: 12)
    holdings.partitions = {0, 1, 2}
    roll = Roll(holdings)
    for _ in range(2):
        asyncio.run(holdings.status_json(MONDAY, roll))
    assert roll.made == 2


def test_with_a_refresher_the_status_is_made_after_each_batch_and_requests_only_read_it():
    holdings = Holdings()
    roll = Roll(holdings)

    async def never() -> dict:
        raise AssertionError("a request made the status")

    async def scenario() -> list[dict]:
        seen = []
        for _ in range(3):  # a batch applied, the refresher's turn, then requests
            holdings.changed()
            await holdings.refresh_status(lambda: MONDAY, roll, idle_s=0)
            seen += [kafka.loads(await holdings.status_json(MONDAY, never)) for _ in range(2)]
        return seen

    seen = asyncio.run(scenario())
    assert [s["made"] for s in seen] == [1, 1, 2, 2, 3, 3]
    assert [s["generation"] for s in seen[::2]] == sorted(set(s["generation"] for s in seen))


def test_a_request_between_a_batch_and_the_refresher_gets_the_last_status_made_and_the_refresher_catches_up():
    holdings = Holdings()
    roll = Roll(holdings)

    async def scenario() -> tuple[dict, dict, int]:
        await holdings.refresh_status(lambda: MONDAY, roll, idle_s=0)
        holdings.changed()
        between = kafka.loads(await holdings.status_json(MONDAY, roll))
        await holdings.refresh_status(lambda: MONDAY, roll, idle_s=0)
        return between, kafka.loads(await holdings.status_json(MONDAY, roll)), holdings.generation

    between, after, generation = asyncio.run(scenario())
    assert between["made"] == 1 and after == {"generation": generation, "made": 2}


def test_the_refresher_makes_nothing_while_nothing_changed_but_makes_it_for_a_new_day():
    holdings = Holdings()
    roll = Roll(holdings)
    days = iter([MONDAY, MONDAY, TUESDAY])

    async def scenario() -> bytes:
        for _ in range(3):
            await holdings.refresh_status(lambda: next(days), roll, idle_s=0)
        return await holdings.status_json(TUESDAY, roll)

    assert kafka.loads(asyncio.run(scenario()))["made"] == 2 and roll.made == 2


def test_a_replica_holding_some_programmes_is_not_served_what_a_refresher_made_before():
    holdings = Holdings(consumer=True, partition_count=lambda: 2)
    holdings.partitions = {0, 1}
    roll = Roll(holdings)

    async def scenario() -> None:
        await holdings.refresh_status(lambda: MONDAY, roll, idle_s=0)
        holdings.partitions = {0}  # one partition handed to another replica
        await holdings.status_json(MONDAY, roll)
        await holdings.refresh_status(lambda: MONDAY, roll, idle_s=0)  # makes nothing it would keep

    asyncio.run(scenario())
    assert roll.made == 2
