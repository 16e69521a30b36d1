"""Benchmark: how many events/s the ingest service accepts over HTTP, with acks=all.

    .venv/bin/python bench/ingest.py                         # 3 runs of 10 s per figure
    .venv/bin/python bench/ingest.py --duration 2 --repeat 1 # a quick check
    .venv/bin/python bench/ingest.py --profile               # + a py-spy profile of ingest

Starts Kafka and FerretDB (or uses NQT_KAFKA_BOOTSTRAP / NQT_MONGO_URL), the ingest service
as a process, and next to it, in processes of their own, the baselines:

- a bare FastAPI endpoint that only answers 202, served with the very same uvicorn settings
  as the services (one process, h11, asyncio loop, no access log): the framework's ceiling;
- a plain asyncio server answering canned bytes: the load generator's own ceiling;
- a raw aiokafka producer (idempotent, acks=all) publishing the same record bytes 500 at a
  time and awaiting every acknowledgement: Kafka's ceiling through the client library.

Every run drives each target for --duration seconds with the same load generator
(bench/loadgen.py, a separate process, --connections keep-alive connections, closed loop):
single-event `POST /v1/events` and the batch form with --batch events per request. Runs are
interleaved (ceiling, bare, ingest, ...) so that the machine's noise falls on all alike.
The rate limit per unit is raised for the run (600/minute by default would answer 429).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import harness, profiles  # noqa: E402
from deploy.local import infra as local_infra  # noqa: E402

UNIT = "SO-KHDT"
TARGET_RATIO, TARGET_BATCH = 0.5, 20_000


def event(n: str) -> dict:
    return {"specversion": "1.0", "id": n, "source": UNIT, "type": "task.updated",
            "time": "2021-03-20T08:30:00+07:00", "datacontenttype": "application/json",
            "data": {"task_id": "SO-KHDT-02-001", "programme": "02", "status": "in_progress", "progress": 35,
                     "as_of": "2021-03-20", "note": "Đã hoàn thành dự thảo, đang lấy ý kiến các sở, ngành.",
                     "reported_by": {"name": "Nguyễn Văn An", "position": "Chuyên viên tổng hợp"}}}


def bodies(workdir: Path, batch: int) -> tuple[Path, Path]:
    single, many = workdir / "single.json", workdir / "batch.json"
    single.write_text(json.dumps(event("__ID__"), ensure_ascii=False), encoding="utf-8")
    many.write_text(json.dumps([event(f"__ID__.{i}") for i in range(batch)], ensure_ascii=False), encoding="utf-8")
    return single, many


def drive(port: int, body: Path, *, key: str | None, connections: int, duration: float,
          warmup: float = 1.0) -> dict:
    """One run of the load generator, as a process of its own; its JSON result."""
    args = ["bench/loadgen.py", "--port", str(port), "--body-file", str(body), "--id-placeholder", "__ID__",
            "--connections", str(connections), "--duration", str(duration), "--warmup", str(warmup)]
    if key:
        args += ["--header", f"Authorization: Bearer {key}"]
    out = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                         timeout=duration + warmup + 120)
    if out.returncode != 0:
        raise RuntimeError(f"load generator failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def accepted_rps(result: dict, *, per_request: int = 1) -> float:
    """Events/s answered 202 (anything else is reported, never counted)."""
    return result["statuses"].get("202", 0) * per_request / result["seconds"]


def others(result: dict) -> str:
    bad = {k: v for k, v in result["statuses"].items() if k != "202"}
    return f" (also {bad}, {result['errors']} errors)" if bad or result["errors"] else ""


async def raw_producer(kafka: str, topic: str, batch: int, duration: float) -> float:
    """Events/s of a raw aiokafka producer, idempotent with acks=all, publishing the same
    record bytes `batch` at a time (like one batch request) and awaiting every ack."""
    from aiokafka import AIOKafkaProducer

    await harness.ensure_topic(kafka, topic)
    value = json.dumps(event("raw-0000000000") | {"nqtacceptedtime": "2021-03-20T01:30:00.000000Z",
                                                   "nqtacceptid": "0" * 32}).encode()
    producer = AIOKafkaProducer(bootstrap_servers=kafka, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        sent, started = 0, time.perf_counter()
        while time.perf_counter() - started < duration:
            futures = [await producer.send(topic, value, key=b"02") for _ in range(batch)]
            await asyncio.gather(*futures)
            sent += batch
        return sent / (time.perf_counter() - started)
    finally:
        await producer.stop()


def run(args) -> dict:
    figures: dict[str, list[float]] = {k: [] for k in (
        "ceiling", "bare", "single", "bare_batch", "batch", "raw_producer")}
    latency: dict[str, list[float]] = {"single_p50": [], "single_p99": [], "bare_p50": [], "batch_p50": []}
    with tempfile.TemporaryDirectory(prefix="nqt-bench-ingest-") as tmp, \
            harness.infrastructure(label="bench-ingest") as infra:
        workdir = Path(tmp)
        single, batch = bodies(workdir, args.batch)
        ports = {"raw": local_infra.free_port(), "bare": local_infra.free_port()}
        baselines = {name: harness.python_process(["bench/bare.py", kind, "--port", str(ports[name])],
                                                  log=workdir / f"{name}.log")
                     for name, kind in (("raw", "raw"), ("bare", "fastapi"))}
        try:
            for name, port in ports.items():
                local_infra.wait_for_port(name, port, baselines[name], workdir / f"{name}.log", timeout=30)
            extra = {"NQT_INGEST_RATE_LIMIT": "1000000/second"}
            with harness.services(infra, ["ingest"], units=[UNIT], extra=extra, logs=workdir / "logs") as running:
                key, ingest = running.keys[UNIT], running.ports["ingest"]
                pids = {**running.pids(), **infra.pids(), "bare_fastapi": baselines["bare"].pid}
                topic = f"{infra.prefix}.bench.raw"
                with harness.RssSampler(pids) as rss:
                    # Warm-up, untimed: first connections, imports, the producer's metadata.
                    drive(ingest, single, key=key, connections=args.connections, duration=1, warmup=0.5)
                    drive(ports["bare"], single, key=key, connections=args.connections, duration=1, warmup=0.5)
                    for n in range(1, args.repeat + 1):
                        d, c, b = args.duration, args.connections, args.batch_connections
                        figures["ceiling"].append(accepted_rps(drive(ports["raw"], single, key=key, connections=c,
                                                                     duration=d)))
                        bare = drive(ports["bare"], single, key=key, connections=c, duration=d)
                        figures["bare"].append(accepted_rps(bare))
                        latency["bare_p50"].append(bare["latency_ms"]["p50"])
                        one = drive(ingest, single, key=key, connections=c, duration=d)
                        figures["single"].append(accepted_rps(one))
                        latency["single_p50"].append(one["latency_ms"]["p50"])
                        latency["single_p99"].append(one["latency_ms"]["p99"])
                        bare_many = drive(ports["bare"], batch, key=key, connections=b, duration=d)
                        figures["bare_batch"].append(accepted_rps(bare_many, per_request=args.batch))
                        many = drive(ingest, batch, key=key, connections=b, duration=d)
                        figures["batch"].append(accepted_rps(many, per_request=args.batch))
                        latency["batch_p50"].append(many["latency_ms"]["p50"] or float("nan"))
                        figures["raw_producer"].append(asyncio.run(raw_producer(infra.kafka, topic, args.batch, d)))
                        print(f"run {n}/{args.repeat}: ceiling {figures['ceiling'][-1]:,.0f}/s, bare "
                              f"{figures['bare'][-1]:,.0f}/s, ingest single {figures['single'][-1]:,.0f}/s"
                              f"{others(one)}, bare batch {figures['bare_batch'][-1]:,.0f} ev/s, ingest batch "
                              f"{figures['batch'][-1]:,.0f} ev/s{others(many)}, raw producer "
                              f"{figures['raw_producer'][-1]:,.0f} ev/s", flush=True)
                    if args.profile:
                        profile_dir = Path(args.profile_dir)
                        for label, body, conns in (("single", single, args.connections),
                                                   ("batch", batch, args.batch_connections)):
                            with profiles.recording(running.procs["ingest"].pid, profile_dir / f"ingest-{label}",
                                                    duration=args.duration + 2):
                                drive(ingest, body, key=key, connections=conns, duration=args.duration)
                            print(f"profile of ingest ({label}): {profile_dir / f'ingest-{label}.txt'}", flush=True)
        finally:
            harness.stop_processes(baselines.values())
    return {"figures": figures, "latency": latency, "rss": rss.peak}


def report(result: dict, args) -> dict:
    f, lat, rss = result["figures"], result["latency"], result["rss"]
    med = {k: harness.spread(v)[1] for k, v in f.items()}
    ratio = med["single"] / med["bare"]
    print()
    print(f"Ingest over HTTP, acks=all; --repeat {args.repeat} runs of {args.duration:g} s each; "
          f"{args.connections} connections (single), {args.batch_connections} (batches of {args.batch}); "
          f"{harness.environment()['cpu_count']} CPUs")
    print(harness.header())
    print(harness.row("load generator ceiling (canned bytes)", f["ceiling"], unit="/s"))
    print(harness.row("bare FastAPI POST, requests/s", f["bare"], unit="/s"))
    print(harness.row("ingest single POST, requests/s", f["single"], unit="/s", baseline=med["bare"],
                      target=f">= {TARGET_RATIO}x bare", met=ratio >= TARGET_RATIO))
    print(harness.row("bare FastAPI, batch body, events/s", f["bare_batch"], unit="/s"))
    print(harness.row("raw aiokafka producer acks=all, ev/s", f["raw_producer"], unit="/s"))
    print(harness.row(f"ingest batch of {args.batch}, events/s", f["batch"], unit="/s",
                      baseline=med["raw_producer"], target=f">= {TARGET_BATCH:,}/s",
                      met=med["batch"] >= TARGET_BATCH))
    print(harness.row("ingest single, latency p50", lat["single_p50"], unit="ms"))
    print(harness.row("ingest single, latency p99", lat["single_p99"], unit="ms"))
    print(harness.row("bare FastAPI single, latency p50", lat["bare_p50"], unit="ms"))
    print(harness.row(f"ingest batch of {args.batch}, latency p50", lat["batch_p50"], unit="ms"))
    print("  ratio = median / the baseline's median; met judged on the medians. Single: the baseline is the bare "
          "endpoint; batch: the raw producer (Kafka through aiokafka, the same bytes).")
    print("  peak RSS over the whole run: " + ", ".join(f"{name} {mb:,.0f} MB" for name, mb in sorted(rss.items())))
    return {
        "ingest_single_rps": round(med["single"], 1), "ingest_bare_rps": round(med["bare"], 1),
        "ingest_single_ratio": round(ratio, 3), "ingest_batch_events_per_s": round(med["batch"], 1),
        "ingest_batch_bare_events_per_s": round(med["bare_batch"], 1),
        "ingest_raw_producer_events_per_s": round(med["raw_producer"], 1),
        "ingest_batch_ratio_to_raw_producer": round(med["batch"] / med["raw_producer"], 3),
        "loadgen_ceiling_rps": round(med["ceiling"], 1),
        "ingest_single_latency_ms": {"p50": round(harness.spread(lat["single_p50"])[1], 2),
                                     "p99": round(harness.spread(lat["single_p99"])[1], 2)},
        "ingest_spread": {k: harness.summary(v) for k, v in f.items()},
        "ingest_settings": {"duration_s": args.duration, "repeat": args.repeat, "connections": args.connections,
                            "batch": args.batch, "batch_connections": args.batch_connections},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of each timed run (default 10)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each figure (default 3)")
    parser.add_argument("--connections", type=int, default=64, help="connections, single events (default 64)")
    parser.add_argument("--batch", type=int, default=500, help="events per batch request (default 500)")
    parser.add_argument("--batch-connections", type=int, default=8, help="connections, batches (default 8)")
    parser.add_argument("--profile", action="store_true", help="then profile ingest with py-spy, one run each")
    parser.add_argument("--profile-dir", default=str(harness.PROFILES))
    args = parser.parse_args()
    if args.repeat < 1 or args.duration <= 0 or not 1 <= args.batch <= 1000:
        parser.error("--repeat >= 1, --duration > 0, --batch in 1..1000")
    result = run(args)
    figures = report(result, args)
    path = harness.write_results(figures, script="ingest", rss=result["rss"])
    print(f"results merged into {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
