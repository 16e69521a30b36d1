"""Benchmark: pipeline throughput, a Hanoi-sized term's `task.updated` events consumed by the
programs and reports services from a cold start until `GET /v1/status` reflects the last one.

    .venv/bin/python bench/pipeline.py                                   # --scale 0.01: 10,000 events
    .venv/bin/python bench/pipeline.py --scale 0.0003 --repeat 1         # a few hundred events (quick)
    .venv/bin/python bench/pipeline.py --scale 1 --timeout 86400         # the whole term (hours today)
    .venv/bin/python bench/pipeline.py --profile                         # + py-spy of programs and reports

The term comes from bench/reports.py's generator (`Term`): the Hanoi registry plus generated
sub-units (about 120 units), the 10 programmes issued, about 1,000 plans with 20,000 tasks and
1,000,000 status reports over 2021-2025 at full size; --scale shrinks plans, tasks and reports
together. Every event is published onto this run's `events.accepted` exactly as ingest publishes
it (`shared.accepted.publish`: validated envelope, stamped with acceptance time and id, keyed by
`partition_key`, acks=all).

Each run (fresh topics and databases under a prefix of its own):

1. Setup, untimed (printed): the registry events are published and applied by programs (as an
   operator's `nqt registry load` waits for them: registry entries and the events that need them
   travel on different partitions), then the programme issuances and the plans, until
   `/v1/status` counts every task. The services are then stopped.
2. With the services down, every task update is published in event-time order, then one
   sentinel per programme: a last update (latest event time of the term) of one of its overdue
   tasks, with a progress value no generated report has (they are whole numbers).
3. The raw baseline, on the same topic and FerretDB, one after the other (not concurrently):
   a fresh consumer group reads the topic from the beginning with aiokafka `getmany` (timed from
   the consumer's start, its group join included and printed apart), then the N
   task documents are written to a scratch database with `insert_many` (batches of --batch).
   Baseline events/s = N / (consume time + write time).
4. Timed: programs and reports are started as processes (cold: new processes, the consumer
   groups resume after the setup records) and the clock runs from spawning them until the status
   shows every sentinel. A sentinel is the last record of its programme's partition, and programs
   publishes a programme's changes in order to one partition of `programs.changes` that reports
   applies in order, so every sentinel visible means every update before it was applied. The
   status is checked for the sentinels once both consumer groups have no lag (committed offsets,
   polled every 0.5 s; that is also the progress line). Meanwhile, as a dashboard would, a probe
   (a client process of its own, `bench/statusprobe.py`) asks for `/v1/status` every 0.2 s and
   times each answer: the status under load (p50, p99); in the same rounds it asks the same of
   the floor, a bare responder answering the status's bytes in a process of its own.
   Figure = N / seconds. After --timeout the run stops and reports the rate applied so far
   (reports' committed changes / elapsed) as censored, a lower bound of nothing: the figure then
   says how fast the pipeline went until it was cut off.

Afterwards the outcomes programs published for the run's updates are counted (applied,
rejected, duplicate), so a fast figure cannot hide rejected events. Reports runs with its clock
pinned to the term's replay date (2025-05-01) and its scheduler off. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import sys
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

import logging
import os

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import harness, profiles, statusprobe  # noqa: E402
from bench.reports import NOW, NOW_DAY, NOW_TS, OFFICE, Term, at, day_iso, day_of, hanoi_day, iso  # noqa: E402
from shared import accepted  # noqa: E402
from shared.events import parse_event  # noqa: E402
from shared.settings import CommonSettings  # noqa: E402

TARGET_EVENTS_PER_S = 5_000.0
TARGET_RATIO = 0.25
TARGET_STATUS_P99_MS = 10.0
STATUS_PROBE_S = 0.2  # one GET /v1/status every this many seconds while the pipeline runs
CLOCK = NOW.isoformat()  # the reports clock: the term's replay date
PUBLISH_CHUNK = 5_000


# --- the events ----------------------------------------------------------------------------------

def raw_event(source: str, event_id: str, kind: str, data: dict, ts: int) -> dict:
    return {"specversion": "1.0", "id": event_id, "source": source, "type": kind, "time": iso(ts),
            "datacontenttype": "application/json", "data": data}


def registry_events(term: Term) -> list:
    """The registry file's events (as `nqt registry load` makes them) and the generated sub-units."""
    base = at(day_of(NOW.date()) - 1600, term.rng)
    generated = [parse_event(raw_event(OFFICE, f"registry-unit-{code}-bench", "registry.unit", state, base + i))
                 for i, (code, state) in enumerate(term.generated_units.items())]
    return [*term.registry_events, *generated]


