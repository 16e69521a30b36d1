"""How a fault scenario runs: the deployment under a steady load, faults injected while
the load goes on, the time from the last fault until the system has caught up, then the
check of the whole history. Each scenario is bounded (the load is finite, every wait has
a deadline) and stops by itself."""

from __future__ import annotations

import asyncio
import inspect
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Awaitable, Callable

from shared import mongo
from tests.faults import checker, harness
from tests.faults.harness import Deployment
from tests.faults.load import Load, stream

RESULTS: list[dict] = []  # one row per scenario run, printed at the end of the session


@dataclass(frozen=True)
class Intensity:
    name: str
    rate: float        # events per second, for as long as the faults go on
    faults: int        # faults of the scenario's kind (rounds, for the proxies, poison and rebalance)
    pause: tuple[float, float]  # seconds between faults, drawn at random
    outage_s: float    # how long a blackhole lasts / a server stays down
    capacity: int = 3000  # events generated; the load stops soon after the last fault


SHORT = Intensity("short", rate=6.0, faults=1, pause=(0.5, 1.5), outage_s=2.0)
LONG = Intensity("long", rate=10.0, faults=4, pause=(2.0, 5.0), outage_s=8.0)
TAIL_S = 2.0  # the load goes on this long after the last fault
PROOF_DEADLINE_S = 300.0  # faults go on at most this long until one is seen to redeliver something
QUIET_WITHIN_S = 120.0    # the load paused, consumers catch up within this (else the look is a lower bound)


def intensity() -> Intensity:
    return LONG if os.environ.get("NQT_FAULTS", "short") == "long" else SHORT


@dataclass
class Run:
    """One scenario in progress: what it injected and saw."""

    name: str
    deployment: Deployment
    load: Load
    intensity: Intensity
    rng: random.Random
    faults: int = 0
    extra_redeliveries: dict[str, int] = field(default_factory=dict)  # seen by the scenario itself
    notes: dict = field(default_factory=dict)
    recovering: asyncio.Task | None = None  # times the recovery from the end of the latest fault

    def fault_done(self) -> None:
        """A fault was injected; the system may recover from now on."""
        self.faults += 1
        self.fault_over()

    def fault_over(self) -> None:
        """The latest fault is over (a server is back): time the recovery from now, in the
        background, so that the wait for a fault's redelivery to show is no recovery time."""
        if self.recovering is not None:
            self.recovering.cancel()
        self.recovering = asyncio.create_task(recovery(self.deployment, self.load, time.monotonic()))

    async def pause(self) -> None:
        await asyncio.sleep(self.rng.uniform(*self.intensity.pause))

    async def prove(self, fault: Inject, redelivered: Probe, *, what: str,
                    deadline_s: float = PROOF_DEADLINE_S) -> None:
        """Inject `fault` again until `redelivered()` counts what this scenario must show was
        delivered again, so that no run passes or fails on whether a fault happened to cut
        into work in hand. Fails, saying so, if a generous deadline passes without it."""
        deadline, extra = time.monotonic() + deadline_s, 0
        while not await self.look_quietly(redelivered):
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: no {what} after {self.faults} faults in {deadline_s:.0f} s, "
                                     f"so the faults proved nothing; {self.notes}")
            await fault(self)
            extra += 1
        self.notes["faults_until_redelivered"] = extra

    async def look_quietly(self, probe: Probe) -> float:
        """`probe()` now, and if it sees nothing, once the system is quiet: the recovery from
        the latest fault timed, the load paused and every consumer caught up, so that no
        backlog still unread hides a record read twice (records received beyond what the
        topics hold)."""
        if seen := await poll(probe, 0):
            return seen
        if self.recovering is not None:
            await asyncio.wait({self.recovering})
        self.load.pause()
        try:
            self.notes.setdefault("quiet", []).append(bool(await poll(lambda: caught_up(self.deployment),
                                                                      QUIET_WITHIN_S)))
            return await poll(probe, 0)
        finally:
            self.load.resume()


Inject = Callable[[Run], Awaitable[None]]
Probe = Callable[[], Awaitable[float] | float]


