"""Only so many PDF/DOCX renders run at once: a request that finds no slot within the wait gets a
503, the scheduler's renders wait their turn, and a slot is held until its render is done."""

from __future__ import annotations

import asyncio
import threading

import pytest

from shared.problems import Problem
from tests import kafkatools

from services.reports import handlers


@pytest.fixture
def blocking(monkeypatch):
    """Renders that finish only once the returned event is set (they run in worker threads)."""
    release = threading.Event()

    def rendered(report: dict, fmt: str) -> bytes:
        release.wait(30)
        return f"{fmt} of {report['cycle']}".encode()
    monkeypatch.setattr(handlers, "rendered", rendered)
    yield release
    release.set()


async def held(renderer: handlers.Renderer) -> bool:
    return renderer.slots.locked()


async def test_a_request_finding_every_slot_taken_gets_503_and_the_scheduler_waits(blocking):
    renderer = handlers.Renderer(1, wait_s=0)
    first = asyncio.create_task(renderer.render({"cycle": "2021-Q1"}, "pdf"))
    await kafkatools.eventually(lambda: held(renderer))
    with pytest.raises(Problem) as refused:
        await renderer.render({"cycle": "2021-Q1"}, "docx")
    scheduled = asyncio.create_task(renderer.render({"cycle": "2021-Q2"}, "pdf", patient=True))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not scheduled.done()                       # waiting its turn, not refused
    blocking.set()
    assert await first == b"pdf of 2021-Q1" and await scheduled == b"pdf of 2021-Q2"
    assert refused.value.status == 503 and int(refused.value.headers["Retry-After"]) > 0


async def test_a_render_whose_caller_gave_up_keeps_its_slot_until_it_is_done(blocking):
    renderer = handlers.Renderer(1, wait_s=0)
    abandoned = asyncio.create_task(renderer.render({"cycle": "2021-Q1"}, "pdf"))
    await kafkatools.eventually(lambda: held(renderer))
    abandoned.cancel()                                # the client went away; the thread still renders
    with pytest.raises(Problem):
        await renderer.render({"cycle": "2021-Q1"}, "pdf")
    blocking.set()
    await kafkatools.eventually(lambda: held(renderer), lambda locked: not locked, timeout=10)
    assert await renderer.render({"cycle": "2021-Q1"}, "pdf") == b"pdf of 2021-Q1"


async def test_html_and_json_are_not_held_back(blocking):
    renderer = handlers.Renderer(1, wait_s=0)
    heavy = asyncio.create_task(renderer.render({"cycle": "2021-Q1"}, "pdf"))
    await kafkatools.eventually(lambda: held(renderer))
    light = asyncio.create_task(renderer.render({"cycle": "2021-Q1"}, "html"))  # no slot needed: no 503
    blocking.set()
    assert await light == b"html of 2021-Q1" and await heavy == b"pdf of 2021-Q1"
