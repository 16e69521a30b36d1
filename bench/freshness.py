"""Benchmark: freshness, the time from ingest's `202` to the change being visible in the
reports service's `GET /v1/status`, at a steady rate of `task.updated` events over HTTP.

    .venv/bin/python bench/freshness.py                               # 500 ev/s, 3 runs of 20 s
    .venv/bin/python bench/freshness.py --rate 50 --duration 3 --repeat 1 --tasks 100   # quick

Starts Kafka and FerretDB (or uses NQT_KAFKA_BOOTSTRAP / NQT_MONGO_URL), then ingest,
programs and reports as processes (notify plays no part in it; the reports scheduler is
off, so that no report is generated in the middle of a run), loads the Hanoi registry,
issues the 10 programmes and has the departments and districts submit plans with --tasks
tasks in all. Then, each run, it posts single `task.updated` events at --rate events/s
(open loop: on schedule, whatever the answers) to random tasks, each from the task's own
lead unit, with an event time one second after the previous event's and a progress
value unique to the event.

What is visible: `GET /v1/status` lists the overdue tasks with their `progress`
(`overdue_tasks[]`; the first NQT_REPORTS_STATUS_LIST_LIMIT, which the bench sets to --tasks). A share (--probe-share) of the tasks fall due before the reports
clock's today (pinned to 2021-04-05), so they are overdue and listed; the events to them
are the probes, the others load. A probe is visible once a status shows its task's
progress at its value, or at the value of a later event to that task (which supersedes
it). --pollers loops poll the status back to back, from a process of their own
(`bench/statusprobe.py`), so that the bench's own sending does not delay them; for every probe:

    upper = end of the first status answer that shows it - its 202   (what a client sees)
    lower = start of the last status request that did not show it - its 202 (at least 0)

The figures are the percentiles of `upper` (conservative: it includes a status request's
own time, printed too), with those of `lower` beside them, and where the seen probes' time
went, hop by hop (`bench/hops.py`). The raw baseline, in the same run at the same rate: a raw
aiokafka producer (acks=all) -> raw consumer -> a FerretDB insert and a read of it by _id, a
batch at a time; the pipeline makes two such hops (ingest -> programs -> reports) and more
writes. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import harness, hops, loadgen, statusprobe  # noqa: E402
from deploy.local.stack import REGISTRY  # noqa: E402

CLOCK = "2021-04-05T09:00:00+07:00"  # the reports clock: tasks due by 2021-04-04 are overdue
PROBE_DUE, LOAD_DUE = "2021-03-31", "2025-12-31"
T0 = datetime(2021, 3, 20, 8, 0, tzinfo=timezone(timedelta(hours=7)))
TARGET_P99_MS = 250.0  # from the 202 to /v1/status showing it, at a steady 500 events/s
UNITS = [u for u in ("SO-KHDT SO-TC SO-XD SO-QHKT SO-GTVT SO-TNMT SO-NNPTNT SO-CT SO-KHCN SO-TTTT SO-VHTT SO-DL "
                     "SO-GDDT SO-YT SO-LDTBXH SO-NV SO-TP Q-BADINH Q-HOANKIEM Q-TAYHO Q-LONGBIEN Q-CAUGIAY "
                     "Q-DONGDA Q-HAIBATRUNG Q-HOANGMAI Q-THANHXUAN Q-NAMTULIEM Q-BACTULIEM Q-HADONG H-SOCSON "
                     "H-DONGANH H-GIALAM H-THANHTRI H-MELINH H-BAVI H-PHUCTHO H-DANPHUONG H-HOAIDUC H-QUOCOAI "
                     "H-THACHTHAT H-CHUONGMY H-THANHOAI H-THUONGTIN H-PHUXUYEN H-UNGHOA H-MYDUC TX-SONTAY").split()]
PERSON = {"name": "Nguyễn Văn An", "position": "Chuyên viên tổng hợp"}


def envelope(source: str, event_id: str, kind: str, data: dict, when: datetime) -> dict:
    return {"specversion": "1.0", "id": event_id, "source": source, "type": kind, "time": when.isoformat(),
            "datacontenttype": "application/json", "data": data}


@dataclass
class Task:
    task_id: str
    unit: str
    programme: str
    probe: bool


def plans(tasks_wanted: int, probe_share: float, rng: random.Random) -> tuple[list[Task], dict[str, list[dict]]]:
    """Plans of 10 tasks, spread over the departments and districts and the 10 programmes;
    each unit's plan.submitted events, by unit."""
    tasks: list[Task] = []
    by_unit: dict[str, list[dict]] = defaultdict(list)
    for n in range(max(1, -(-tasks_wanted // 10))):
        unit, programme = UNITS[n % len(UNITS)], f"{n % 10 + 1:02d}"
        plan_id = f"KH-{programme}-{n:04d}"
        items = []
        for j in range(min(10, tasks_wanted - 10 * n)):
            task = Task(f"{unit}-{n:04d}-{j:02d}", unit, programme, rng.random() < probe_share)
            tasks.append(task)
            due = PROBE_DUE if task.probe else LOAD_DUE
            items.append({"task_id": task.task_id, "title": f"Nhiệm vụ {j + 1} của kế hoạch {plan_id}",
                          "lead_unit": unit, "lead_person": PERSON, "due_date": due,
                          "milestones": [{"title": "Hoàn thành, báo cáo kết quả", "due_date": due}]})
        by_unit[unit].append(envelope(unit, f"{unit}-{plan_id}", "plan.submitted", {
            "plan_id": plan_id, "programme": programme, "title": f"Kế hoạch {plan_id}",
            "document_no": f"{n}/KH-{unit}", "issued_on": "2021-02-01", "tasks": items}, T0 - timedelta(days=40)))
    return tasks, by_unit


# --- the run ---------------------------------------------------------------------------------

@dataclass
class Probe:
    seq: int
    task: str
    key: str  # the event's source:id
    sent: float
    acked: float = 0.0
    lower: float = 0.0      # start of the last status request that did not show it
    upper: float | None = None  # end of the first status answer that showed it


@dataclass
class Run:
    probes: dict[int, Probe] = field(default_factory=dict)
    by_task: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))  # seqs, in order
    value_seq: dict[tuple[str, int], int] = field(default_factory=dict)  # (task, progress*1000) -> seq
    sent: int = 0
    accepted: int = 0
    failed: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    late_sends: int = 0  # requests sent more than 50 ms behind schedule (no free connection)
    polls: list[float] = field(default_factory=list)  # seconds per status request
    first_seq: int = 0
    started: float = 0.0   # loop time of the first request
    ended: float = 0.0     # loop time the drain ended
    wall: float = 0.0      # wall clock minus loop time (the services' logs and Kafka use the wall clock)


def progress_of(seq: int) -> float:
    """A progress value unique to an event among the last 90,000 (0.000 .. 89.999)."""
    return (seq % 90_000) / 1000


class Sender:
    """Single-event POSTs on a pool of keep-alive connections, on schedule."""

    def __init__(self, port: int, keys: dict[str, str], connections: int):
        self.port, self.keys, self.size = port, keys, connections
        self.free: asyncio.Queue = asyncio.Queue()

    async def start(self) -> None:
        for _ in range(self.size):
            self.free.put_nowait(await loadgen._connect("127.0.0.1", self.port))

    async def post(self, unit: str, body: bytes) -> int:
        conn = await self.free.get()
        try:
            status, _ = await conn.request(loadgen.build_request(
                "POST", "/v1/events", [f"Authorization: Bearer {self.keys[unit]}"], body))
            return status
        finally:
            if conn.closed:
                conn = await loadgen._connect("127.0.0.1", self.port)
            self.free.put_nowait(conn)

    def close(self) -> None:
        while not self.free.empty():
            self.free.get_nowait().transport.close()


async def drive(run: Run, sender: Sender, tasks: list[Task], *, rate: float, duration: float,
                seqs: itertools.count, rng: random.Random) -> None:
    loop = asyncio.get_running_loop()
    start, pending = loop.time(), set()
    run.started, run.wall = start, time.time() - start

    async def one(task: Task, seq: int) -> None:
        body = orjson.dumps(envelope(task.unit, f"{task.unit}-TD-{seq:09d}", "task.updated", {
            "task_id": task.task_id, "programme": task.programme, "status": "in_progress",
            "progress": progress_of(seq), "as_of": "2021-03-20", "reported_by": PERSON},
            T0 + timedelta(seconds=seq)))
        probe = run.probes.get(seq)
        status = await sender.post(task.unit, body)
        if status == 202:
            run.accepted += 1
            if probe:
                probe.acked = loop.time()
        else:
            run.failed[str(status)] += 1
            if probe:
                del run.probes[seq]

    for n in itertools.count():
        due = start + n / rate
        if due - start >= duration:
            break
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.05:
            run.late_sends += 1
        task, seq = rng.choice(tasks), next(seqs)
        run.first_seq = run.first_seq or seq
        if task.probe:
            run.probes[seq] = Probe(seq, task.task_id, f"{task.unit}:{task.unit}-TD-{seq:09d}", loop.time())
            run.by_task[task.task_id].append(seq)
            run.value_seq[(task.task_id, round(progress_of(seq) * 1000))] = seq
        run.sent += 1
        job = asyncio.create_task(one(task, seq))
        pending.add(job)
        job.add_done_callback(pending.discard)
    await asyncio.gather(*pending)


def mark(run: Run, answer: statusprobe.Answer) -> None:
    """Mark what a status answer shows (its times: the probe's clock, the system's monotonic one)."""
    run.polls.append(answer.ended - answer.sent)
    for task_id, seqs in run.by_task.items():
        at = run.value_seq.get((task_id, answer.overdue.get(task_id, -1)))
        for seq in seqs:
            probe = run.probes.get(seq)
            if probe is None or not probe.acked or probe.upper is not None:
                continue
            if at is not None and seq <= at:
                probe.upper = answer.ended
            elif answer.sent > probe.acked:
                probe.lower = max(probe.lower, answer.sent)


async def watch(run: Run, out: Path, stop: asyncio.Event) -> None:
    """Mark the answers the probe process appends, as they come, until `stop` (then the rest)."""
    offset = 0
    while True:
        stopping = stop.is_set()
        found, offset = statusprobe.answers(out, offset)
        for answer in found:
            mark(run, answer)
        if stopping:
            return
        await asyncio.sleep(0.1)


async def measure_run(ingest: int, reports: str, keys: dict[str, str], tasks: list[Task], args,
                      seqs: itertools.count, rng: random.Random, workdir: Path) -> Run:
    run = Run()
    sender = Sender(ingest, keys, args.connections)
    await sender.start()
    stop = asyncio.Event()
    # The pollers run in a process of their own: in this one, busy sending on schedule, an answer
    # waited for the event loop (100-240 requests a run sent > 50 ms late), and that wait was
    # counted as the pipeline's.
    with statusprobe.running({"reports": reports}, workdir, 0.0, pollers=args.pollers, overdue=True) as out:
        watcher = asyncio.create_task(watch(run, out, stop))
        try:
            await drive(run, sender, tasks, rate=args.rate, duration=args.duration, seqs=seqs, rng=rng)
            deadline = time.monotonic() + args.drain
            while time.monotonic() < deadline and any(p.upper is None for p in run.probes.values()):
                await asyncio.sleep(0.1)
            run.ended = asyncio.get_running_loop().time()
        finally:
            stop.set()
            await asyncio.gather(watcher, return_exceptions=True)
            sender.close()
    return run


async def run_hops(run: Run, kafka: str, running: harness.Running) -> dict:
    """Where the seen probes' time went, hop by hop (bench/hops.py), in ms."""
    seen = {p.key: (p.acked + run.wall, p.upper + run.wall) for p in run.probes.values()
            if p.acked and p.upper is not None}
    return await hops.measure(seen, kafka=kafka, prefix=running.env["NQT_TOPIC_PREFIX"],
                              reports_log=running.logs / "reports.log", since_s=run.started + run.wall - 1.0,
                              percentile=harness.percentile)


# --- the raw baseline ------------------------------------------------------------------------

async def raw_hop(kafka: str, mongo: str, topic: str, db_name: str, *, rate: float, duration: float) -> list[float]:
    """Seconds from a raw producer's ack (acks=all) to the record consumed by a raw consumer,
    inserted into FerretDB and read back by _id, at the same rate as the run: a batch at a time
    (getmany, insert_many, a find of their ids), as the services read. One record at a time, two
    round trips each, the consumer fell behind at 500/s on the loaded machine (p99 2-7.5 s)."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    from shared import mongo as mongo_helpers

    await harness.ensure_topic(kafka, topic)
    client = mongo_helpers.connect(mongo)
    collection = client[db_name].raw_hop
    producer = AIOKafkaProducer(bootstrap_servers=kafka, enable_idempotence=True, acks="all")
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka, group_id=f"{topic}.g", auto_offset_reset="latest",
                                enable_auto_commit=True)
    await producer.start()
    await consumer.start()
    loop = asyncio.get_running_loop()
    acked: dict[str, float] = {}
    seen: dict[str, float] = {}  # read back, by key: a record may be read before its ack is in hand
    try:
        while not consumer.assignment():
            await asyncio.sleep(0.05)
        for tp in consumer.assignment():  # positioned before the first record is sent
            await consumer.position(tp)

        async def consume() -> None:
            while True:
                batch = await consumer.getmany(timeout_ms=100)
                keys = [record.value.decode() for records in batch.values() for record in records]
                if not keys:
                    continue
                await collection.insert_many([{"_id": key, "value": key} for key in keys], ordered=False)
                found = {doc["_id"] async for doc in collection.find({"_id": {"$in": keys}}, {"_id": 1})}
                now = loop.time()
                seen.update((key, now) for key in found)

        reader = asyncio.create_task(consume())
        await asyncio.sleep(0.5)
        start = loop.time()
        for n in itertools.count():
            due = start + n / rate
            if due - start >= duration:
                break
            await asyncio.sleep(max(0.0, due - loop.time()))
            key = f"raw-{n}-{time.time_ns()}"
            future = await producer.send(topic, key.encode(), key=str(n % 10).encode())
            future.add_done_callback(lambda _f, k=key: acked.__setitem__(k, loop.time()))
        await asyncio.sleep(2)
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        return [max(0.0, seen[key] - at) for key, at in acked.items() if key in seen]
    finally:
        await consumer.stop()
        await producer.stop()
        await client.drop_database(db_name)
        await client.close()


# --- setting up --------------------------------------------------------------------------------

def post_all(url: str, keys: dict[str, str], by_unit: dict[str, list[dict]], per_request: int = 50) -> None:
    with httpx.Client(base_url=url, timeout=120) as client:
        for unit, events in by_unit.items():
            for i in range(0, len(events), per_request):
                response = client.post("/v1/events", content=orjson.dumps(events[i:i + per_request]),
                                       headers={"Authorization": f"Bearer {keys[unit]}",
                                                "Content-Type": "application/json"})
                if response.status_code != 202:
                    raise RuntimeError(f"{unit}: {response.status_code} {response.text[:500]}")


def wait_for_tasks(url: str, total: int, timeout: float) -> dict:
    def check():
        status = httpx.get(f"{url}/v1/status", timeout=60).json()
        return status if sum(p["tasks"]["total"] for p in status["programmes"]) >= total else None
    return harness.wait_until(check, timeout, interval=1.0, what=f"{total} tasks in /v1/status")


def setup(running: harness.Running, tasks_wanted: int, probe_share: float, rng: random.Random) -> list[Task]:
    loaded = running.cli("registry", "load", str(REGISTRY))
    if loaded.returncode:
        raise RuntimeError(f"registry load failed: {loaded.stdout}{loaded.stderr}")
    issued = [envelope("VPTU", f"VPTU-CTR-{n:02d}", "programme.issued", {
        "programme": f"{n:02d}", "document_no": f"{n:02d}-CTr/TU", "issued_on": "2021-03-05"}, T0 - timedelta(days=15))
        for n in range(1, 11)]
    tasks, by_unit = plans(tasks_wanted, probe_share, rng)
    harness.wait_until(lambda: _units_known(running), 120, 1.0, "the registry in programs")
    post_all(running.url("ingest"), running.keys, {"VPTU": issued, **by_unit})
    wait_for_tasks(running.url("reports"), len(tasks), timeout=300)
    return tasks


def _units_known(running: harness.Running) -> bool:
    status = httpx.get(f"{running.url('reports')}/v1/status", timeout=60).json()
    return len(status.get("units", [])) >= len(UNITS) and len(status.get("programmes", [])) >= 10


# --- printing ----------------------------------------------------------------------------------

def percentiles_ms(values: list[float]) -> tuple[float, float]:
    return harness.percentile(values, 50) * 1000, harness.percentile(values, 99) * 1000


def run_figures(run: Run) -> dict:
    """Percentiles over every acknowledged probe; one never seen counts as seen at the end of
    the drain (censored), so that a pipeline that falls behind shows as slow, not as fast."""
    acked = [p for p in run.probes.values() if p.acked]
    seen = [p for p in acked if p.upper is not None]
    upper = [(p.upper if p.upper is not None else run.ended) - p.acked for p in acked]
    lower = [max(0.0, p.lower - p.acked) for p in acked]
    # Applied throughput: events sent up to the newest probe seen, over the time until it was seen.
    newest = max(seen, key=lambda p: p.seq, default=None)
    applied = ((newest.seq - run.first_seq + 1) / (newest.upper - run.started)
               if newest and newest.upper > run.started else float("nan"))
    return {"p50_upper": percentiles_ms(upper)[0] if upper else float("nan"),
            "p99_upper": percentiles_ms(upper)[1] if upper else float("nan"),
            "applied_per_s": applied,
            "p50_lower": percentiles_ms(lower)[0] if lower else float("nan"),
            "p99_lower": percentiles_ms(lower)[1] if lower else float("nan"),
            "probes": len(seen), "unseen": len(acked) - len(seen),
            "poll_ms": harness.percentile(run.polls, 50) * 1000 if run.polls else float("nan"),
            "polls": len(run.polls), "sent": run.sent, "accepted": run.accepted, "late": run.late_sends,
            "failed": dict(run.failed)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=500.0, help="events/s over HTTP (default 500)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of each run (default 20)")
    parser.add_argument("--repeat", type=int, default=3, help="runs (default 3)")
    parser.add_argument("--tasks", type=int, default=1000, help="tasks in the submitted plans (default 1000)")
    parser.add_argument("--probe-share", type=float, default=0.1, help="share of overdue (probe) tasks (0.1)")
    parser.add_argument("--pollers", type=int, default=2, help="status polling loops (default 2)")
    parser.add_argument("--connections", type=int, default=64, help="HTTP connections to ingest (default 64)")
    parser.add_argument("--drain", type=float, default=30.0, help="seconds to wait for the last probes (30)")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    if args.rate <= 0 or args.duration <= 0 or args.repeat < 1 or args.tasks < 10 or not 0 < args.probe_share <= 1:
        parser.error("--rate, --duration > 0; --repeat >= 1; --tasks >= 10; --probe-share in (0, 1]")
    rng = random.Random(args.seed)
    seqs = itertools.count(1)
    per_run: list[dict] = []
    raw: list[list[float]] = []
    with harness.infrastructure(label="bench-freshness") as infra:
        extra = {"NQT_INGEST_RATE_LIMIT": "1000000/second", "NQT_CLOCK_FIXED": CLOCK, "NQT_REPORTS_SCHEDULER": "false",
                 "NQT_REPORTS_STATUS_LIST_LIMIT": str(args.tasks)}  # every probe listed, however many
        with harness.services(infra, ["ingest", "programs", "reports"], units=["VPTU", *UNITS],
                              extra=extra) as running:
            with harness.RssSampler({**running.pids(), **infra.pids()}) as rss:
                started = time.monotonic()
                tasks = setup(running, args.tasks, args.probe_share, rng)
                probes = sum(t.probe for t in tasks)
                print(f"set up in {time.monotonic() - started:.0f} s: the Hanoi registry, 10 programmes issued, "
                      f"{len(tasks):,} tasks in {-(-len(tasks) // 10)} plans of {len(UNITS)} units, {probes} of "
                      f"them overdue (the probes)", flush=True)
                ingest, reports = running.ports["ingest"], running.url("reports")
                warm = argparse.Namespace(**{**vars(args), "duration": min(3.0, args.duration), "drain": 10.0})
                asyncio.run(measure_run(ingest, reports, running.keys, tasks, warm, seqs, rng, infra.workdir))  # untimed
                for n in range(1, args.repeat + 1):
                    # The baseline first: after the previous run's drain, before this run's load.
                    raw.append(asyncio.run(raw_hop(infra.kafka, infra.mongo, f"{infra.prefix}.bench.rawhop",
                                                   f"{infra.prefix}_rawhop{n}", rate=args.rate,
                                                   duration=min(args.duration, 10.0))))
                    run = asyncio.run(measure_run(ingest, reports, running.keys, tasks, args, seqs, rng, infra.workdir))
                    figures = run_figures(run)
                    figures["hops"] = asyncio.run(run_hops(run, infra.kafka, running))
                    per_run.append(figures)
                    print(f"run {n}/{args.repeat}: sent {figures['sent']:,} ({figures['accepted']:,} accepted"
                          f"{', failed ' + str(figures['failed']) if figures['failed'] else ''}, "
                          f"{figures['late']} late), applied {harness.human(figures['applied_per_s'], '/s')}, {figures['probes']} probes seen "
                          f"({figures['unseen']} not within the drain): freshness p50 {figures['p50_upper']:.0f} ms, "
                          f"p99 {figures['p99_upper']:.0f} ms (lower bound p50 {figures['p50_lower']:.0f}, p99 "
                          f"{figures['p99_lower']:.0f}); status request {figures['poll_ms']:.0f} ms; raw hop p99 "
                          f"{percentiles_ms(raw[-1])[1]:.1f} ms", flush=True)
                    print("  hops p50/p99 ms: " + "; ".join(f"{name} {h['p50']:.0f}/{h['p99']:.0f}"
                                                            for name, h in figures["hops"].items()), flush=True)
    return report(args, per_run, raw, rss.peak, len(tasks), probes)


def report(args, per_run: list[dict], raw: list[list[float]], rss: dict[str, float], tasks: int, probes: int) -> int:
    col = lambda key: [r[key] for r in per_run]  # noqa: E731
    raw50 = [percentiles_ms(r)[0] for r in raw if r]
    raw99 = [percentiles_ms(r)[1] for r in raw if r]
    base50, base99 = harness.spread(raw50)[1] if raw50 else None, harness.spread(raw99)[1] if raw99 else None
    p99 = harness.spread(col("p99_upper"))[1]
    print()
    print(f"Freshness: 202 from ingest -> visible in GET /v1/status; {args.rate:g} task.updated/s over HTTP for "
          f"{args.duration:g} s a run, --repeat {args.repeat}; {tasks:,} tasks ({probes} overdue: probes); "
          f"{args.pollers} status pollers")
    print(harness.header())
    print(harness.row("freshness p50 (first answer showing)", col("p50_upper"), unit="ms", baseline=base50))
    print(harness.row("freshness p99 (first answer showing)", col("p99_upper"), unit="ms", baseline=base99,
                      target=f"<= {TARGET_P99_MS:g} ms", met=p99 <= TARGET_P99_MS))
    print(harness.row("  lower bound p50 (last answer not)", col("p50_lower"), unit="ms"))
    print(harness.row("  lower bound p99 (last answer not)", col("p99_lower"), unit="ms"))
    print(harness.row("GET /v1/status request, median", col("poll_ms"), unit="ms"))
    print(harness.row("raw hop p50 (Kafka acks=all + insert+find)", raw50 or [float("nan")], unit="ms"))
    print(harness.row("raw hop p99", raw99 or [float("nan")], unit="ms"))
    print(harness.row("events accepted per run", col("accepted"), unit=""))
    print(harness.row("applied by the pipeline, events/s", col("applied_per_s"), unit="/s",
                      target=f">= {args.rate:g}/s (the rate)", met=harness.spread(col("applied_per_s"))[1] >= args.rate * 0.98))
    print(harness.row("probes seen per run", col("probes"), unit=""))
    print(f"  baseline = a raw producer -> consumer -> FerretDB insert + read hop at the same rate (median of runs); "
          f"the pipeline makes two hops. Probes never seen within --drain {args.drain:g} s: {sum(col('unseen'))} "
          f"(counted as seen at the drain's end, so the percentiles are then lower bounds); requests sent >50 ms "
          f"behind schedule: {sum(col('late'))}. Applied events/s: events sent up to the newest probe seen, over the "
          f"time from the first request until it was seen.")
    hop_figures = hops.medians([r["hops"] for r in per_run], lambda values: harness.spread(values)[1])
    print("\n".join(hops.lines(hop_figures)))
    print("  peak RSS: " + ", ".join(f"{name} {mb:,.0f} MB" for name, mb in sorted(rss.items())))
    figures = {
        "freshness_p50_ms": round(harness.spread(col("p50_upper"))[1], 1),
        "freshness_p99_ms": round(p99, 1),
        "freshness_p50_lower_ms": round(harness.spread(col("p50_lower"))[1], 1),
        "freshness_p99_lower_ms": round(harness.spread(col("p99_lower"))[1], 1),
        "freshness_status_request_ms": round(harness.spread(col("poll_ms"))[1], 1),
        "freshness_raw_hop_p50_ms": round(base50, 2) if base50 else None,
        "freshness_raw_hop_p99_ms": round(base99, 2) if base99 else None,
        "freshness_p99_ratio_to_raw_hop": round(p99 / base99, 2) if base99 else None,
        "freshness_spread": {k: harness.summary(col(k)) for k in ("p50_upper", "p99_upper", "poll_ms")},
        "freshness_unseen_probes": sum(col("unseen")),
        # True: some probes were never seen, so the percentiles are lower bounds (the pipeline fell behind).
        "freshness_censored": sum(col("unseen")) > 0,
        "freshness_hops_ms": hop_figures,
        "freshness_applied_events_per_s": round(harness.spread(col("applied_per_s"))[1], 1),
        "freshness_settings": {"rate": args.rate, "duration_s": args.duration, "repeat": args.repeat,
                               "tasks": tasks, "probes": probes, "pollers": args.pollers},
    }
    path = harness.write_results(figures, script="freshness", rss=rss)
    print(f"results merged into {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
