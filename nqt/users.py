"""`nqt users`: the people who use the web view (/ui/) and their roles, in the reports database.

A new user's password is printed once and stored only as a hash; it must be changed at the
first login."""

from __future__ import annotations

import asyncio

import typer

from shared import mongo
from shared.settings import CommonSettings

from services.reports.store import INDEXES, ReportsStore
from services.reports.web.users import ROLES, BadInput, UsersStore, add_user

users_app = typer.Typer(help="Users of the web view (NQT_MONGO_URL, NQT_DB_PREFIX).", no_args_is_help=True)


async def _with_db(use):
    settings = CommonSettings()
    client = mongo.connect(settings.mongo_url)
    try:
        db = client[settings.database("reports")]
        await mongo.ensure_indexes(db, INDEXES)
        return await use(db)
    finally:
        await client.close()


@users_app.command("add")
def add(
    name: str = typer.Argument(..., help="login name: lower-case letters without accents, digits, '.', '_', '-'"),
    role: str = typer.Option(..., help=f"one of {', '.join(ROLES)}"),
    unit: str | None = typer.Option(None, help="the unit's code (role unit only), e.g. SO-KHDT"),
    approver: bool = typer.Option(False, "--approver", help="may approve reports (role office only)"),
) -> None:
    """Add a user and print a one-time password (changed at the first login; only its hash is kept)."""
    async def use(db):
        units = set(await ReportsStore(db).units())
        return await add_user(users=UsersStore(db), name=name, role=role, unit=unit, approver=approver, units=units)
    try:
        password = asyncio.run(_with_db(use))
    except BadInput as err:
        typer.echo(f"nqt users add: {err}", err=True)
        raise typer.Exit(2) from err
    typer.echo(f"user:     {name}\nrole:     {role}" + (f"\nunit:     {unit}" if unit else "")
               + ("\napprover: yes" if approver else ""))
    typer.echo(f"password: {password}")
    typer.echo("Shown once and not stored: hand it over now. It must be changed at the first login.", err=True)


@users_app.command("list")
def list_users() -> None:
    """List the users (never their passwords): name, role, unit, approver, first login done."""
    docs = asyncio.run(_with_db(lambda db: UsersStore(db).all()))
    typer.echo(f"{'user':<24}  {'role':<7}  {'unit':<12}  {'approver':<8}  password changed")
    for d in docs:
        typer.echo(f"{d['_id']:<24}  {d['role']:<7}  {d.get('unit') or '-':<12}  {'yes' if d.get('approver') else 'no':<8}  "
                   f"{'no' if d.get('must_change') else 'yes'}")
