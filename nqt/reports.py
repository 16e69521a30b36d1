"""`nqt reports`: the Office's sign-off of the reports to the Standing Committee from the
command line. The same use cases the reports service offers its views, run here against the
service's own database and topic (NQT_MONGO_URL, NQT_KAFKA_BOOTSTRAP, NQT_DB_PREFIX,
NQT_TOPIC_PREFIX, NQT_REPORTS_PUBLIC_URL and NQT_CLOCK_FIXED as the service has them)."""

from __future__ import annotations

import asyncio
import os
import socket
from datetime import timedelta

import typer
from faststream.kafka import KafkaBroker

from shared import kafka, mongo
from shared.claims import Claims
from shared.runtime import Runtime

from services.reports import handlers
from services.reports.service import BadRequest, Busy, ReportsService
from services.reports.settings import ReportsSettings
from services.reports.store import INDEXES, ReportsStore

reports_app = typer.Typer(help="The Office's sign-off of the reports to the Standing Committee.",
                          no_args_is_help=True)


async def _with_service(use):
    """Run `use(runtime, service)` on the reports service's database and topics."""
    settings = ReportsSettings()
    client = mongo.connect(settings.mongo_url)
    broker = KafkaBroker(settings.kafka_bootstrap, security=kafka.broker_security(settings), enable_idempotence=True,
                         acks="all", client_id="nqt-cli")
    await broker.connect()
    try:
        db = client[settings.database("reports")]
        await mongo.ensure_indexes(db, INDEXES)
        claims = Claims(db.claims, holder=f"nqt-cli:{socket.gethostname()}:{os.getpid()}",
                        stale_after=timedelta(seconds=settings.reports_claim_stale_seconds))
        service = ReportsService(ReportsStore(db), settings.clock(), due_working_days=settings.reports_due_working_days,
                                 claims=claims, auto_issue=settings.reports_auto_issue)
        return await use(Runtime("reports", settings, broker, INDEXES, client, db), service)
    finally:
        await broker.stop()
        await client.close()


def _run(command: str, use):
    try:
        return asyncio.run(_with_service(use))
    except (BadRequest, Busy) as err:
        typer.echo(f"nqt reports {command}: {err}", err=True)
        raise typer.Exit(2) from err


@reports_app.command("approve")
def approve(cycle: str = typer.Argument(..., help="the cycle, e.g. 2021-Q1"),
            by: str = typer.Option(..., "--by", help="who approves, as the report records it")) -> None:
    """Approve CYCLE's draft: it is numbered, its figures frozen as known now, and it is issued to
    its recipients. Approving it again changes nothing."""
    def use(runtime: Runtime, service: ReportsService):
        renderer = handlers.Renderer(runtime.settings.reports_max_renders, runtime.settings.reports_render_wait_s)
        return handlers.approve(runtime, service, renderer, cycle_code=cycle, approver=by)

    report = _run("approve", use)
    base = ReportsSettings().reports_public_url.rstrip("/")
    typer.echo(f"{cycle}: {report['document']['number_text']}, approved by {report['approved_by']} "
               f"({report['approved_at']}), issued; {base}/v1/reports/archive/{cycle}/pdf")


@reports_app.command("send-back")
def send_back(cycle: str = typer.Argument(..., help="the cycle, e.g. 2021-Q1"),
              by: str = typer.Option(..., "--by", help="who sends it back"),
              comment: str = typer.Option(..., "--comment", help="what the draft lacks")) -> None:
    """Send CYCLE's draft back with a comment; the reports service prepares a new draft."""
    _run("send-back", lambda _, service: handlers.send_back(service, cycle_code=cycle, approver=by, comment=comment))
    typer.echo(f"{cycle}: sent back; a new draft follows")


@reports_app.command("list")
def list_reports() -> None:
    """The reports of the term so far: status, number, who approved them, the last comment."""
    for row in _run("list", lambda _, service: service.cycle_reports()):
        number = f"Số {row['number']}" if row["number"] else "-"
        approved = f"{row['approved_by']} ({row['approved_at']})" if row["approved_by"] else "-"
        typer.echo(f"{row['cycle']:10} {row['status']:9} {number:7} {approved}  {row['comment'] or ''}".rstrip())
