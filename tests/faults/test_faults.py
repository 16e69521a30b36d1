"""Fault injection: under a steady load of mixed events, break one thing on purpose, many
times, and hold the history to the promise: every acknowledged event decided once, every
rejection told once by identity, the state and counters as the reference model has them.

Short versions run in `make test`; `make faults` runs the long ones (NQT_FAULTS=long),
prints the summary table and writes out/faults.json."""

from __future__ import annotations

import signal

import pytest

from deploy.local import infra
from tests.faults import scenarios
from tests.faults.harness import Broker, Mongo
from tests.faults.scenarios import Run

pytestmark = pytest.mark.faults


def kill(service: str):
    """kill -9 of `service` at random moments, each time while it has a record (or, for
    ingest, a request) in hand, then started again; more kills (a few at most) while none
    has yet cut into a record, so that the scenario is sure to have redelivered something."""
    async def inject(run: Run) -> None:
        kills, seen = 0, 0
        while kills < run.intensity.faults or (seen == 0 and kills < run.intensity.faults + 4):
            await run.pause()
            if service == "ingest":
                busy = await _until(lambda: run.load.in_flight > 0, 3)
            else:
                busy = await run.deployment.wait_busy(service)
            await run.deployment.stop(service, 0, signal.SIGKILL)
            kills += 1
            run.fault_done()
            seen = await run.rereads(service) + (run.load.retries if service == "ingest" else 0)
            run.notes.setdefault("killed_busy", []).append(busy)
            await run.deployment.start(service, 0)
            run.last_fault_end = _now()
    return inject


@pytest.mark.parametrize("service", ["programs", "reports", "notify", "ingest"])
async def test_kill_service(infra_stack, tmp_path, service):
    await scenarios.run(f"kill-{service}", kill(service), kafka=infra_stack.kafka, mongo_url=infra_stack.mongo,
                        prefix=f"{infra_stack.prefix}k{service[:3]}", logs=tmp_path)


async def _until(condition, timeout: float) -> bool:
    import asyncio
    deadline = _now() + timeout
    while _now() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.005)
    return False


def _now() -> float:
    import time
    return time.monotonic()
