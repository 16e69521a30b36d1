"""Composition root of the programs service."""

from __future__ import annotations

from fastapi import FastAPI

from shared.kafka import make_broker
from shared.runtime import Job, Runtime, create_app

from services.programs import handlers
from services.programs.settings import ProgramsSettings
from services.programs.store import INDEXES


def build(settings: ProgramsSettings | None = None) -> FastAPI:
    settings = settings or ProgramsSettings()
    runtime = Runtime("programs", settings, make_broker(settings, service="programs"), INDEXES)
    ownership = handlers.register(runtime, settings.programs_group)
    # Between batches (it waits for the one in hand), over the programmes this replica holds.
    sweep = Job("sweeping held updates", settings.programs_sweep_seconds,
                lambda rt: handlers.sweep_held(rt, ownership))
    return create_app(runtime, title="nq-tracker programs", jobs=(sweep,))
