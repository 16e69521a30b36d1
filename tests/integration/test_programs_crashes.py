"""The crash property of tests/unit/test_programs_crashes.py against the real FerretDB."""

from __future__ import annotations

import asyncio
import secrets

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared import mongo
from tests.programs_model import streams
from tests.unit.test_programs_crashes import CRASHES, Ticks, check, crashing

from services.programs.store import INDEXES, ProgramsStore


async def stored_state(store) -> tuple[list[dict], dict, set]:
    outcomes = {k: (o["outcome"], o.get("code")) for k, o in (await store.all_outcomes()).items()
                if not k.startswith("VPTU:reg-")}
    return await store.current_tasks(), outcomes, {h["_id"] async for h in store.db.held.find({})}


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(deliveries=streams(), batch=st.integers(1, 6), crashes=CRASHES)
def test_on_ferretdb_a_batch_crashed_anywhere_ends_where_the_model_does(infra_stack, deliveries, batch, crashes):
    async def crashed():
        client = mongo.connect(infra_stack.mongo)
        db = client[f"{infra_stack.prefix}_crash_{secrets.token_hex(4)}"]
        try:
            await mongo.ensure_indexes(db, INDEXES)
            store = crashing(ProgramsStore)(db)
            store.tick = Ticks(crashes)
            await check(store, deliveries, batch, stored=stored_state)
        finally:
            await client.drop_database(db.name)
            await client.close()

    asyncio.run(crashed())
