"""The reference-model property against the real FerretDB, and through the real Kafka."""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter

from hypothesis import HealthCheck, given, settings

from shared import accepted, mongo
from shared.events import parse_event
from tests import kafkatools
from tests.integration.conftest import running
from tests.programs_model import REGISTRY, service_state, streams
from tests.unit.test_programs_property import DROPPED_THEN_UPDATED, UPDATE_BEFORE_PLAN_AND_OLDER_LATE, expected, run

from services.programs.app import build
from services.programs.settings import ProgramsSettings
from services.programs.store import INDEXES, ProgramsStore

SLOW = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


async def stored_state(db) -> tuple[dict, dict, set]:
    tasks = service_state(await ProgramsStore(db).current_tasks())
    outcomes = {k: (o["outcome"], o.get("code")) for k, o in (await ProgramsStore(db).all_outcomes()).items()
                if not k.startswith("VPTU:reg-")}
    held = {h["_id"] async for h in db.held.find({})}
    return tasks, outcomes, held


@settings(max_examples=25, **SLOW)
@given(deliveries=streams())
def test_on_ferretdb_the_service_ends_where_the_model_does(infra_stack, deliveries):
    async def check():
        client = mongo.connect(infra_stack.mongo)
        db = client[f"{infra_stack.prefix}_prop_{secrets.token_hex(4)}"]
        try:
            await mongo.ensure_indexes(db, INDEXES)
            published = await run(ProgramsStore(db), deliveries)
            state = await stored_state(db)
        finally:
            await client.drop_database(db.name)
            await client.close()
        model = expected(deliveries)
        assert state == (model.state(), model.outcomes, set(model.held))
        assert Counter(published) == Counter(model.published)

    asyncio.run(check())


async def through_kafka(isolated, deliveries) -> tuple[tuple, list]:
    # One partition: Kafka keeps order per programme only, and the generated streams share task
    # ids across programmes (a plan in 01 and one in 02 racing for the same task id), whose
    # outcome rightly depends on which is read first. The model reads in production order.
    settings = isolated.settings(ProgramsSettings, topic_partitions=1)
    topics = settings.topics
    model = expected(deliveries)
    async with running(build(settings)):
        await isolated.load_registry(topics, REGISTRY)
        stamps: dict[str, bytes] = {}
        records = []
        for raw, accept_id in deliveries:  # the same acceptance id = the same record delivered twice
            if accept_id not in stamps:
                stamps[accept_id] = accepted.stamp(parse_event(raw))[1]
            records.append((raw["data"].get("programme", "").encode(), stamps[accept_id]))
        for key, value in records:
            await kafkatools.produce(settings.kafka_bootstrap, topics.accepted, [value], key=key)
        wanted = len(REGISTRY) + len(model.published)
        outcomes = await kafkatools.read_topic(settings.kafka_bootstrap, topics.outcomes,
                                               until=lambda rs: len(rs) >= wanted, timeout=60)
        client = mongo.connect(settings.mongo_url)
        try:  # updates that are held announce nothing: wait for the state itself to settle
            expected_state = (model.state(), model.outcomes, set(model.held))
            state = await kafkatools.eventually(lambda: stored_state(client[settings.database("programs")]),
                                                lambda s: s == expected_state, timeout=10)
        except AssertionError:
            state = await stored_state(client[settings.database("programs")])
        finally:
            await client.close()
    announced = [(o["event_key"], o["outcome"]) for o in outcomes if not o["event_key"].startswith("VPTU:reg-")]
    return state, announced


async def test_through_kafka_known_subtle_streams_end_where_the_model_does(isolated):
    for deliveries in (DROPPED_THEN_UPDATED, UPDATE_BEFORE_PLAN_AND_OLDER_LATE):
        isolated.prefix += "x"
        model = expected(deliveries)
        state, announced = await through_kafka(isolated, deliveries)
        assert state == (model.state(), model.outcomes, set(model.held))
        assert Counter(announced) == Counter(model.published)


@settings(max_examples=3, **SLOW)
@given(deliveries=streams(max_events=8))
def test_through_kafka_random_streams_end_where_the_model_does(infra_stack, deliveries):
    from tests.integration.conftest import Isolated

    model = expected(deliveries)
    state, announced = asyncio.run(through_kafka(Isolated(infra_stack), deliveries))
    assert state == (model.state(), model.outcomes, set(model.held))
    assert Counter(announced) == Counter(model.published)
