"""NQT_HEAP_PROFILE_DIR: a service writes where its peak memory came from, phase by phase."""

from __future__ import annotations

import json

from shared import heap


def test_each_phase_records_the_peak_it_reached_even_inside_another(tmp_path):
    heap.configure(tmp_path, service="reports")
    try:
        with heap.phase("batch.apply"):
            with heap.phase("statelog.fold"):
                held = bytearray(40 * 2**20)  # touched: resident, 40 MB
                del held
            with heap.phase("reports.timeline"):
                pass  # after the fold: its peak no longer counts here, but still in batch.apply
    finally:
        heap.configure(None, service="reports")
    written = json.loads(next(tmp_path.glob("reports-*.json")).read_text())
    phases = written["phases"]
    assert phases["statelog.fold"]["rise_mb"] >= 35
    assert phases["batch.apply"]["rise_mb"] >= 35  # the inner phase's peak is the outer one's too
    assert phases["reports.timeline"]["rise_mb"] < 35
    assert written["peak_mb"] >= phases["statelog.fold"]["rss_before_mb"] + 35


def test_nothing_is_recorded_unless_asked(tmp_path):
    heap.configure(None, service="reports")
    with heap.phase("batch.apply"):
        pass
    assert not list(tmp_path.iterdir())


async def test_a_phase_of_another_task_meanwhile_does_not_take_the_peak(tmp_path):
    import asyncio

    heap.configure(tmp_path, service="reports")
    job_started, batch_done = asyncio.Event(), asyncio.Event()

    async def batch():
        with heap.phase("batch.apply"):
            held = bytearray(40 * 2**20)
            del held
            await job_started.wait()
        batch_done.set()

    async def job():  # begins during the batch's phase and ends after it
        with heap.phase("job: the live status"):
            job_started.set()
            await batch_done.wait()

    try:
        await asyncio.gather(batch(), job())
    finally:
        heap.configure(None, service="reports")
    phases = json.loads(next(tmp_path.glob("reports-*.json")).read_text())["phases"]
    assert phases["batch.apply"]["rise_mb"] >= 35
    assert phases["job: the live status"]["rise_mb"] < 35