async def poll(probe: Probe, timeout: float, every: float = 0.5) -> float:
    """The first non-zero value of `probe` within `timeout` seconds, else 0. A probe that
    fails (a broker or database still coming back) counts as 0."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = probe()
            value = await value if inspect.isawaitable(value) else value
        except Exception:
            value = 0
        if value or time.monotonic() >= deadline:
            return value
        await asyncio.sleep(every)


async def caught_up(deployment: Deployment) -> bool:
    """Every consumer group has committed all its topics hold now."""
    offsets = checker.Offsets(deployment.kafka)
    return not await offsets.lag(deployment, await offsets.ends([t for _, t in deployment.groups()]))


async def behind(deployment: Deployment, keys: set[str], ends) -> str | None:
    """What is not caught up yet (None: nothing): keys in `keys` without their final status
    at ingest, unless held by programs until their plan comes (whether they should be is
    for the check to say), and consumer groups that have not committed what their topics
    held at `ends`."""
    client = mongo.connect(deployment.mongo)
    try:
        decided = {d["_id"] async for d in client[f"{deployment.prefix}_ingest"].events.find(
            {"_id": {"$in": sorted(keys)}, "status": {"$in": list(checker.FINAL)}}, {"_id": 1})}
        waiting = {d["_id"] async for d in client[f"{deployment.prefix}_programs"].held.find({}, {"_id": 1})}
    finally:
        await client.close()
    undecided = keys - decided - waiting
    if undecided:
        return f"{len(undecided)} undecided, e.g. {sorted(undecided)[:5]}"
    lag = await checker.Offsets(deployment.kafka).lag(deployment, ends)
    return f"consumer lag {lag}" if lag else None


async def recovery(deployment: Deployment, load: Load, since: float, timeout: float = 150) -> float | None:
    """Seconds from `since` (the end of the last fault) until everything acknowledged by
    then is decided and every consumer caught up with what its topics held then."""
    keys = set(load.accepted)
    ends = await _retrying(lambda: checker.Offsets(deployment.kafka).ends([t for _, t in deployment.groups()]))
    deadline, why = time.monotonic() + timeout, "?"
    while time.monotonic() < deadline:
        try:
            why = await behind(deployment, keys, ends)
            if why is None:
                return time.monotonic() - since
        except Exception as err:  # a broker or database still coming back: look again
            why = repr(err)
        await asyncio.sleep(0.5)
    print(f"not caught up {timeout:.0f}s after the last fault: {why}")
    return None  # the check that follows says what is missing


async def _retrying(fetch, attempts: int = 30):
    for attempt in range(attempts):
        try:
            return await fetch()
        except Exception:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(1)


async def run(name: str, inject: Inject, *, kafka: str, mongo_url: str, prefix: str, logs: Path,
              replicas: dict[str, int] | None = None, service_kafka: dict[str, str] | None = None,
              service_mongo: str | dict[str, str] | None = None, extra: dict[str, str] | None = None,
              seed: int | None = None, verify: Inject | None = None) -> dict:
    """Run scenario `name`: returns its row (and keeps it for the summary) after asserting
    that faults were injected, something was redelivered, nothing lost, nothing doubled."""
    level = intensity()
    seed = seed if seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    started = time.monotonic()
    async with harness.deployed(kafka=kafka, mongo=mongo_url, prefix=prefix, logs=logs, replicas=replicas,
                                service_kafka=service_kafka, service_mongo=service_mongo, extra=extra) as deployment:
        sends = stream(prefix, level.capacity // 10, level.capacity - level.capacity // 10, seed)
        load = Load(deployment, sends, rate=level.rate)
        current = Run(name, deployment, load, level, rng)
        sending = asyncio.create_task(load.run())
        try:
            await asyncio.sleep(1.0)
            await inject(current)
            assert current.recovering is not None, "the scenario injected no fault"
            await asyncio.sleep(TAIL_S)
            load.stop()
            await sending
            recovery_s = await current.recovering
        finally:
            for task in (sending, current.recovering):
                if task is not None:
                    task.cancel()
        verdict = await _settled(deployment, load)
        if verify is not None:  # what only this scenario can check, while the deployment is up
            await verify(current)
        verdict.redeliveries["retried"] = load.retried
        counted = {k: v for k, v in verdict.redeliveries.items() if k != "resent"}  # resent: retries that landed twice
        row = {"scenario": name, "events": len(load.accepted), "faults": current.faults,
               "redeliveries": sum(counted.values()) + sum(current.extra_redeliveries.values()),
               "lost": len(verdict.lost), "doubled": len(verdict.doubled),
               "recovery_s": None if recovery_s is None else round(recovery_s, 1)}
        detail = {**verdict.redeliveries, **current.extra_redeliveries, **verdict.facts, **current.notes,
                  "failures": dict(load.failures), "seed": seed, "level": level.name,
                  "wall_s": round(time.monotonic() - started, 1)}
        RESULTS.append({**row, "detail": detail})
        print(f"\n[{name}] {row} {detail}\n{verdict.summary()}")
        assert verdict.ok, verdict.summary()
        assert recovery_s is not None, "the system did not catch up after the last fault"
        assert current.faults > 0, "no fault was injected"
        # A fault proves something when records met it and were read, sent or tried again; a poison
        # record refused at the door is tried once, and its proof is its dead letter (checked by the scenario).
        assert row["redeliveries"] > 0 or current.notes.get("dead_letters", 0) > 0, \
            f"nothing was redelivered or dead-lettered, so the faults proved nothing: {detail}"
        return row


async def _settled(deployment: Deployment, load: Load, timeout: float = 45) -> checker.Verdict:
    """The verdict once every consumer group has committed all its topics hold (the load
    has stopped; a backlog after the faults may take minutes on a busy machine) and the
    history stops changing for the better (notices retried in the background may arrive
    after the consumers caught up), or the last one at the deadline."""
    await poll(lambda: caught_up(deployment), 300, every=1)
    deadline = time.monotonic() + timeout
    while True:
        verdict = await checker.check(deployment, load)
        if verdict.ok or time.monotonic() > deadline:
            return verdict
        await asyncio.sleep(2)
