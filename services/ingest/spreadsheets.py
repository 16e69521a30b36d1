"""Use cases of the spreadsheet door, for units that work in Excel: the templates pre-filled
for the caller, an uploaded file taken in as events through the very checks, signature
rules and publishing of `POST /v1/events` (services.ingest.service), and each row's
outcome afterwards."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import date, datetime, timezone
from typing import Mapping

from faststream.kafka import KafkaBroker

from shared.events import utc_now

from services.ingest import access, domain, imports, service, templates, uploads
from services.ingest.cells import CellErrors, cell_error
from services.ingest.sheets import KINDS
from services.ingest.store import IngestStore


async def template(*, store: IngestStore, unit: str, kind: str, today: date) -> bytes:
    """The .xlsx template of `kind`, pre-filled with what ingest knows for `unit`; 404 for no such kind."""
    if kind not in KINDS:
        raise domain.NotFound(f"no template {kind!r}; one of: {', '.join(KINDS)}")
    units = await store.units()
    cycles = await store.cycles()
    context = templates.Context(
        unit=unit, unit_name=next((u.get("name") for u in units if u["_id"] == unit), None) or unit, today=today,
        units=[u["_id"] for u in units], programmes=await store.entries("programmes"),
        indicators=await store.entries("indicators"),
        tasks=await store.tasks_of(unit) if kind == "progress" else [],
        cycle=templates.open_cycle(cycles, unit), cycles=sorted(c["_id"] for c in cycles))
    return await asyncio.to_thread(templates.write, kind, context)


async def submit_import(*, broker: KafkaBroker, topic: str, store: IngestStore, guard: access.Guard,
                        term: service.Term, caller: access.Caller, body: bytes, headers: Mapping[str, str],
                        bounds: domain.Bounds, max_rows: int, timeout_s: float) -> dict:
    """POST /v1/imports once authenticated: the request's signature, the file read, each row
    made an event and checked like any event (all or nothing, every bad cell named), the
    rows kept for `GET /v1/imports/{id}`, then the events published."""
    webhook_id = access.verify_signature(caller=caller, body=body, headers=headers)
    data = await uploads.file_field(body, headers.get("content-type"), limit=len(body))
    rows, workbook_unit = await asyncio.to_thread(uploads.read_rows, data, max_rows=max_rows)
    known = frozenset(u["_id"] for u in await store.units())
    try:
        drafts = imports.drafts(rows, unit=caller.unit, workbook_unit=workbook_unit, known_units=known)
    except CellErrors as err:
        raise domain.InvalidEvents(f"{len(err.errors)} bad cell(s); nothing was imported", errors=err.errors) from err
    if not drafts:
        raise domain.InvalidEvents("no row is filled in: nothing to import")
    now = datetime.now(timezone.utc)
    items = [d.envelope(unit=caller.unit, tz=bounds.timezone, now=now) for d in drafts]
    window = bounds.window(term_start=await term.start(store), now=now)
    events = _admitted(items, drafts, unit=caller.unit, bounds=bounds, window=window)
    import_id = hashlib.sha256(caller.unit.encode() + b"\0" + data).hexdigest()[:24]
    await store.put_import({"_id": import_id, "unit": caller.unit, "uploaded_at": utc_now(),
                            "rows": [{"sheet": d.sheet.title, "row": d.row, "event_id": e.id, "type": e.type}
                                     for d, e in zip(drafts, events)]})
    ids = await service.publish_signed(broker, topic, events, store=store, guard=guard, unit=caller.unit,
                                       webhook_id=webhook_id, now=now, timeout_s=timeout_s)
    return {"import": import_id, "accepted": len(ids), "ids": ids}


def _admitted(items: list[dict], drafts: list[imports.Draft], **admit) -> list:
    """The events, checked as `POST /v1/events` checks a batch; what it refuses named by cell."""
    try:
        return service.admit(items, batch=True, **admit)
    except (domain.InvalidEvents, domain.TooLarge) as err:
        errors = []
        for e in err.errors:
            draft = drafts[e["index"]]
            pointer = e["pointer"].removeprefix(f"/{e['index']}")
            errors.append(cell_error(draft.where(pointer), e.get("code", "too_large"),
                                     e.get("detail_vi") or f"giá trị không hợp lệ: {e['detail']}", e["detail"]))
        raise type(err)(f"{len(errors)} bad cell(s); nothing was imported", errors=errors) from err


async def import_status(*, store: IngestStore, unit: str, import_id: str) -> dict:
    """Each row of one of the caller's imports: its event id and that event's outcome as
    `GET /v1/events/{id}` tells it; 404 when the unit has no such import."""
    doc = await store.import_of(unit=unit, import_id=import_id)
    if doc is None:
        raise domain.NotFound(f"unit {unit!r} has no import {import_id!r}")
    statuses = await store.events_of([f"{unit}:{row['event_id']}" for row in doc["rows"]])
    rows, counts = [], {}
    for row in doc["rows"]:
        found = statuses.get(f"{unit}:{row['event_id']}")
        outcome = domain.view(found) if found else {"id": row["event_id"], "source": unit, "status": "unknown"}
        counts[outcome["status"]] = counts.get(outcome["status"], 0) + 1
        rows.append({**row, "outcome": outcome})
    return {"import": doc["_id"], "unit": unit, "uploaded_at": doc["uploaded_at"], "counts": counts, "rows": rows}
