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
