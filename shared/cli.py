"""`nqt`: the operator's command line."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from faststream.kafka import KafkaBroker

from shared import accepted, kafka
from shared.events import InvalidEvent
from shared.registry import load_events
from shared.settings import CommonSettings

app = typer.Typer(help="nq-tracker operator commands. Settings come from NQT_* variables.", no_args_is_help=True)
registry_app = typer.Typer(help="Reference data: units, programmes, indicators.", no_args_is_help=True)
app.add_typer(registry_app, name="registry")


@registry_app.command("load")
def registry_load(file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True)) -> None:
    """Validate FILE and publish every entry as a registry event (unchanged entries change nothing)."""
    try:
        events = load_events(file)
    except InvalidEvent as err:
        for problem in err.problems:
            typer.echo(f"{file}:{problem.pointer}: {problem.message}", err=True)
        raise typer.Exit(2) from err
    settings = CommonSettings()
    asyncio.run(_publish(settings, events))
    counts = {}
    for event in events:
        counts[event.type] = counts.get(event.type, 0) + 1
    typer.echo(f"published {len(events)} registry events to {settings.topics.accepted}: "
               + ", ".join(f"{n} {t.split('.')[1]}" for t, n in counts.items()))


async def _publish(settings: CommonSettings, events) -> None:
    await kafka.ensure_topics(settings)
    broker = KafkaBroker(settings.kafka_bootstrap, enable_idempotence=True, acks="all", client_id="nqt-cli")
    await broker.connect()
    try:
        await accepted.publish(broker, settings.topics.accepted, events)
    finally:
        await broker.stop()


if __name__ == "__main__":
    app()
