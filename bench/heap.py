"""Benchmark: what a service holds at start-up (imports alone), and what a fold of a whole term's
task states holds for a moment (`shared.statelog`), in MB.

    .venv/bin/python bench/heap.py                    # --scale 1: 20,000 task states in 10 programmes

1. Each service's app module imported in a fresh interpreter: its RSS after the imports and the
   kernel's high-water mark (VmHWM), which counts what the imports allocated and let go.
2. The term's tasks (bench/reports.py's `Term`) as task states, logged as the changelog holds
   them (a document per 1,000), then folded into a checkpoint per programme, against FerretDB:
   the peak that tracemalloc sees above what was held before the fold (the states themselves).

Only figures, nothing asserted; `rss_mb.heap` and `heap_*` keys go to bench/results/latest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import harness  # noqa: E402
from bench.reports import Term  # noqa: E402
from shared import mongo  # noqa: E402
from shared.statelog import Known, StateLog  # noqa: E402

SERVICES = ("ingest", "programs", "reports", "notify")
PROBE = ("import gc, {module}; gc.collect(); "
         "print(*[l.split()[1] for l in open('/proc/self/status') if l.startswith(('VmRSS', 'VmHWM'))])")


def imports_mb(service: str) -> tuple[float, float]:
    """RSS after importing the service's app module, and the high-water mark (MB)."""
    out = subprocess.run([sys.executable, "-c", PROBE.format(module=f"services.{service}.app")], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout.split()
    hwm, rss = (int(v) / 1024 for v in out)  # /proc/self/status lists VmHWM before VmRSS
    return rss, hwm


def task_states(term: Term) -> list[dict]:
    """Each task as reports holds it once reported on: its plan's fields, the last report, `seq`."""
    return [{**t.static(), "programme": t.plan.programme, "plan_id": t.plan.plan_id, "seq": len(t.times) or 1,
             **(t.fields(len(t.times) - 1) if t.times else {"status": "not_started", "progress": 0.0})}
            for t in term.tasks]


async def fold_mb(url: str, database: str, states: list[dict]) -> tuple[float, float]:
    """MB traced above the states while logging them (a document per 1,000) and while folding."""
    client = mongo.connect(url)
    try:
        log = StateLog(client[database].task_states, key="task_id", group=lambda s: s["programme"])
        known = Known()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        for start in range(0, len(states), 1000):
            await log.append(states[start:start + 1000], known)
        logged = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        await log.fold(states, {s["programme"] for s in states}, known)
        folded = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
        return logged / 2**20, folded / 2**20
    finally:
        await client.drop_database(database)
        await client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full term (1: 20,000 tasks)")
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args()
    started = {name: imports_mb(name) for name in SERVICES}
    for name, (rss, hwm) in started.items():
        print(f"{name:<10} imports: RSS {rss:,.0f} MB, high-water mark {hwm:,.0f} MB")
    states = task_states(Term(args.scale, seed=args.seed))
    with harness.infrastructure(kafka=False, label="bench-heap") as infra:
        logged, folded = asyncio.run(fold_mb(infra.mongo, f"{infra.prefix}_heap", states))
    print(f"{len(states):,} task states: logging them 1,000 at a time holds {logged:,.1f} MB at most; "
          f"one fold of all of them {folded:,.1f} MB above them")
    harness.write_results({"heap_imports_mb": {n: {"rss": round(r, 1), "hwm": round(h, 1)} for n, (r, h) in started.items()},
                           "heap_fold_mb": round(folded, 1), "heap_log_mb": round(logged, 1),
                           "heap_fold_states": len(states)}, script="heap")
    return 0


if __name__ == "__main__":
    sys.exit(main())
