"""Property: whatever the stream (invalid, duplicated, reordered, revised, updates
before plans), the programs service ends in the reference model's state."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings

from shared.events import parse_event
from tests.fakes import FakeProgramsStore
from tests.programs_model import REGISTRY, Model, service_state, streams

from services.programs.service import ProgramsService


async def run(store, deliveries) -> None:
    service = ProgramsService(store)
    for i, raw in enumerate(REGISTRY):
        await service.process(event=parse_event(raw), accepted_at="2021-01-01T00:00:00.000000Z", accept_id=f"r{i}")
    for raw, accept_id in deliveries:
        outcomes = await service.process(event=parse_event(raw), accepted_at="2021-03-01T00:00:00.000000Z",
                                         accept_id=accept_id)
        await service.forget_held(outcomes)


def expected(deliveries) -> Model:
    model = Model()
    for raw, accept_id in deliveries:
        model.deliver(raw, accept_id)
    return model


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_the_service_ends_where_the_model_does(deliveries):
    store = FakeProgramsStore()
    asyncio.run(run(store, deliveries))
    model = expected(deliveries)
    assert service_state(store.c.get("tasks", {}).values()) == model.state()
    outcomes = {k: (o["outcome"], o.get("code")) for k, o in store.c["outcomes"].items() if not k.startswith("VPTU:reg-")}
    assert outcomes == model.outcomes
    assert set(store.c.get("held", {})) == set(model.held)
