"""The history of a scenario against what must hold: every event that got a 202 (or was
acknowledged on `inbound.events`) decided once, the state and the counters as a plain
reference model computes them from the very records on `events.accepted`, and each
rejection told to its unit once, by identity.

lost    = accepted but never decided (or its decision, state or notice missing somewhere);
doubled = decided differently, applied twice, a counter off, a notice under two identities.
Redeliveries are counted from what can be observed: records a consumer received more
often than its topic holds them, and extra copies on `events.accepted` of events whose
sender retried after a failure it could not tell from a loss."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared import mongo
from tests.faults.harness import Deployment
from tests.faults.load import Load
from tests.programs_model import PROGRAMMES, Model

ENVELOPE = ("specversion", "id", "source", "type", "time", "datacontenttype", "data")
FINAL = ("applied", "rejected", "duplicate")
STATUSES = ("not_started", "in_progress", "completed", "blocked", "cancelled")


@dataclass
class Verdict:
    lost: list[str] = field(default_factory=list)
    doubled: list[str] = field(default_factory=list)
    redeliveries: dict[str, int] = field(default_factory=dict)
    facts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.lost and not self.doubled

    def summary(self, limit: int = 8) -> str:
        return (f"lost {len(self.lost)}: {self.lost[:limit]}; doubled {len(self.doubled)}: {self.doubled[:limit]}; "
                f"redeliveries {self.redeliveries}; {self.facts}")


# --- Kafka: whole topics, offsets, groups -------------------------------------------

async def _assigned(consumer: AIOKafkaConsumer, topics: list[str], timeout: float = 30) -> list[TopicPartition]:
    """The partitions of `topics`, once a group-less consumer subscribed to them has them all."""
    async with asyncio.timeout(timeout):
        while {tp.topic for tp in consumer.assignment()} != set(topics):
            await asyncio.sleep(0.05)
    return sorted(consumer.assignment())


async def read_all(bootstrap: str, topic: str, timeout: float = 60) -> dict[int, list]:
    """Every record of `topic` up to its end as of now, per partition in offset order."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                                auto_offset_reset="earliest", max_partition_fetch_bytes=2 * 1024 * 1024)
    await consumer.start()
    try:
        partitions = await _assigned(consumer, [topic])
        ends = await consumer.end_offsets(partitions)
        records: dict[int, list] = {tp.partition: [] for tp in partitions}
        async with asyncio.timeout(timeout):
            while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
                batch = await consumer.getmany(timeout_ms=300)
                for tp, part in batch.items():
                    records[tp.partition] += [r for r in part if r.offset < ends[tp]]
        return records
    finally:
        await consumer.stop()


class Offsets:
    """End offsets of topics and committed offsets of consumer groups, for lag and catch-up."""

    def __init__(self, bootstrap: str):
        self.bootstrap = bootstrap

    async def ends(self, topics: list[str]) -> dict[TopicPartition, int]:
        topics = sorted(set(topics))
        consumer = AIOKafkaConsumer(*topics, bootstrap_servers=self.bootstrap, group_id=None,
                                    request_timeout_ms=10_000)
        await consumer.start()
        try:
            return await consumer.end_offsets(await _assigned(consumer, topics))
        finally:
            await consumer.stop()

    async def committed(self, groups: list[str]) -> dict[tuple[str, TopicPartition], int]:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=10_000)
        await admin.start()
        try:
            out = {}
            for group in groups:
                for tp, meta in (await admin.list_consumer_group_offsets(group)).items():
                    out[(group, tp)] = meta.offset
            return out
        finally:
            await admin.close()

    async def lag(self, deployment: Deployment, ends: dict[TopicPartition, int]) -> dict[str, int]:
        """Per consumer group, the records of `ends` it has not committed yet (only those behind)."""
        committed = await self.committed([g for g, _ in deployment.groups()])
        lag: Counter = Counter()
        for group, topic in deployment.groups():
            for tp, end in ends.items():
                if tp.topic == topic:
                    lag[group] += max(0, end - max(committed.get((group, tp), 0), 0))
        return {g: n for g, n in lag.items() if n}


# --- the check -------------------------------------------------------------------------

