"""Benchmark: how fast the web view's pages (/ui/) render on a Hanoi-sized term.

Loads a whole term into a reports database exactly as bench/reports.py does (its loader: about
20,000 tasks and 1,000,000 status reports at --scale 1), files the status reports of a sample of
tasks under their task (as the consumer does, services/reports/tasklog.py), adds a user, signs in
and requests each page --requests times through the real routes (services/reports/web/pages.py),
with the reports service's state in memory as one replica holding every programme keeps it. It
prints p50/p99 per page next to a raw baseline measured in the same run: GET /v1/status's own
work (the live roll-up from memory, JSON-encoded), and merges webview_* keys into
bench/results/latest.json. The first request of all (loading the state into memory) is timed
apart. Nothing is asserted: it measures and prints.

    .venv/bin/python bench/webview.py --scale 1                 # a whole term
    .venv/bin/python bench/webview.py --scale 0.02 --requests 5 # a quick check
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import re
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from fastapi import FastAPI  # noqa: E402

from bench import harness, reports as term_bench  # noqa: E402
from deploy.local import infra  # noqa: E402
from shared import kafka, mongo  # noqa: E402
from shared.clock import Clock  # noqa: E402
from shared.runtime import Runtime  # noqa: E402

from services.reports import tasklog  # noqa: E402
from services.reports.owned import Holdings  # noqa: E402
from services.reports.service import ReportsService  # noqa: E402
from services.reports.settings import ReportsSettings  # noqa: E402
from services.reports.store import ReportsStore  # noqa: E402
from services.reports.web import pages  # noqa: E402
from services.reports.web.users import UsersStore, add_user  # noqa: E402

SAMPLED_TASKS = 20
TARGET_MS = 200  # per page, p99, at a whole term
PASSWORD = "bench-mat-khau-2025"


def page_paths(term: term_bench.Term, sampled: list[str]) -> dict[str, list[str]]:
    """The pages measured, by name: each a list of addresses cycled through."""
    unit = term.tasks[0].lead_unit
    middle = max(1, -(-sum(t.plan.programme == "05" for t in term.tasks) // 50) // 2)  # a page in the middle
    return {"overview": ["/ui/"], "programme": ["/ui/programmes/02", f"/ui/programmes/05?page={middle}"],
            "programme_filtered": ["/ui/programmes/03?overdue=1", "/ui/programmes/07?status=blocked"],
            "task": [f"/ui/tasks/{t}" for t in sampled], "unit": [f"/ui/units/{unit}"], "units": ["/ui/units?report=late"],
            "indicators": ["/ui/indicators"], "reports": ["/ui/reports"], "report": ["/ui/reports/2025-Q1"]}


async def file_sampled(db, term: term_bench.Term, count: int) -> list[str]:
    """File the status reports of `count` tasks under their task, as the consumer does."""
    chosen = [t for t in term.tasks if len(t.times) >= 10][:count]
    for task in chosen:
        changes = [c for c in task.timeline() if c.get("fact") is not None]
        await tasklog.record(db, [(c, c.get("old") is not None) for c in changes])
    return [t.task_id for t in chosen]


def web_app(db, settings: ReportsSettings) -> tuple[FastAPI, ReportsService]:
    """The web view's routes over this database, the state held in memory as by a sole replica."""
    runtime = Runtime("reports", settings, broker=None, db=db)
    holdings = Holdings()
    service = ReportsService(ReportsStore(db, holdings), Clock(fixed=term_bench.NOW))
    app = FastAPI()
    pages.mount(app, runtime, lambda rt: service, settings)
    return app, service


async def sign_in(client: httpx.AsyncClient, db) -> None:
    users = UsersStore(db)
    if await users.get("bench.office") is None:
        first = await add_user(users=users, name="bench.office", role="office", unit=None, approver=True, units=set())
        await _post(client, "/ui/login", name="bench.office", password=first)
        await _post(client, "/ui/password", current=first, new=PASSWORD, repeat=PASSWORD)


