"""`nqt`: the operator's command line."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import typer
from aiokafka import AIOKafkaConsumer
from faststream.kafka import KafkaBroker

from shared import accepted, kafka
from nqt.dlq import dlq_app
from nqt.imports import import_command
from nqt.keys import keys_app
from nqt.replay import replay_command
from nqt.reports import reports_app
from nqt.users import users_app
from shared.events import InvalidEvent
from shared.registry import load_events
from shared.settings import CommonSettings

app = typer.Typer(help="nq-tracker operator commands. Settings come from NQT_* variables.", no_args_is_help=True)
registry_app = typer.Typer(help="Reference data: units, programmes, indicators.", no_args_is_help=True)
app.add_typer(registry_app, name="registry")
app.add_typer(keys_app, name="keys")
app.add_typer(dlq_app, name="dlq")
app.add_typer(reports_app, name="reports")
app.add_typer(users_app, name="users")
app.command("replay")(replay_command)
app.command("import")(import_command)


@registry_app.command("load")
def registry_load(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True),
    wait: float = typer.Option(120.0, help="Seconds to wait for the programs service to apply every entry; 0: don't."),
) -> None:
    """Validate FILE and publish every entry as a registry event (unchanged entries change nothing)."""
    try:
        events = load_events(file)
    except InvalidEvent as err:
        for problem in err.problems:
            typer.echo(f"{file}:{problem.pointer}: {problem.message}", err=True)
        raise typer.Exit(2) from err
    settings = CommonSettings()
    counts = Counter(event.type.split(".")[1] for event in events)
    typer.echo(f"publishing {len(events)} registry events: " + ", ".join(f"{n} {t}" for t, n in counts.items()))
    outcomes = asyncio.run(_publish(settings, events, wait))
    if wait:
        summary = Counter(o["outcome"] for o in outcomes.values())
        typer.echo("programs service: " + ", ".join(f"{n} {o}" for o, n in sorted(summary.items())))
        for outcome in outcomes.values():
            if outcome["outcome"] == "rejected":
                typer.echo(f"  rejected {outcome['id']}: {outcome['code']}: {outcome['message_en']}", err=True)
        missing = len(events) - len(outcomes)
        if missing:
            typer.echo(f"{missing} entries not applied within {wait:.0f}s: is the programs service running?", err=True)
        if missing or summary.get("rejected"):
            raise typer.Exit(1)


async def _publish(settings: CommonSettings, events, wait: float) -> dict[str, dict]:
    """Publish, then (if `wait`) collect the outcome of each event from `programs.outcomes`."""
    await kafka.ensure_topics(settings)
    consumer = AIOKafkaConsumer(settings.topics.outcomes, **kafka.client_options(settings),
                                group_id=None, enable_auto_commit=False, auto_offset_reset="latest")
    await consumer.start()
    broker = KafkaBroker(settings.kafka_bootstrap, security=kafka.broker_security(settings),
                         enable_idempotence=True, acks="all", client_id="nqt-cli")
    await broker.connect()
    outcomes: dict[str, dict] = {}
    try:
        await consumer.seek_to_end()
        for partition in consumer.assignment():  # resolve "latest" now, before publishing
            await consumer.position(partition)
        await accepted.publish(broker, settings.topics.accepted, events)
        keys = {event.key for event in events}
        deadline = time.monotonic() + wait
        while wait and len(outcomes) < len(keys) and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    outcome = kafka.loads(record.value)
                    if outcome.get("event_key") in keys:
                        outcomes[outcome["event_key"]] = outcome
    finally:
        await broker.stop()
        await consumer.stop()
    return outcomes


if __name__ == "__main__":
    app()