async def reread(deployment: Deployment, services: list[str] | None = None) -> int:
    """Records the consumers (of `services`, default all) received beyond what their topics
    hold: read again after a crash, a failed write or a rebalance. Processes are scraped now
    (dead ones were when they died). A lower bound at any moment: a backlog not yet read hides
    re-reads until it is, and nothing is ever counted that was not received."""
    await deployment.scrape_all()
    sizes = await Offsets(deployment.kafka).ends([t for _, t in deployment.groups()])
    per_topic = Counter()
    for tp, end in sizes.items():
        per_topic[tp.topic] += end  # topics are never truncated here: end offset = records held
    return sum(max(0, int(received) - per_topic.get(topic, 0))
               for (service, topic), received in deployment.received().items()
               if services is None or service in services)


async def check(deployment: Deployment, load: Load) -> Verdict:
    verdict = Verdict()
    topics = deployment.topics
    accepted_records = await read_all(deployment.kafka, topics.accepted)
    model, copies = Model(), Counter()
    for partition in sorted(accepted_records):
        for record in accepted_records[partition]:
            try:
                raw = orjson.loads(record.value)
            except ValueError:
                continue  # poison on purpose: dead-lettered, checked by its scenario
            if not isinstance(raw, dict) or "nqtacceptid" not in raw or str(raw.get("type")).startswith("registry."):
                continue
            key = f"{raw['source']}:{raw['id']}"
            if key not in load.events:
                continue
            copies[key] += 1
            model.deliver({k: raw[k] for k in ENVELOPE if k in raw}, raw["nqtacceptid"])

    client = mongo.connect(deployment.mongo)
    try:
        programs = client[f"{deployment.prefix}_programs"]
        outcomes = {d["_id"]: d async for d in programs.outcomes.find({}, {"changes": 0})}
        tasks = {d["_id"]: d async for d in programs.tasks.find({})}
        held = {d["_id"] async for d in programs.held.find({}, {"_id": 1})}
        statuses = {d["_id"]: d async for d in client[f"{deployment.prefix}_ingest"].events.find({})}
    finally:
        await client.close()

    # Every acknowledged event reached Kafka and was decided, as the model decides it.
    for key in load.accepted:
        if key not in model.outcomes and key not in model.held:
            verdict.lost.append(f"{key}: acknowledged but not on events.accepted")
    for key, (outcome, code) in model.outcomes.items():
        mine = outcomes.get(key)
        if mine is None:
            verdict.lost.append(f"{key}: no outcome (model: {outcome})")
        elif (mine["outcome"], mine.get("code")) != (outcome, code):
            verdict.doubled.append(f"{key}: decided {mine['outcome']}/{mine.get('code')}, model {outcome}/{code}")
        status = statuses.get(key) or {}
        if status.get("status") != outcome:
            verdict.lost.append(f"{key}: ingest tells the publisher {status.get('status')!r}, not {outcome!r}")
        elif len(status.get("duplicate_accept_ids") or ()) != copies[key] - 1:
            # Not an event lost (its outcome is right): the count of its repeats in the
            # publisher's status view is off. Kept in the row's detail, not hidden.
            verdict.facts["ingest_duplicate_count_off"] = verdict.facts.get("ingest_duplicate_count_off", 0) + 1
    for key in model.held:
        if key not in held:
            verdict.lost.append(f"{key}: should wait for its plan, is not held")

    # The state, counters included, is the model's.
    expected, seqs = model.state(), model.seqs()
    for task_id, state in expected.items():
        mine = tasks.get(task_id)
        if mine is None:
            verdict.lost.append(f"task {task_id}: missing")
            continue
        got = {k: mine.get(k) for k in state}
        if got != state:
            verdict.doubled.append(f"task {task_id}: {got} != model {state}")
        if mine.get("seq") != seqs[task_id]:
            verdict.doubled.append(f"task {task_id}: seq {mine.get('seq')} != model {seqs[task_id]}")

    await _check_reports(deployment, load, model, verdict)
    await _check_notices(deployment, model, verdict)

    # Redeliveries: records read more often than their topic holds them; copies on
    # events.accepted beyond the 202s their sender got (a retry after a lost answer).
    verdict.redeliveries["reread"] = await reread(deployment)
    verdict.redeliveries["resent"] = sum(max(0, copies[k] - n) for k, n in load.accepted.items()
                                         if load.route.get(k) == "http")
    verdict.facts.update(generated=len(load.events), acknowledged=len(load.accepted), records=sum(copies.values()),
                         retries=load.retries, applied=sum(o == "applied" for o, _ in model.outcomes.values()),
                         rejected=sum(o == "rejected" for o, _ in model.outcomes.values()))
    return verdict


