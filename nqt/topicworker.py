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
from typing import Callable

from nqt.logreader import LogReader
from nqt.progress import Meter
from services.programs.settings import ProgramsSettings
from shared import consumer, mongo

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


async def _apply(applier, skipped, items: list) -> None:
    """Apply a batch read; an outage is waited out and the batch applied again, a few times."""
    backoff = consumer.Backoff()
    for attempt in range(1, OUTAGE_RETRIES + 1):
        try:
            return await consumer.apply_read(skipped, items, apply=applier.apply, decide=applier.decide)
        except Exception as exc:
            if not consumer.is_transient(exc) or attempt == OUTAGE_RETRIES:
                raise
            await asyncio.sleep(backoff.next("replay"))


async def _read_ahead(log, size: int, mine: list, skipped, ready: asyncio.Queue) -> None:
    """Read and decode the batches into `ready`; ends with None, or the error that stopped it."""
    try:
        async for records in log.batches(size):
            await ready.put((len(records), [await consumer.read_batch(skipped, records, read=applier.read)
                                            for applier in mine]))
        await ready.put(None)
    except BaseException as exc:
        await ready.put(exc)
        raise


async def apply_log(log, size: int, mine: list, skipped, advanced: Callable[[int], None]) -> None:
    """Every batch of `log` read and applied by each of `mine`, in order; `advanced` told the
    records of each batch applied. The next batch is read and decoded while this one is applied:
    reading is a fifth of the work, and applying waits on the database a third of its time."""
    ready: asyncio.Queue = asyncio.Queue(maxsize=1)
    reader = asyncio.create_task(_read_ahead(log, size, mine, skipped, ready))
    try:
        while (got := await ready.get()) is not None:
            if isinstance(got, BaseException):
                raise got
            count, read = got
            for applier, items in zip(mine, read):
                await _apply(applier, skipped, items)
            advanced(count)
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)


async def _work(job: Job, said: multiprocessing.Queue) -> Counter:
    from nqt.rebuild import Skipped, appliers  # the services' code: seconds of imports

    client, skipped = mongo.connect(job.settings.mongo_url), Skipped()
    try:
        mine = [applier for service in job.services
                for applier in appliers(service, client[job.databases[service]], job.settings.topics, skipped,
                                        hold_seconds=job.settings.programs_hold_seconds, started=job.started)
                if applier.topic == job.topic]
        async with LogReader(job.settings, job.topic, ends=job.ends) as log:
            await apply_log(log, job.batch, mine, skipped, lambda n: said.put(("read", job.topic, n)))
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