async def _post(client: httpx.AsyncClient, path: str, **fields) -> None:
    form = await client.get(path)
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)[1]
    answer = await client.post(path, data={"csrf": token, **fields})
    assert answer.status_code == 303, answer.text


async def measure(url: str, db_name: str, scale: float, seed: int, requests: int) -> dict:
    client = mongo.connect(url)
    try:
        db = client[db_name]
        term = term_bench.Term(scale, seed)
        sampled = await file_sampled(db, term, SAMPLED_TASKS)
        app, service = web_app(db, ReportsSettings(ui_secret="b" * 32))
        times: dict[str, list[float]] = {}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as web:
            await sign_in(web, db)
            started = time.perf_counter()
            first = await web.get("/ui/")
            cold = time.perf_counter() - started
            assert first.status_code == 200, first.text[:500]
            for _ in range(requests):
                started = time.perf_counter()
                kafka.dumps(await service.live_status())
                times.setdefault("raw: live status", []).append(time.perf_counter() - started)
            for name, paths in page_paths(term, sampled).items():
                for n in range(requests):
                    started = time.perf_counter()
                    answer = await web.get(paths[n % len(paths)])
                    times.setdefault(name, []).append(time.perf_counter() - started)
                    assert answer.status_code == 200, (paths[n % len(paths)], answer.status_code, answer.text[:300])
        return {"times": times, "cold_s": cold, "tasks": len(service.store.holdings.live.tasks)}
    finally:
        await client.close()


def report(result: dict, args) -> dict:
    baseline = harness.percentile(result["times"]["raw: live status"], 50) * 1000
    print(f"\nweb view pages over {result['tasks']:,} tasks (--scale {args.scale:g}), {args.requests} requests each; "
          f"the first request (state loaded into memory) took {result['cold_s']:.2f} s")
    print(harness.header())
    figures = {}
    for name, values in result["times"].items():
        ms = [v * 1000 for v in values]
        if name.startswith("raw"):
            print(harness.row(name, ms, unit="ms"))
            continue
        p99 = harness.percentile(ms, 99)
        print(harness.row(f"{name} (p99 {p99:,.0f} ms)", ms, unit="ms", baseline=baseline,
                          target=f"p99 < {TARGET_MS} ms", met=p99 < TARGET_MS))
        figures[f"webview_{name}_p50_ms"] = round(harness.percentile(ms, 50), 1)
        figures[f"webview_{name}_p99_ms"] = round(p99, 1)
    figures |= {"webview_raw_live_status_p50_ms": round(baseline, 1), "webview_cold_s": round(result["cold_s"], 2),
                "webview_tasks": result["tasks"],
                "webview_settings": {"scale": args.scale, "requests": args.requests, "seed": args.seed}}
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of a whole term (default 1.0)")
    parser.add_argument("--requests", type=int, default=30, help="requests per page (default 30)")
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args()
    if not 0 < args.scale <= 10 or args.requests < 1:
        parser.error("--scale must be in (0, 10] and --requests at least 1")
    url, server, workdir = os.environ.get("NQT_MONGO_URL"), None, None
    db_name = f"nqt_bench{secrets.token_hex(3)}_reports"
    try:
        if not url:
            workdir = Path(tempfile.mkdtemp(prefix="nqt-bench-webview-"))
            server = infra.start_ferretdb(workdir / "ferretdb", infra.free_port())
            url = f"mongodb://127.0.0.1:{server.port}"
        loader = multiprocessing.get_context("spawn").Process(target=term_bench._loader_main,
                                                              args=(url, db_name, args.scale, args.seed))
        loader.start()
        loader.join()
        if loader.exitcode != 0:
            print(f"loading failed (exit code {loader.exitcode})", file=sys.stderr)
            return 1
        figures = report(asyncio.run(measure(url, db_name, args.scale, args.seed, args.requests)), args)
        print(f"results merged into {harness.write_results(figures, script='webview')}")
        return 0
    finally:
        if server is not None:
            server.stop()
        else:
            asyncio.run(term_bench._drop(url, db_name))
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
