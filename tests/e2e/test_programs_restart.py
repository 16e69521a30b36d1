"""Stopping the programs process while it applies a stream, and starting it again, ends
in the same state as an uninterrupted run: the reference model's. SIGKILL may make it
read records again (their writes are idempotent); SIGTERM finishes the record in hand,
commits and closes, so at most that record is read again (seen only under heavy load)."""

from __future__ import annotations

import random
import signal
from collections import Counter

import pytest

from shared import accepted, mongo
from shared.events import parse_event
from tests import kafkatools, samples
from tests.e2e.conftest import starter
from tests.programs_model import REGISTRY, Model, service_state

from deploy.local import infra, stack
from services.programs.store import ProgramsStore

PLANS, UPDATES = 40, 600


def stream(seed: int = 7) -> list[dict]:
    """Plans with revisions, updates in mixed time order (some before their plan), re-sends."""
    rng = random.Random(seed)
    plans = []
    for n in range(PLANS):
        source = rng.choice(("SO-KHDT", "SO-TC"))
        tasks = [samples.task(f"P{n}-T{k}", lead_unit=source) for k in range(rng.randint(2, 6))]
        plans.append(samples.plan(source, f"{source}-P{n}", f"KH-{n}", rng.choice(("01", "02")), tasks,
                                  time=f"2021-02-{1 + n % 28:02d}T09:00:00+07:00"))
    revisions = [samples.plan(p["source"], p["id"] + "-R", p["data"]["plan_id"], p["data"]["programme"],
                              p["data"]["tasks"][:-1], time="2021-03-01T09:00:00+07:00")
                 for p in rng.sample(plans, 10)]
    updates = []
    for n in range(UPDATES):
        plan = rng.choice(plans)
        task = rng.choice(plan["data"]["tasks"])
        updates.append(samples.task_update(
            plan["source"], f"{plan['source']}-U{n}", task["task_id"], plan["data"]["programme"],
            rng.choice(("in_progress", "completed", "blocked")), rng.randint(0, 100),
            time=f"2021-03-{rng.randint(2, 28):02d}T{rng.randint(8, 17):02d}:{rng.randint(0, 59):02d}:00+07:00"))
    events = plans + revisions + updates
    rng.shuffle(events)  # updates before plans, revisions before originals: all must come right
    return events + rng.sample(events, 50)  # re-sent duplicates


BATCH = 20


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
async def test_stopped_and_restarted_programs_ends_in_the_models_state(infra_stack, tmp_path, stop):
    events = stream()
    model = Model()
    for i, event in enumerate(events):
        model.deliver(event, f"a{i}")
    prefix = f"{infra_stack.prefix}stop{stop.value}"
    ports = {name: infra.free_port() for name in stack.SERVICES}
    env = stack.service_env(kafka=infra_stack.kafka, mongo=infra_stack.mongo, smtp_port=infra.free_port(),
                            ports=ports, dev_keys={}, extra={"NQT_TOPIC_PREFIX": f"{prefix}.",
                                                             "NQT_DB_PREFIX": prefix, "NQT_TOPIC_PARTITIONS": "4",
                                                             "NQT_ENV": "test",
                                                             # the held-update sweep may announce an outcome the
                                                             # plan's handler also announced: keep it out of the way
                                                             "NQT_PROGRAMS_SWEEP_SECONDS": "3600",
                                                             # small batches, so the stops fall mid-stream
                                                             "NQT_PROGRAMS_BATCH": str(BATCH)})
    topic = f"{prefix}.events.accepted"
    outcomes_topic = f"{prefix}.programs.outcomes"
    log = tmp_path / "programs.log"

    start = starter("programs", env, ports["programs"], log)

    proc = start()
    try:
        for i, raw in enumerate(REGISTRY):
            key, value = accepted.stamp(parse_event(raw))
            await kafkatools.produce(infra_stack.kafka, topic, [value], key=key.encode())
        await kafkatools.read_topic(infra_stack.kafka, outcomes_topic, until=lambda rs: len(rs) >= len(REGISTRY))
        records = [accepted.stamp(parse_event(raw)) for raw in events]
        await kafkatools.produce_many(infra_stack.kafka, topic, [(k.encode(), v) for k, v in records])

        kills = []
        for fraction in (0.25, 0.6):
            seen = await kafkatools.read_topic(
                infra_stack.kafka, outcomes_topic, timeout=120,
                until=lambda rs, f=fraction: len(rs) >= len(REGISTRY) + f * len(model.published))
            proc.send_signal(stop)
            proc.wait(timeout=60)
            kills.append(len(seen) - len(REGISTRY))
            proc = start()
        expected = model.state()

        async def state():
            client = mongo.connect(infra_stack.mongo)
            try:
                return service_state(await ProgramsStore(client[f"{prefix}_programs"]).current_tasks())
            finally:
                await client.close()

        final = await kafkatools.eventually(state, lambda s: s == expected, timeout=180, interval=1.0)
        announced = await kafkatools.read_topic(
            infra_stack.kafka, outcomes_topic, timeout=60,
            until=lambda rs: len({(o["event_key"], o["accept_id"]) for o in rs}) >= len(REGISTRY) + len(model.published))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert all(0 < k < len(model.published) for k in kills), f"the stops came before the end: {kills}"
    assert final == expected
    per_record = Counter((o["event_key"], o["accept_id"]) for o in announced)
    if stop == signal.SIGTERM:  # a graceful stop commits what it did: at most the batch in hand is read again
        again = [k for k, n in per_record.items() if n > 1]
        assert len(again) <= len(kills) * BATCH, again
    assert len(per_record) == len(REGISTRY) + len(model.published)  # an outcome for every record: none lost
    client = mongo.connect(infra_stack.mongo)
    try:
        db = client[f"{prefix}_programs"]
        outcomes = {k: (o["outcome"], o.get("code")) for k, o in (await ProgramsStore(db).all_outcomes()).items()
                    if not k.startswith("VPTU:reg-")}
        assert outcomes == model.outcomes
        assert await db.held.count_documents({}) == len(model.held)
    finally:
        await client.close()
