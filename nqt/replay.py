"""`nqt replay`: rebuild the services' state from the Kafka log.

Each topic that holds the history is read once, from its first offset up to the end offsets
taken when the replay starts (`nqt.logreader`: no consumer group, nothing committed), and
every batch goes through the batch code of each service that consumes the topic
(`nqt.rebuild`), each topic in a process of its own (`nqt.topicworker`), into fresh databases: `<prefix>_<database>` beside the live ones, or the
live ones themselves (`--into-live`) when they are empty, as after a lost database. Nothing
is published and nothing is sent. Afterwards a fingerprint of each service's state
(`nqt.fingerprint`) is printed, and with `--compare` set against the live databases'."""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter, defaultdict
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from nqt.fingerprint import SERVICES, Difference, ServicePrint, fingerprint, first_difference
from nqt import topicworker
from nqt.progress import meters
from services.programs.settings import ProgramsSettings
from shared import mongo

PREFIX = re.compile(r"^[A-Za-z0-9_]+$")


@dataclass
class Replayed:
    records: dict[str, int]             # topic -> records read
    skipped: Counter                    # topic -> records the live services dead-lettered
    seconds: float                      # reading and applying, fingerprints not included
    prints: dict[str, ServicePrint]     # service -> the fingerprint of its rebuilt state
    live: dict[str, ServicePrint] = field(default_factory=dict)  # with --compare
    differences: dict[str, Difference | None] = field(default_factory=dict)  # with --compare

    @property
    def events(self) -> int:
        return sum(self.records.values())

    @property
    def identical(self) -> bool:
        return all(self.live[s].digest == self.prints[s].digest for s in self.live)


def database_name(settings: ProgramsSettings, service: str, prefix: str, into_live: bool) -> str:
    live = settings.database(service)
    return live if into_live else f"{prefix}_{live}"


def check_options(services: list[str], prefix: str, *, into_live: bool, replace: bool, compare: bool) -> None:
    """Bad options are refused before anything is read or written."""
    unknown = [s for s in services if s not in SERVICES]
    if unknown or not services:
        raise typer.BadParameter(f"unknown service(s) {', '.join(unknown) or '(none given)'}; "
                                 f"choose among {','.join(SERVICES)}", param_hint="--services")
    if not PREFIX.match(prefix):
        raise typer.BadParameter("letters, digits and _ only", param_hint="--prefix")
    if into_live and compare:
        raise typer.BadParameter("--compare sets a replay beside the live databases against them; "
                                 "with --into-live there is nothing beside them", param_hint="--compare")
    if into_live and replace:
        raise typer.BadParameter("--replace drops the replay's own databases, never live ones",
                                 param_hint="--replace")


async def _holds_data(db) -> bool:
    for name in await db.list_collection_names():
        if await db[name].find_one({}, {"_id": 1}) is not None:
            return True
    return False


async def _prepare(dbs: dict, indexes: dict, *, into_live: bool, replace: bool) -> None:
    """Every target database empty (a replay's own one dropped first with `replace`), then indexed."""
    for service, db in dbs.items():
        if await _holds_data(db):
            if into_live:
                raise typer.BadParameter(f"{db.name} holds data: --into-live rebuilds only a lost (empty) "
                                         "database; stop the service and drop it first", param_hint="--into-live")
            if not replace:
                raise typer.BadParameter(f"{db.name} holds an earlier replay; --replace drops it first",
                                         param_hint="--prefix")
            await db.client.drop_database(db.name)
    for service, db in dbs.items():
        await mongo.ensure_indexes(db, indexes[service])


async def _rebuild(settings: ProgramsSettings, plan: dict[str, list[str]], databases: dict[str, str], prepare,
                   console: Console, batch: int, started: datetime) -> tuple[dict[str, int], Counter, float]:
    """Read every topic of `plan` (topic -> the services rebuilt from it) up to the end offsets it has
    now and apply it, each topic in a process of its own: (records per topic, skipped per topic,
    seconds). Every end offset is taken (and every topic found) before `prepare` touches a database."""
    from nqt.logreader import LogReader

    async with AsyncExitStack() as stack:
        logs = {t: await stack.enter_async_context(LogReader(settings, t)) for t in plan}
    for topic, log in logs.items():
        if log.lost:
            console.print(f"warning: the first {log.lost:,} records of {topic} are gone (deleted by "
                          "retention): the rebuilt state lacks what they said", style="bold red")
    await prepare()
    jobs = [topicworker.Job(settings, topic, services, {s: databases[s] for s in services},
                            logs[topic].ends_by_partition, batch, started) for topic, services in plan.items()]
    began = time.perf_counter()
    async with meters(console) as shown:
        records, skipped = await topicworker.run(jobs, {t: shown.meter(t, logs[t].total) for t in plan})
    return records, skipped, time.perf_counter() - began


