"""The replay's progress where no terminal shows a bar (a log, a CI job): plain lines per topic
with records done of the total, records per second, the lag and the time left; and a topic whose
process fails stops the replay with the cause."""

from __future__ import annotations

import asyncio
import io
from datetime import datetime, timezone

import pytest
from rich.console import Console

from nqt import topicworker
from nqt.progress import Meters, meters
from services.programs.settings import ProgramsSettings


def plain() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=False, soft_wrap=True), out


async def test_a_finished_topic_says_so_in_one_line():
    console, out = plain()
    async with meters(console) as shown:
        meter = shown.meter("events.accepted", 12_000)
        meter.advance(5_000)
        assert out.getvalue() == ""  # unfinished topics are told on the clock, not per batch
        meter.advance(7_000)
    [line] = out.getvalue().splitlines()
    assert line.startswith("events.accepted: 12,000/12,000 records, ") and line.endswith("/s, lag 0, ETA done")


async def test_unfinished_topics_are_told_every_few_seconds():
    console, out = plain()
    shown = Meters(console)
    shown.meter("events.accepted", 10_000).advance(2_500)
    shown.meter("programs.changes", 4).advance(4)
    out.seek(0)
    out.truncate()
    ticking = asyncio.create_task(shown.every(0.01))
    deadline = asyncio.get_running_loop().time() + 10
    while "events.accepted" not in out.getvalue() and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)
    ticking.cancel()
    line = out.getvalue().splitlines()[0]
    assert line.startswith("events.accepted: 2,500/10,000 records, ") and ", lag 7,500, ETA " in line
    assert "programs.changes" not in out.getvalue()  # done: not repeated


async def test_a_topic_whose_process_fails_stops_the_replay_with_its_cause():
    console, _ = plain()
    settings = ProgramsSettings(mongo_url="mongodb://127.0.0.1:9", kafka_bootstrap="127.0.0.1:9")
    job = topicworker.Job(settings, "events.accepted", ["billing"], {"billing": "nqt_billing"}, {0: 0}, 10,
                          datetime.now(timezone.utc))
    async with meters(console) as shown:
        with pytest.raises(topicworker.ReplayFailed, match="events.accepted failed: ValueError: no service 'billing'"):
            await topicworker.run([job], {job.topic: shown.meter(job.topic, 1)})
