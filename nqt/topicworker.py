"""One topic of a replay in a process of its own.

The topics that hold the history are independent of each other in a replay (each service's
database is rebuilt from the topics it consumes, and no two topics feed each other here), so
each is read and applied by a process of its own: the services' batch code is Python, bound to
one core per process, and a whole term's events and changes would otherwise share one. Each
process reads its topic up to the end offsets the replay took before any database was touched,
and tells the replay its progress, how it ended, and what it skipped, over a queue."""

from __future__ import annotations

import asyncio
import multiprocessing
import queue as queues
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from nqt.logreader import LogReader
from nqt.progress import Meter
from services.programs.settings import ProgramsSettings
from shared import collector, consumer, mongo

OUTAGE_RETRIES = 8  # a batch met by an outage is applied again (every write is idempotent), this often
POLL_S = 1.0        # how often the replay looks at its processes while none says anything


class ReplayFailed(RuntimeError):
    pass


@dataclass
class Job:
    """What a process rebuilds: `services` (into `databases`, by service) from `topic`, up to `ends`."""
    settings: ProgramsSettings
    topic: str
    services: list[str]
    databases: dict[str, str]
    ends: dict[int, int]
    batch: int
    started: datetime  # when the replay began: the clock of the held updates' last sweep


async def _apply(apply, records: list) -> None:
    """Apply a batch; an outage is waited out and the batch applied again, a few times."""
    backoff = consumer.Backoff()
    for attempt in range(1, OUTAGE_RETRIES + 1):
        try:
            return await apply(records)
        except Exception as exc:
            if not consumer.is_transient(exc) or attempt == OUTAGE_RETRIES:
                raise
            await asyncio.sleep(backoff.next("replay"))


async def _work(job: Job, said: multiprocessing.Queue) -> Counter:
    from nqt.rebuild import Skipped, appliers  # the services' code: seconds of imports

    collector.for_batches()  # a whole term's state kept: a third of the CPU went to collections
    client, skipped = mongo.connect(job.settings.mongo_url), Skipped()
    try:
        mine = [applier for service in job.services
                for applier in appliers(service, client[job.databases[service]], job.settings.topics, skipped,
                                        hold_seconds=job.settings.programs_hold_seconds, started=job.started)
                if applier.topic == job.topic]
        async with LogReader(job.settings, job.topic, ends=job.ends) as log:
            async for records in log.batches(job.batch):
                for applier in mine:
                    await _apply(applier.apply, records)
                said.put(("read", job.topic, len(records)))
        for applier in mine:
            if applier.finish is not None:
                await applier.finish()
        return skipped.counts
    finally:
        await client.close()


def work(job: Job, said: multiprocessing.Queue) -> None:
    """The process's entry."""
    try:
        skipped = asyncio.run(_work(job, said))
    except BaseException as exc:  # said, and the process ends: the replay stops
        said.put(("failed", job.topic, f"{type(exc).__name__}: {exc}"))
        sys.exit(1)
    said.put(("done", job.topic, dict(skipped)))


async def run(jobs: list[Job], shown: dict[str, Meter]) -> tuple[dict[str, int], Counter]:
    """Every job in a process of its own, `shown` advanced as they read: (records read per
    topic, records skipped per topic). The first that fails stops the others."""
    context = multiprocessing.get_context("spawn")  # the services' loops and clients are not forked
    said = context.Queue()
    processes = {job.topic: context.Process(target=work, args=(job, said), name=f"nqt replay {job.topic}",
                                            daemon=True) for job in jobs}
    read, skipped, finished = Counter(), Counter(), set()
    for process in processes.values():
        process.start()
    try:
        while len(finished) < len(processes):
            try:
                what, topic, value = await asyncio.to_thread(said.get, True, POLL_S)
            except queues.Empty:
                for topic, process in processes.items():
                    if topic not in finished and process.exitcode is not None:
                        raise ReplayFailed(f"the replay of {topic} stopped (exit code {process.exitcode})")
                continue
            if what == "read":
                read[topic] += value
                shown[topic].advance(value)
            elif what == "done":
                finished.add(topic)
                skipped.update(value)
            else:
                raise ReplayFailed(f"the replay of {topic} failed: {value}")
        return {job.topic: read[job.topic] for job in jobs}, skipped
    finally:
        for process in processes.values():
            if process.is_alive():
                process.terminate()
            process.join()