async def replay(settings: ProgramsSettings, *, services: list[str], prefix: str = "replay",
                 into_live: bool = False, replace: bool = False, compare: bool = False, batch: int = 5000,
                 console: Console | None = None) -> Replayed:
    """Rebuild `services` from the log into fresh databases; fingerprint them (and the live ones)."""
    check_options(services, prefix, into_live=into_live, replace=replace, compare=compare)
    # Imported here: the services' code is seconds of imports the other `nqt` commands need not pay.
    from nqt.rebuild import INDEXES, Skipped, appliers

    console = console or Console(soft_wrap=True)
    client = mongo.connect(settings.mongo_url)
    try:
        dbs = {s: client[database_name(settings, s, prefix, into_live)] for s in services}
        started = datetime.now(timezone.utc)
        plan: dict[str, list[str]] = defaultdict(list)  # topic -> the services rebuilt from it
        for service in services:
            for applier in appliers(service, dbs[service], settings.topics, Skipped(),
                                    hold_seconds=settings.programs_hold_seconds, started=started):
                plan[applier.topic].append(service)
        records, skipped, seconds = await _rebuild(
            settings, plan, {s: db.name for s, db in dbs.items()},
            lambda: _prepare(dbs, INDEXES, into_live=into_live, replace=replace), console, batch, started)
        result = Replayed(records, skipped, seconds, {s: await fingerprint(dbs[s], s) for s in services})
        if compare:
            live = {s: client[settings.database(s)] for s in services}
            result.live = {s: await fingerprint(live[s], s) for s in services}
            result.differences = {s: await first_difference(live[s], result.live[s], dbs[s], result.prints[s])
                                  for s in services}
        return result
    finally:
        await client.close()


SHORT = 16  # hex digits of a fingerprint in the table; the whole ones are printed below it


def print_result(result: Replayed, console: Console) -> bool:
    """The fingerprints (and the verdict, with --compare); True when nothing differs."""
    console.print(f"replayed {result.events:,} records in {result.seconds:,.1f} s "
                  f"({result.events / result.seconds if result.seconds else 0:,.0f}/s): "
                  + ", ".join(f"{t} {n:,}" for t, n in result.records.items()), highlight=False)
    for topic, n in result.skipped.items():
        console.print(f"  {n:,} record(s) of {topic} skipped, as the live service dead-lettered them",
                      highlight=False)
    differences = result.differences
    table = Table(title="fingerprints of the state the log determines (SHA-256)")
    for column in ("service", "documents", "replay") + (("live", "verdict") if result.live else ()):
        table.add_column(column)
    for service, printed in result.prints.items():
        row = [service, f"{printed.count:,}", printed.digest[:SHORT]]
        if result.live:
            same = result.live[service].digest == printed.digest
            row += [result.live[service].digest[:SHORT], "identical" if same else "DIFFERENT"]
        table.add_row(*row)
    console.print(table)
    for printed in [*result.prints.values(), *result.live.values()]:
        console.print(f"  {printed.service} {printed.database} sha256:{printed.digest}", highlight=False)
    if not result.live:
        return True
    for service, found in differences.items():
        if found is not None:
            console.print(f"{service}: collection {found.collection}, first differing _id {found.id!r} "
                          f"({found.how})", highlight=False)
    same = result.identical
    console.print("verdict: " + ("identical, the live databases hold what the log says" if same else
                                 "DIFFERENT, the live databases do not hold what the log says"), highlight=False)
    return same


def replay_command(
    services: str = typer.Option(",".join(SERVICES), help="The services to rebuild, comma-separated."),
    prefix: str = typer.Option("replay", help="The rebuilt databases are named <prefix>_<live name>, "
                                              "e.g. replay_nqt_programs."),
    into_live: bool = typer.Option(False, "--into-live", help="Rebuild into the live databases themselves; "
                                                              "only when they are empty (a lost database)."),
    replace: bool = typer.Option(False, "--replace", help="Drop an earlier replay's databases first."),
    compare: bool = typer.Option(False, "--compare", help="Fingerprint the live databases too; exit 1 "
                                                          "unless they are identical to the replay."),
    batch: int = typer.Option(5000, min=1, max=50_000, help="Records applied together."),
    topic_prefix: str | None = typer.Option(None, help="The topics' prefix; default NQT_TOPIC_PREFIX."),
) -> None:
    """Rebuild the services' state from the Kafka log into fresh databases; publishes and sends nothing."""
    try:
        settings = ProgramsSettings(**({} if topic_prefix is None else {"topic_prefix": topic_prefix}))
    except ValidationError as err:
        wrong = [e["msg"] for e in err.errors() if e["loc"] == ("topic_prefix",)]
        if not wrong:
            raise
        raise typer.BadParameter(wrong[0], param_hint="--topic-prefix") from err
    console = Console(soft_wrap=True)  # long lines stay whole in a log
    result = asyncio.run(replay(settings, services=[s.strip() for s in services.split(",") if s.strip()],
                                prefix=prefix, into_live=into_live, replace=replace, compare=compare,
                                batch=batch, console=console))
    if not print_result(result, console):
        raise typer.Exit(1)