async def _delivery_record(deployment: Deployment, event_key: str) -> str:
    client = mongo.connect(deployment.mongo)
    try:
        mine = f"rejected|{event_key}|"
        docs = [d async for d in client[f"{deployment.prefix}_notify"].deliveries.find(
            {"kind": "rejected", "recipient": event_key.split(":", 1)[0]}, {"body": 0}) if d["_id"].startswith(mine)]
    finally:
        await client.close()
    if not docs:
        return "notify has no delivery for it"
    return "; ".join(f"{d['status']}, created {d.get('created_at')}, attempts {d.get('attempts')}, "
                     f"checked {datetime.now(timezone.utc).isoformat()}" for d in docs)


async def _check_reports(deployment: Deployment, load: Load, model: Model, verdict: Verdict) -> None:
    """The live status per programme: task counts, progress and plans as the model has them."""
    response = await deployment.http.get(f"{deployment.url('reports')}/v1/status", timeout=30)
    body = response.json()
    submitted, rejected = defaultdict(set), defaultdict(set)
    for key, (outcome, _) in model.outcomes.items():
        event = load.events.get(key)
        if event is None or event["type"] != "plan.submitted":
            continue
        plan_key = f"{event['source']}|{event['data']['plan_id']}"
        (submitted if outcome == "applied" else rejected)[event["data"]["programme"]].add(plan_key)
    for code in PROGRAMMES:
        mine = next(p for p in body["programmes"] if p["code"] == code)
        tasks = [t for t in model.state().values() if t["programme"] == code]
        counts = Counter(t["status"] for t in tasks)
        want = {"total": len(tasks), **{s: counts.get(s, 0) for s in STATUSES}}
        got = {k: mine["tasks"][k] for k in want}
        if got != want:
            verdict.doubled.append(f"reports programme {code} tasks {got} != model {want}")
        open_ = [100.0 if t["status"] == "completed" else t["progress"] for t in tasks if t["status"] != "cancelled"]
        if open_ and mine["progress_pct"] is not None and abs(mine["progress_pct"] - sum(open_) / len(open_)) > 0.051:
            verdict.doubled.append(f"reports programme {code} progress {mine['progress_pct']} != "
                                   f"model {sum(open_) / len(open_):.2f}")
        plans = len(submitted[code])
        if mine["plans"]["submitted"] != plans:
            verdict.doubled.append(f"reports programme {code} plans submitted {mine['plans']['submitted']} != {plans}")
        refused = len(rejected[code] - submitted[code])
        if mine["plans"]["rejected"] != refused:
            verdict.doubled.append(f"reports programme {code} plans rejected {mine['plans']['rejected']} != {refused}")


async def _check_notices(deployment: Deployment, model: Model, verdict: Verdict) -> None:
    """Each rejection is told to its unit under one identity; repeats of that identity are
    redeliveries (the receiver drops them by Message-ID), a second identity is a doubling.
    A notice never told says what notify's own record of its delivery holds."""
    identities: dict[str, Counter] = defaultdict(Counter)
    for mail in deployment.mailbox.snapshot():
        ident = mail["X-NQT-Notification"] or ""
        kind, _, rest = ident.partition("|")
        if kind == "rejected":
            identities[rest.rsplit("|", 2)[0]][ident] += 1
    rejected = {k for k, (o, _) in model.outcomes.items() if o == "rejected"}
    for key in sorted(rejected):
        seen = identities.get(key, Counter())
        if not seen:
            verdict.lost.append(f"{key}: rejected, never told to its unit ({await _delivery_record(deployment, key)})")
        elif len(seen) > 1:
            verdict.doubled.append(f"{key}: told under {len(seen)} identities {sorted(seen)}")
    unexpected = [a for a in identities if a not in rejected]
    verdict.doubled += [f"{a}: told it was rejected, but it was not" for a in unexpected]
    verdict.redeliveries["notices"] = sum(n - 1 for seen in identities.values() for n in seen.values() if n > 1)
    verdict.facts["notices"] = sum(len(seen) for seen in identities.values())