def plan_events(term: Term) -> list:
    """The 10 programmes issued, then every plan as submitted (in event-time order)."""
    out = []
    for i, code in enumerate(term.programmes):
        day = day_of(date(2021, 4, 12)) if code == "10" else day_of(date(2021, 2, 20)) + 3 * i
        out.append(raw_event(OFFICE, f"{OFFICE}-2021-CTR-{code}", "programme.issued", {
            "programme": code, "document_no": f"{code}-CTr/TU", "issued_on": day_iso(day),
            "steering_committee": {"decision_no": f"{100 + i}-QĐ/TU", "established_on": day_iso(day + 5),
                                   "head": {"name": "Thường trực Thành ủy (mẫu)", "position": "Trưởng Ban Chỉ đạo"}}},
            at(day, term.rng)))
    for plan in sorted(term.plans, key=lambda p: p.ts):
        out.append(raw_event(plan.source, plan.event_id(), "plan.submitted", {
            "plan_id": plan.plan_id, "programme": plan.programme,
            "title": f"Kế hoạch thực hiện Chương trình {plan.programme}-CTr/TU của {term.units[plan.source]['name']}",
            "document_no": f"{plan.n}/KH-{plan.source}", "issued_on": day_iso(plan.day - 2),
            "tasks": [t.static() for t in plan.tasks]}, plan.ts))
    return [parse_event(e) for e in out]


def update_data(task, k: int) -> dict:
    fields = {key: value for key, value in task.fields(k).items() if value is not None}
    return {"task_id": task.task_id, "programme": task.plan.programme, **fields}


def updates(term: Term):
    """Every status report of the term as a raw task.updated event, in event-time order."""
    def stream(task):
        return ((ts, task.idx, k) for k, ts in enumerate(task.times))
    for ts, idx, k in heapq.merge(*(stream(task) for task in term.tasks if task.times)):
        task = term.tasks[idx]
        yield raw_event(task.lead_unit, f"{task.lead_unit}-TD-{idx:05d}-{k:03d}", "task.updated",
                        update_data(task, k), ts)


@dataclass
class Sentinel:
    programme: str
    task_id: str
    progress: float
    event: dict


def sentinels(term: Term) -> list[Sentinel]:
    """One per programme with updates: a last update of one of its tasks due before the reports
    clock's today (so the status lists it among the overdue tasks with its progress), later in event
    time than any other event and with a progress no generated report has (those are whole numbers)."""
    out = []
    for i, code in enumerate(sorted({t.plan.programme for t in term.tasks if t.times})):
        due = [t for t in term.tasks if t.plan.programme == code and t.due_day < NOW_DAY]
        if not due:
            continue  # its partition is then covered by the consumer groups' lag only
        task = max(due, key=lambda t: (len(t.times), t.idx))
        progress = round(40.0 + (i + 1) * 0.111, 3)
        ts = NOW_TS - 600 + i
        data = {"task_id": task.task_id, "programme": code, "status": "in_progress", "progress": progress,
                "as_of": hanoi_day(ts), "note": "Cập nhật cuối (sentinel của phép đo)", "reported_by": task.reporter}
        out.append(Sentinel(code, task.task_id, progress,
                            raw_event(task.lead_unit, f"{task.lead_unit}-TD-{task.idx:05d}-last", "task.updated",
                                      data, ts)))
    return out


# --- Kafka: publishing, offsets ------------------------------------------------------------------

