"""`nqt import FILE --unit CODE`: upload a filled-in Excel template to ingest over HTTP with
the unit's API key (signed when given the key's signing secret), then wait for every
row's outcome and print it. The CLI holds no rules of its own: ingest checks the file."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx
import typer

from services.ingest.domain import signature

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FINAL = ("applied", "duplicate", "rejected")


def import_command(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="a filled-in template (.xlsx)"),
    unit: str = typer.Option(..., "--unit", help="the unit the rows are from; its API key is used"),
    key: str = typer.Option(None, envvar="NQT_API_KEY", show_default=False,
                            help="the unit's API key (default: its development key in NQT_DEV_KEYS_FILE)"),
    url: str = typer.Option("http://127.0.0.1:8081", envvar="NQT_INGEST_URL", help="ingest's base URL"),
    signing_secret: str = typer.Option(None, envvar="NQT_SIGNING_SECRET", show_default=False,
                                       help="the key's whsec_ secret, for keys that require signed requests"),
    wait: float = typer.Option(120.0, help="seconds to wait for every row's outcome; 0: don't"),
) -> None:
    """Upload FILE as UNIT; print each bad cell, or each row's outcome once decided."""
    key = key or _dev_key(unit)
    body, content_type = _multipart(file)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": content_type}
    if signing_secret:
        headers |= _signature(signing_secret, body)
    with httpx.Client(base_url=url, timeout=120) as ingest:
        whoami = ingest.get("/v1/whoami", headers={"Authorization": f"Bearer {key}"})
        if whoami.status_code == 200 and whoami.json()["unit"] != unit:
            _fail(f"the API key belongs to {whoami.json()['unit']}, not {unit}")
        answer = ingest.post("/v1/imports", content=body, headers=headers)
        if answer.status_code != 202:
            _refused(answer)
        taken = answer.json()
        typer.echo(f"{file.name}: {taken['accepted']} row(s) accepted as import {taken['import']}")
        if wait:
            _outcomes(ingest, key, taken["import"], wait)


def _dev_key(unit: str) -> str:
    path = os.environ.get("NQT_DEV_KEYS_FILE")
    keys = json.loads(Path(path).read_text()) if path and Path(path).exists() else {}
    found = next((k for k, u in keys.items() if u == unit), None)
    if found is None:
        _fail(f"no API key for {unit}: pass --key or set NQT_API_KEY")
    return found


def _multipart(file: Path) -> tuple[bytes, str]:
    """The request body as it will be sent, so that a signature covers exactly it."""
    request = httpx.Request("POST", "http://ingest/", files={"file": (file.name, file.read_bytes(), XLSX)})
    return request.read(), request.headers["Content-Type"]


def _signature(secret: str, body: bytes) -> dict[str, str]:
    webhook_id, now = f"nqt-import-{time.time_ns()}", datetime.now(timezone.utc)
    return {"webhook-id": webhook_id, "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signature(secret, webhook_id, now, body)}


def _refused(answer: httpx.Response) -> None:
    try:
        problem = answer.json()
    except ValueError:
        _fail(f"ingest answered {answer.status_code}: {answer.text[:500]}")
    typer.echo(f"refused ({answer.status_code}): {problem.get('detail')}", err=True)
    for error in problem.get("errors", []):
        typer.echo(f"  {error.get('detail_vi') or ''}\n  {error['detail']}", err=True)
    raise typer.Exit(1)


def _outcomes(ingest: httpx.Client, key: str, import_id: str, wait: float) -> None:
    deadline = time.monotonic() + wait
    while True:
        report = ingest.get(f"/v1/imports/{import_id}", headers={"Authorization": f"Bearer {key}"}).json()
        pending = [r for r in report["rows"] if r["outcome"]["status"] not in FINAL]
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(1)
    typer.echo("outcomes: " + ", ".join(f"{n} {status}" for status, n in sorted(report["counts"].items())))
    for row in report["rows"]:
        outcome = row["outcome"]
        if outcome["status"] == "rejected":
            typer.echo(f"  {row['sheet']} row {row['row']}: rejected, {outcome.get('code')}: "
                       f"{outcome.get('message_vi')} / {outcome.get('message_en')}", err=True)
    if pending:
        _fail(f"{len(pending)} row(s) not decided within {wait:.0f}s: is the programs service running?")
    if any(r["outcome"]["status"] == "rejected" for r in report["rows"]):
        raise typer.Exit(1)


def _fail(message: str) -> None:
    typer.echo(message, err=True)
    raise typer.Exit(1)
