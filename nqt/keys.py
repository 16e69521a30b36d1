"""`nqt keys`: the units' API keys for ingest, kept in ingest's own database.

A key (and a signing secret) is printed once, when issued; only the key's hash is
stored, so a lost key is revoked and a new one issued."""

from __future__ import annotations

import asyncio
import re
from datetime import date, datetime, timezone

import typer

from shared import mongo
from shared.events import UNIT_CODE
from shared.settings import CommonSettings

from services.ingest import access, domain
from services.ingest.store import INDEXES, IngestStore

keys_app = typer.Typer(help="Units' API keys for ingest (NQT_MONGO_URL, NQT_DB_PREFIX).", no_args_is_help=True)


async def _with_store(settings: CommonSettings, use):
    client = mongo.connect(settings.mongo_url)
    try:
        db = client[settings.database("ingest")]
        await mongo.ensure_indexes(db, INDEXES)
        return await use(IngestStore(db))
    finally:
        await client.close()


def _run(use):
    return asyncio.run(_with_store(CommonSettings(), use))


def _when(moment: datetime | None) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else "-"


@keys_app.command("issue")
def issue(
    unit: str = typer.Argument(..., help="the unit's code, e.g. SO-KHDT"),
    expires: str | None = typer.Option(None, help="last day the key works, e.g. 2026-12-31 (to the end of that "
                                                  "day in NQT_TIMEZONE); default: no expiry"),
    require_signature: bool = typer.Option(False, "--require-signature",
                                           help="also issue a Standard Webhooks secret and refuse unsigned requests"),
) -> None:
    """Issue a new API key for UNIT and print it once (only its hash is kept)."""
    if not re.match(UNIT_CODE, unit):
        raise typer.BadParameter(f"{unit!r} is not a unit code such as SO-KHDT", param_hint="UNIT")
    settings = CommonSettings()
    try:
        expires_at = domain.end_of_day(date.fromisoformat(expires), settings.timezone) if expires else None
    except ValueError as err:
        raise typer.BadParameter(f"{expires!r} is not a date such as 2026-12-31", param_hint="--expires") from err
    now = datetime.now(timezone.utc)
    if expires_at is not None and expires_at <= now:
        raise typer.BadParameter(f"{expires} has passed", param_hint="--expires")
    doc, key, secret = _run(lambda store: access.issue_key(store=store, unit=unit, expires_at=expires_at,
                                                            require_signature=require_signature, now=now))
    typer.echo(f"key id:   {doc['key_id']}\nunit:     {unit}\nexpires:  {_when(expires_at)}")
    typer.echo(f"API key:  {key}")
    if secret:
        typer.echo(f"signing secret (Standard Webhooks): {secret}")
    typer.echo("Shown once and not stored: keep it now. Lost? `nqt keys revoke` it and issue another.", err=True)


@keys_app.command("revoke")
def revoke(key_id: str = typer.Argument(..., help="the key id shown by `nqt keys issue` or `nqt keys list`")) -> None:
    """Revoke a key for good: requests with it get 401 from now on."""
    doc = _run(lambda store: access.revoke_key(store=store, key_id=key_id, now=datetime.now(timezone.utc)))
    if doc is None:
        typer.echo(f"no key {key_id!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key_id} of {doc['unit']} at {_when(doc['revoked_at'])}")


@keys_app.command("list")
def list_keys(unit: str | None = typer.Argument(None, help="only this unit's keys")) -> None:
    """List keys (never the keys themselves): id, unit, created, expires, revoked, signed."""
    keys = _run(lambda store: access.list_keys(store=store, unit=unit))
    typer.echo(f"{'key id':<16}  {'unit':<12}  {'created':<20}  {'expires':<20}  {'revoked':<20}  signed")
    for k in keys:
        typer.echo(f"{k['key_id']:<16}  {k['unit']:<12}  {_when(k['created_at']):<20}  {_when(k['expires_at']):<20}  "
                   f"{_when(k['revoked_at']):<20}  {'yes' if k['require_signature'] else 'no'}")
