"""The bench scripts in a tiny configuration (seconds, not minutes): they run against the real
stack, print their figures and merge their keys into the results file. No timing is asserted:
speed is what `make bench` measures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_script(args: list[str], infra_stack, results: Path, timeout: float = 400) -> str:
    env = {"NQT_KAFKA_BOOTSTRAP": infra_stack.kafka, "NQT_MONGO_URL": infra_stack.mongo,
           "NQT_BENCH_RESULTS": str(results)}
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.fixture
def results(tmp_path) -> Path:
    path = tmp_path / "latest.json"
    path.write_text(json.dumps({"pipeline_events_per_s": 1.0}))  # another script's key: kept
    return path


def test_ingest_bench_prints_its_figures_and_writes_its_keys(infra_stack, results):
    out = run_script(["bench/ingest.py", "--duration", "1", "--repeat", "1", "--connections", "8",
                      "--batch", "20", "--batch-connections", "2"], infra_stack, results)
    for label in ("bare FastAPI POST, requests/s", "ingest single POST, requests/s", "ingest batch of 20, events/s",
                  "raw aiokafka producer", "load generator ceiling", "peak RSS"):
        assert label in out
    written = json.loads(results.read_text())
    assert {"ingest_single_ratio", "ingest_batch_events_per_s", "ingest_single_rps", "ingest_bare_rps",
            "cpu_count", "kafka", "ferretdb", "python", "packages", "date", "max_rss_mb"} <= written.keys()
    assert written["pipeline_events_per_s"] == 1.0
    assert written["ingest_single_rps"] > 0 and written["ingest_batch_events_per_s"] > 0
    assert {"ingest", "bare_fastapi"} <= written["rss_mb"]["ingest"].keys()


def test_freshness_bench_prints_its_figures_and_writes_its_keys(infra_stack, results):
    out = run_script(["bench/freshness.py", "--rate", "20", "--duration", "2", "--repeat", "1", "--tasks", "20",
                      "--probe-share", "0.5", "--drain", "20"], infra_stack, results)
    for label in ("freshness p50", "freshness p99", "raw hop p99", "GET /v1/status request", "peak RSS"):
        assert label in out
    written = json.loads(results.read_text())
    assert {"freshness_p50_ms", "freshness_p99_ms", "freshness_raw_hop_p99_ms", "cpu_count"} <= written.keys()
    assert written["freshness_settings"]["tasks"] == 20
    assert {"ingest", "programs", "reports"} <= written["rss_mb"]["freshness"].keys()
    assert written["pipeline_events_per_s"] == 1.0


def test_pipeline_bench_prints_its_figures_and_writes_its_keys(infra_stack, results):
    out = run_script(["bench/pipeline.py", "--scale", "0.0003", "--repeat", "1", "--timeout", "300"],
                     infra_stack, results)
    for label in ("pipeline, events/s", "pipeline / baseline", "raw baseline (getmany + insert_many)",
                  "seconds from services start to visible", "GET /v1/status under load", "its floor: a bare responder",
                  "peak RSS"):
        assert label in out
    written = json.loads(results.read_text())
    assert written["pipeline_status_p99_ms"] > 0  # the status was asked for, and answered, while the pipeline ran
    # and its floor beside it, by the same client in the same rounds
    assert written["pipeline_status_floor_p99_ms"] > 0 and written["pipeline_status_floor_p50_ms"] > 0
    asked = written["pipeline_status_requests"]
    assert asked["reports"] > 0 and abs(asked["reports"] - asked["floor"]) <= 1
    assert {"pipeline_events_per_s", "pipeline_ratio", "pipeline_baseline_events_per_s", "pipeline_scale",
            "pipeline_events", "max_rss_mb", "cpu_count"} <= written.keys()
    assert written["pipeline_scale"] == 0.0003 and written["pipeline_events"] > 100
    assert written["pipeline_events_per_s"] != 1.0 and written["pipeline_baseline_events_per_s"] > 0
    assert {"programs", "reports"} <= written["rss_mb"]["pipeline"].keys()


def test_ferretdb_bench_prints_the_cost_of_lookups_by_key(infra_stack, results):
    out = run_script(["bench/ferretdb.py", "--sizes", "20", "--ops", "5", "--repeat", "1"], infra_stack, results)
    for label in ("insert_many, per document", "find_one by _id", "guarded update_one {_id, seq}"):
        assert label in out
    written = json.loads(results.read_text())
    assert written["ferretdb_guarded_update_ms_20"] > 0 and written["pipeline_events_per_s"] == 1.0


def test_replay_bench_prints_its_figures_and_writes_its_keys(infra_stack, results):
    out = run_script(["bench/replay.py", "--scale", "0.0003", "--repeat", "1", "--timeout", "300"],
                     infra_stack, results)
    for label in ("replay, events/s", "replay / baseline", "raw baseline (getmany + insert_many)", "replay seconds",
                  "identical to the live databases", "peak RSS"):
        assert label in out
    written = json.loads(results.read_text())
    assert {"replay_events_per_s", "replay_seconds", "replay_ratio", "replay_baseline_events_per_s",
            "replay_scale", "replay_events", "cpu_count"} <= written.keys()
    assert written["replay_scale"] == 0.0003 and written["replay_events"] > 100 and written["replay_identical"]
    assert written["replay_events_per_s"] > 0 and written["pipeline_events_per_s"] == 1.0


def test_webview_bench_prints_each_page_and_writes_its_keys(infra_stack, results):
    out = run_script(["bench/webview.py", "--scale", "0.005", "--requests", "2"], infra_stack, results)
    for label in ("raw: live status", "overview (p99", "task (p99", "programme_filtered (p99"):
        assert label in out
    written = json.loads(results.read_text())
    assert written["webview_task_p99_ms"] > 0 and written["webview_tasks"] > 50
    assert written["pipeline_events_per_s"] == 1.0
