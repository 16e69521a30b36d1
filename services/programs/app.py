"""Composition root of the programs service."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import FastAPI

from shared.kafka import make_broker
from shared.runtime import Runtime, create_app

from services.programs import handlers
from services.programs.settings import ProgramsSettings
from services.programs.store import INDEXES


def build(settings: ProgramsSettings | None = None) -> FastAPI:
    settings = settings or ProgramsSettings()
    runtime = Runtime("programs", settings, make_broker(settings, service="programs"), INDEXES)
    handlers.register(runtime, settings.programs_group)
    sweeper: list[asyncio.Task] = []

    async def start(runtime: Runtime) -> None:
        sweeper.append(asyncio.create_task(handlers.sweep_held_forever(runtime)))

    async def stop(runtime: Runtime) -> None:
        for task in sweeper:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return create_app(runtime, title="nq-tracker programs", on_start=start, on_stop=stop)