def settings_for(run: harness.Infra) -> CommonSettings:
    return CommonSettings(kafka_bootstrap=run.kafka, mongo_url=run.mongo, topic_prefix=f"{run.prefix}.",
                          db_prefix=run.prefix)


async def create_topics(run: harness.Infra) -> None:
    from shared import kafka
    await kafka.ensure_topics(settings_for(run))


async def publish(run: harness.Infra, events, *, total: int | None = None, what: str = "events") -> int:
    """Publish envelopes (or raw events, validated here as ingest does) exactly as ingest does:
    `accepted.publish` on an idempotent acks=all FastStream broker, in chunks."""
    from faststream.kafka import KafkaBroker

    topic = settings_for(run).topics.accepted
    broker = KafkaBroker(run.kafka, enable_idempotence=True, acks="all", client_id="nqt-bench-pipeline")
    await broker.connect()
    sent, started, shown = 0, time.perf_counter(), 0.0
    try:
        chunk = []
        for event in events:
            chunk.append(event if not isinstance(event, dict) else parse_event(event))
            if len(chunk) >= PUBLISH_CHUNK:
                await accepted.publish(broker, topic, chunk)
                sent += len(chunk)
                chunk = []
                if total and time.perf_counter() - shown > 10:
                    shown = time.perf_counter()
                    print(f"  published {sent:,}/{total:,} {what} ({sent / (shown - started):,.0f}/s)", flush=True)
        if chunk:
            await accepted.publish(broker, topic, chunk)
            sent += len(chunk)
    finally:
        await broker.stop()
    return sent


class Offsets:
    """End offsets of a topic and a consumer group's committed offsets on it."""

    def __init__(self, kafka: str):
        self.kafka = kafka

    async def __aenter__(self) -> "Offsets":
        from aiokafka import AIOKafkaConsumer
        from aiokafka.admin import AIOKafkaAdminClient
        self.admin = AIOKafkaAdminClient(bootstrap_servers=self.kafka, client_id="nqt-bench-offsets")
        self.consumer = AIOKafkaConsumer(bootstrap_servers=self.kafka, group_id=None, enable_auto_commit=False)
        await self.admin.start()
        await self.consumer.start()
        self.partitions: dict[str, list] = {}
        return self

    async def __aexit__(self, *exc) -> None:
        await self.consumer.stop()
        await self.admin.close()

    async def _parts(self, topic: str) -> list:
        from aiokafka import TopicPartition
        if topic not in self.partitions:
            await self.consumer._client.force_metadata_update()  # noqa: SLF001 (topics created after start)
            found = self.consumer.partitions_for_topic(topic) or set()
            if not found:
                return []
            self.partitions[topic] = [TopicPartition(topic, p) for p in sorted(found)]
        return self.partitions[topic]

    async def end(self, topic: str) -> int:
        parts = await self._parts(topic)
        return sum((await self.consumer.end_offsets(parts)).values()) if parts else 0

    async def committed(self, group: str, topic: str) -> int:
        offsets = await self.admin.list_consumer_group_offsets(group)
        return sum(max(meta.offset, 0) for tp, meta in offsets.items() if tp.topic == topic)


async def wait_drained(run: harness.Infra, groups: dict[str, str], timeout: float, what: str) -> None:
    """Until each group (-> its topic) has committed the topic's end offset."""
    deadline = time.monotonic() + timeout
    async with Offsets(run.kafka) as offsets:
        while True:
            behind = {g: await offsets.end(t) - await offsets.committed(g, t) for g, t in groups.items()}
            if all(v <= 0 for v in behind.values()):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: still behind after {timeout:.0f} s: {behind}")
            await asyncio.sleep(0.5)


async def count_outcomes(run: harness.Infra, start: int) -> Counter:
    """Outcomes of task.updated events published by programs past offset-sum `start` (this phase)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    topic = settings_for(run).topics.outcomes
    consumer = AIOKafkaConsumer(bootstrap_servers=run.kafka, group_id=None, enable_auto_commit=False)
    await consumer.start()
    counts: Counter = Counter()
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        if not parts:
            await consumer._client.force_metadata_update()  # noqa: SLF001
            parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        while any([await consumer.position(tp) < ends[tp] for tp in parts]):
            for records in (await consumer.getmany(timeout_ms=1000, max_records=10_000)).values():
                for record in records:
                    body = orjson.loads(record.value)
                    if body.get("type") == "task.updated":
                        counts[body["outcome"] + (f" ({body['code']})" if body.get("code") else "")] += 1
    finally:
        await consumer.stop()
    return counts


# --- the raw baseline -------------------------------------------------------------------------------

async def baseline(run: harness.Infra, n_events: int, batch: int) -> dict:
    """aiokafka getmany of the whole topic (a fresh group, from the beginning), then insert_many of
    the N task documents into a scratch database on the same FerretDB; one after the other."""
    from aiokafka import AIOKafkaConsumer

    from shared import mongo as mongo_helpers

    topic = settings_for(run).topics.accepted
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=run.kafka, group_id=f"{run.prefix}-baseline",
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                max_partition_fetch_bytes=4 * 1024 * 1024)
    started = time.perf_counter()
    await consumer.start()
    # by partition and offset: on a loaded machine the group's session can expire, and the
    # rejoined consumer reads from the start again (nothing is committed)
    records: dict[tuple[int, int], object] = {}
    try:
        while not consumer.assignment():
            await asyncio.sleep(0.01)
        parts = sorted(consumer.assignment())
        ends = await consumer.end_offsets(parts)
        first = None
        while True:
            got = await consumer.getmany(timeout_ms=500, max_records=10_000)
            for batch_records in got.values():
                if first is None and batch_records:
                    first = time.perf_counter()
                records.update(((r.partition, r.offset), r) for r in batch_records)
            if all([await consumer.position(tp) >= ends[tp] for tp in parts]):
                break
        consumed = time.perf_counter()
    finally:
        await consumer.stop()
    client = mongo_helpers.connect(run.mongo)
    collection = client[f"{run.prefix}_baseline"].tasks
    try:
        write_start = time.perf_counter()
        docs, written = [], 0
        for record in records.values():
            body = orjson.loads(record.value)
            if body["type"] != "task.updated":
                continue
            data = body["data"]
            docs.append({"_id": f"{body['source']}:{body['id']}", "task_id": data["task_id"],
                         "programme": data["programme"], "status": data["status"], "progress": data["progress"],
                         "as_of": data["as_of"], "event_time": body["time"],
                         "accepted_at": body[accepted.ACCEPTED_TIME]})
            if len(docs) >= batch:
                await collection.insert_many(docs, ordered=False)
                written, docs = written + len(docs), []
        if docs:
            await collection.insert_many(docs, ordered=False)
            written += len(docs)
        write_s = time.perf_counter() - write_start
    finally:
        await client.drop_database(f"{run.prefix}_baseline")
        await client.close()
    consume_s = consumed - started  # from start(): bootstrap, group join (printed apart) and fetching
    return {"records": len(records), "written": written, "join_s": (first or consumed) - started,
            "consume_s": consume_s, "write_s": write_s,
            "events_per_s": n_events / (consume_s + write_s) if consume_s + write_s > 0 else float("nan")}


# --- one run ----------------------------------------------------------------------------------------

@dataclass
class Result:
    events: int
    seconds: float
    applied: int               # updates visible (reports' changes) when the run ended
    censored: bool
    start_s: float             # spawning the services -> both ready
    setup_s: float
    base: dict
    outcomes: Counter
    rss: dict[str, float] = field(default_factory=dict)
    status_s: list[float] = field(default_factory=list)  # GET /v1/status latencies while under load
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds per process, services ready -> visible
    floor_s: list[float] = field(default_factory=list)   # the same client's, from a bare responder beside it

    @property
    def rate(self) -> float:
        return (self.events if not self.censored else self.applied) / self.seconds


def service_extra(run: harness.Infra) -> dict[str, str]:
    return {"NQT_CLOCK_FIXED": CLOCK, "NQT_REPORTS_SCHEDULER": "false",
            "NQT_PROGRAMS_GROUP": f"{run.prefix}-programs", "NQT_REPORTS_GROUP": f"{run.prefix}-reports"}


def groups(run: harness.Infra) -> dict[str, str]:
    topics = settings_for(run).topics
    return {f"{run.prefix}-programs": topics.accepted, f"{run.prefix}-reports": topics.changes}


def status(url: str) -> dict:
    return httpx.get(f"{url}/v1/status", timeout=600).json()


def setup(run: harness.Infra, term: Term, logs: Path) -> tuple[float, bytes]:
    """Registry, then issuances and plans, applied by programs and visible in reports; then stop.
    (seconds, the status's JSON at the end: what the floor's responder answers)."""
    started = time.monotonic()
    asyncio.run(create_topics(run))
    registry = registry_events(term)
    asyncio.run(publish(run, registry))
    with harness.services(run, ["programs", "reports"], extra=service_extra(run), logs=logs) as running:
        asyncio.run(wait_drained(run, groups(run), 600, "the registry"))
        plans = plan_events(term)
        asyncio.run(publish(run, plans))

        def all_tasks():
            got = status(running.url("reports"))
            return sum(p["tasks"]["total"] for p in got["programmes"]) >= len(term.tasks)
        asyncio.run(wait_drained(run, groups(run), 24 * 3600, "the plans"))
        harness.wait_until(all_tasks, 600, 1.0, f"{len(term.tasks)} tasks in /v1/status")
        body = httpx.get(f"{running.url('reports')}/v1/status", timeout=600).content
    took = time.monotonic() - started
    print(f"  setup: {len(registry)} registry events, {len(plans):,} issuances and plans with {len(term.tasks):,} "
          f"tasks applied and visible in {took:.0f} s; services stopped", flush=True)
    return took, body


async def watch(run: harness.Infra, url: str, n: int, sents: list[Sentinel], start: float, timeout: float,
                ends_before: dict[str, int]) -> tuple[float, int, bool]:
    """Poll offsets (progress) and, once nothing is left to consume, the status for the sentinels.
    (seconds from `start`, updates applied by reports, censored)."""
    wanted = {s.task_id: s.progress for s in sents}
    (pg, pt), (rg, rt) = groups(run).items()
    shown, applied = 0.0, 0
    async with Offsets(run.kafka) as offsets, httpx.AsyncClient(base_url=url, timeout=600) as client:
        while True:
            now = time.perf_counter()
            elapsed = now - start
            programs = await offsets.committed(pg, pt) - ends_before["accepted"]
            reports = await offsets.committed(rg, rt) - ends_before["changes"]
            applied = max(0, min(programs, reports))
            if now - shown >= 5:
                shown = now
                print(f"  {elapsed:6.0f} s: programs {max(programs, 0):,}/{n:,}, reports {max(reports, 0):,} "
                      f"changes applied: {applied / max(elapsed, 1e-9):,.1f} events/s", flush=True)
            drained = programs >= n and reports >= await offsets.end(rt) - ends_before["changes"]
            if drained:
                seen = await overdue_progress(client)
                if seen is not None and all(seen.get(task) == progress for task, progress in wanted.items()):
                    return time.perf_counter() - start, n, False
            if elapsed > timeout:
                return elapsed, applied, True
            await asyncio.sleep(0.5)


async def overdue_progress(client: httpx.AsyncClient) -> dict[str, float] | None:
    """Every overdue task's progress, paged through `GET /v1/status/tasks` (the status lists the
    first few); None if an answer was not 200."""
    seen: dict[str, float] = {}
    while True:
        response = await client.get("/v1/status/tasks", params={"list": "overdue", "offset": len(seen), "limit": 1000})
        if response.status_code != 200:
            return None
        page = orjson.loads(response.content)
        seen |= {t["task_id"]: t["progress"] for t in page["tasks"]}
        if not page["tasks"] or len(seen) >= page["total"]:
            return seen


def one_run(infra: harness.Infra, n_run: int, term: Term, args, logs: Path) -> Result:
    run = replace(infra, prefix=f"{infra.prefix}r{n_run}")
    setup_s, status_body = setup(run, term, logs)
    topics = settings_for(run).topics
    sents = sentinels(term)
    n_updates = sum(len(t.times) for t in term.tasks)
    n = n_updates + len(sents)

    async def ends() -> dict[str, int]:
        async with Offsets(run.kafka) as offsets:
            return {"accepted": await offsets.end(topics.accepted), "changes": await offsets.end(topics.changes),
                    "outcomes": await offsets.end(topics.outcomes)}
    before = asyncio.run(ends())
    started = time.perf_counter()
    sent = asyncio.run(publish(run, updates(term), total=n_updates, what="task updates"))
    sent += asyncio.run(publish(run, [s.event for s in sents]))
    print(f"  published {sent:,} task.updated events ({len(sents)} of them sentinels) in "
          f"{time.perf_counter() - started:.0f} s", flush=True)
    base = asyncio.run(baseline(run, n, args.batch))
    print(f"  baseline: consumed {base['records']:,} records in {base['consume_s']:.2f} s (group join "
          f"{base['join_s']:.2f} s apart), wrote {base['written']:,} task documents in {base['write_s']:.2f} s: "
          f"{base['events_per_s']:,.0f} events/s", flush=True)
    with ExitStack() as stack:
        floor = stack.enter_context(statusprobe.floor(status_body, infra.workdir))
        start = time.perf_counter()
        running = stack.enter_context(harness.services(run, ["programs", "reports"], extra=service_extra(run),
                                                       logs=logs))
        start_s = time.perf_counter() - start
        rss = stack.enter_context(harness.RssSampler({**running.pids(), **infra.pids()}))
        if args.profile and n_run == 1:
            duration = max(5, min(args.profile_duration, args.timeout))
            for name in ("programs", "reports"):
                # No dot in the name: recording() puts its suffixes (.folded, .txt) in place of the last one.
                stem = harness.PROFILES / f"pipeline-{name}-scale{args.scale:g}".replace(".", "p")
                stack.enter_context(profiles.recording(running.procs[name].pid, stem, duration=duration))
            print(f"  recording py-spy profiles of programs and reports for {duration:.0f} s", flush=True)
        # the status under load and its floor, timed by a client process of its own while this one watches
        with statusprobe.probing({"reports": running.url("reports"), "floor": floor}, infra.workdir,
                                 STATUS_PROBE_S) as probed:
            seconds, applied, censored = asyncio.run(watch(run, running.url("reports"), n, sents, start,
                                                           args.timeout, before))
        verdict = (f"cut off after {seconds:.0f} s (--timeout): {applied:,} of {n:,} applied, "
                   f"{applied / seconds:,.1f} events/s (censored)") if censored else \
            f"all {n:,} visible after {seconds:.1f} s: {n / seconds:,.1f} events/s"
        print(f"  pipeline (services ready after {start_s:.1f} s): {verdict}", flush=True)
    print(f"  {rss.cpu_line()} (services ready -> last event visible; {os.cpu_count()} CPUs)", flush=True)
    outcomes = asyncio.run(count_outcomes(run, before["outcomes"]))
    print(f"  outcomes of the updates: {dict(outcomes)}", flush=True)
    for name, what in (("reports", "GET /v1/status under load"), ("floor", "  its floor (a bare responder)")):
        if probed[name]:
            print(f"  {what}: {len(probed[name])} requests, p50 {harness.percentile(probed[name], 50) * 1000:.1f} ms, "
                  f"p99 {harness.percentile(probed[name], 99) * 1000:.1f} ms", flush=True)
    return Result(n, seconds, applied, censored, start_s, setup_s, base, outcomes, rss.peak, probed["reports"],
                  rss.cpu, probed["floor"])


# --- printing -----------------------------------------------------------------------------------------

def report(args, results: list[Result], n: int, tasks: int) -> int:
    rates = [r.rate for r in results]
    bases = [r.base["events_per_s"] for r in results]
    ratios = [r.rate / r.base["events_per_s"] for r in results]
    rate, base = harness.spread(rates)[1], harness.spread(bases)[1]
    ratio = rate / base if base else float("nan")
    censored = any(r.censored for r in results)
    rss = harness.peak_rss([r.rss for r in results])
    print()
    print(f"Pipeline throughput: {n:,} task.updated events ({tasks:,} tasks, --scale {args.scale:g}) on "
          f"events.accepted -> programs -> reports, from a cold start of the services until GET /v1/status shows "
          f"the last event of every programme; --repeat {args.repeat}, --timeout {args.timeout:g} s")
    print(harness.header())
    label = "pipeline, events/s" + (" (censored)" if censored else "")
    print(harness.row(label, rates, unit="/s", baseline=base,
                      target=f">= {TARGET_EVENTS_PER_S:,.0f}/s", met=rate >= TARGET_EVENTS_PER_S))
    print(harness.row("pipeline / baseline", ratios, unit="x", target=f">= {TARGET_RATIO:g}x",
                      met=ratio >= TARGET_RATIO))
    print(f"  (ratio to 3 significant digits: {', '.join(f'{x:.3g}x' for x in ratios)})")
    print(harness.row("raw baseline (getmany + insert_many)", bases, unit="/s"))
    print(harness.row("  raw getmany, events/s", [r.base["records"] / r.base["consume_s"] for r in results], unit="/s"))
    print(harness.row("  raw insert_many, docs/s", [r.base["written"] / r.base["write_s"] for r in results], unit="/s"))
    print(harness.row("seconds from services start to visible", [r.seconds for r in results], unit="s"))
    print(harness.row("  services start (spawn -> ready)", [r.start_s for r in results], unit="s"))
    print(harness.row("setup (registry + plans applied, untimed)", [r.setup_s for r in results], unit="s"))
    outcomes = sum((r.outcomes for r in results), Counter())
    print(f"  baseline = N / (getmany consume time + insert_many write time), measured one after the other on the "
          f"same topic and FerretDB before the services start (consume time includes the group join). Censored: "
          f"{sum(r.censored for r in results)} of {len(results)} runs were cut off by --timeout, their figure is the "
          f"rate applied until then. Outcomes of the updates over all runs: {dict(outcomes)}")
    status_all = [x for r in results for x in r.status_s]
    floor_all = [x for r in results for x in r.floor_s]
    status_p99, floor_p99 = (harness.percentile(status_all, 99) * 1000, harness.percentile(floor_all, 99) * 1000)
    print(harness.row("GET /v1/status under load, p99 ms", [harness.percentile(r.status_s, 99) * 1000
                                                           for r in results if r.status_s],
                      unit="ms", baseline=floor_p99 if floor_all else None, target=f"<= {TARGET_STATUS_P99_MS:g} ms",
                      met=status_p99 <= TARGET_STATUS_P99_MS))
    print(harness.row("  its floor: a bare responder, p99 ms", [harness.percentile(r.floor_s, 99) * 1000
                                                               for r in results if r.floor_s], unit="ms"))
    print("  the floor: the same bytes from a one-route uvicorn app in a process of its own, timed by the same "
          "client (a process of its own) in the same rounds; the gap to it is what reports adds")
    print("  peak RSS: " + ", ".join(f"{name} {mb:,.0f} MB" for name, mb in sorted(rss.items())))
    figures = {
        "pipeline_events_per_s": round(rate, 1),
        "pipeline_baseline_events_per_s": round(base, 1),
        "pipeline_ratio": float(f"{ratio:.3g}"),
        "pipeline_scale": args.scale,
        "pipeline_events": n,
        "pipeline_tasks": tasks,
        "pipeline_censored": censored,
        "pipeline_seconds": round(harness.spread([r.seconds for r in results])[1], 1),
        "pipeline_spread": {"events_per_s": harness.summary(rates), "baseline_events_per_s": harness.summary(bases),
                            "ratio": harness.summary(ratios),
                            "seconds": harness.summary([r.seconds for r in results])},
        "pipeline_outcomes": dict(outcomes),
        "pipeline_cpu_s": {name: round(harness.spread([r.cpu[name] for r in results if name in r.cpu])[1], 1)
                           for name in sorted({name for r in results for name in r.cpu})},
        "pipeline_status_p99_ms": round(status_p99, 2),
        "pipeline_status_p50_ms": round(harness.percentile(status_all, 50) * 1000, 2) if status_all else float("nan"),
        "pipeline_status_floor_p99_ms": round(floor_p99, 2),
        "pipeline_status_floor_p50_ms": round(harness.percentile(floor_all, 50) * 1000, 2),
        "pipeline_status_requests": {"reports": len(status_all), "floor": len(floor_all)},
        "pipeline_settings": {"scale": args.scale, "repeat": args.repeat, "timeout_s": args.timeout,
                              "batch": args.batch, "seed": args.seed, "profile": args.profile,
                              "baseline": "sequential: getmany consume time + insert_many write time"},
    }
    if args.scale == 1:  # the whole term: its own keys, beside the smaller run `make bench` makes
        figures = {key.replace("pipeline_", "pipeline_full_"): value for key, value in figures.items()}
        figures.update(status_p99_ms=figures["pipeline_full_status_p99_ms"], status_tasks=tasks,
                       status_p50_ms=figures["pipeline_full_status_p50_ms"],
                       status_floor_p99_ms=figures["pipeline_full_status_floor_p99_ms"],
                       status_floor_p50_ms=figures["pipeline_full_status_floor_p50_ms"])
    path = harness.write_results(figures, script="pipeline_full" if args.scale == 1 else "pipeline", rss=rss)
    print(f"results merged into {path}")
    return 0


def term_arguments(parser: argparse.ArgumentParser, *, repeat: int, timeout: float, timeout_help: str) -> None:
    """The options of a run over a generated term (this script's and bench/replay.py's)."""
    parser.add_argument("--scale", type=float, default=0.01,
                        help="fraction of the full term (20,000 tasks, 1,000,000 events); default 0.01")
    parser.add_argument("--repeat", type=int, default=repeat,
                        help=f"runs, each on fresh topics and databases ({repeat})")
    parser.add_argument("--timeout", type=float, default=timeout, help=f"{timeout_help} ({timeout:g})")
    parser.add_argument("--batch", type=int, default=1000, help="documents per insert_many of the baseline (1000)")
    parser.add_argument("--seed", type=int, default=17, help="of the generated term (17, as bench/reports.py)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    term_arguments(parser, repeat=3, timeout=600.0,
                   timeout_help="seconds a run may take before it is cut off and reported as censored")
    parser.add_argument("--profile", action="store_true",
                        help="py-spy profiles of programs and reports during the first run, in bench/results/profiles/")
    parser.add_argument("--profile-duration", type=float, default=60.0, help="seconds profiled (60, at most --timeout)")
    args = parser.parse_args()
    # A topic just created has no partition leader for a moment: the producer retries, and says so.
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    if not 0 < args.scale <= 1 or args.repeat < 1 or args.timeout <= 0 or args.batch < 1:
        parser.error("--scale in (0, 1]; --repeat >= 1; --timeout > 0; --batch >= 1")
    return run_term(args, label="bench-pipeline", one_run=one_run, report=report)


def run_term(args, *, label: str, one_run, report) -> int:
    """Generate the term, make --repeat runs of it (each on a prefix of its own), then report them."""
    started = time.monotonic()
    term = Term(args.scale, args.seed)
    n = sum(len(t.times) for t in term.tasks) + len(sentinels(term))
    print(f"generated the term in {time.monotonic() - started:.1f} s: {len(term.units)} units, {len(term.plans):,} "
          f"plans, {len(term.tasks):,} tasks, {n:,} task.updated events", flush=True)
    results = []
    with harness.infrastructure(label=label) as infra:
        logs = infra.workdir / "logs"
        for n_run in range(1, args.repeat + 1):
            print(f"run {n_run}/{args.repeat} (prefix {infra.prefix}r{n_run}):", flush=True)
            results.append(one_run(infra, n_run, term, args, logs))
    return report(args, results, n, len(term.tasks))


if __name__ == "__main__":
    sys.exit(main())
