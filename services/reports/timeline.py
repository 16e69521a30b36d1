"""The state of every task as of a cut-off, as known at an instant, without reading the
history: what a report on a past cycle (or as known at a past instant) is built from.

Task status reports are nearly all of the history (a million over a term), and FerretDB's
SQLite backend serves only `_id` lookups by index, so reading them back took minutes per
report. Instead, per programme (the key of `programs.changes`: one writer per programme),
the reports consumer keeps, as it applies a batch:

- the open state: each task's latest status report (highest version) among P's reports
  dated on or before the open cut-off X, the first quarter cut-off (end of 14 Mar/Jun/Sep/Dec,
  Hanoi time) that no report of P has gone past yet, and the reports applied while it is open.
  Kept as what each batch brings, so that a batch costs what it brings, not what the quarter
  holds (rewritten whole per batch, it cost some 100 us per report at a whole term): `open|P`
  names X and counts the parts; `base|P|X` is the state as X opened (the seal below, and the
  reports of the batch that passed it); `part|P|X|n` the reports of the n-th batch since.
  (An `open|P` written whole, before the parts, holds the state itself: it is read as a base.)
- `seal|P|X` and `period|P|X`: those two frozen when the first report of P dated after
  cut-off X is applied, so every report applied before it is dated on or before X (there is
  no seal before P's first report: nothing was applied);
- `late|P|X`: the reports dated on or before X applied after that seal (late arrivals,
  replays out of order), each with its arrival time.

The state as of X known at T is, per task, the latest of: its late reports that arrived by T,
and its entry in the first seal at or after X (the open state when P has not gone past it) if
that entry is dated on or before X and arrived by T. Otherwise the answer lies in the reports
applied while that seal was open and in the seal below, and so on down (`timeline_query`):
one more read for a known_at earlier than the cut-off's seal, or a cut-off between quarter ends.

The other facts (plans, issuances, indicator values, unit reports, supervisions: a few
thousand over a term) are kept whole, grouped so that a report reads few documents
(`fact_documents`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from pymongo import ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase

from shared import mongo
from shared.events import utc_iso

TIMELINE, FACTS = "timeline", "timeline_facts"
READY, OLDER = "ready", "older"  # whether the timeline holds every fact of the history (see `record`)
TZ = ZoneInfo("Asia/Ho_Chi_Minh")
QUARTER_ENDS = (3, 6, 9, 12)
Entry = list  # [event_time, accepted_at, version, status, progress]
LATE_FIELDS = ("task", "event_time", "accepted_at", "version", "status", "progress")  # FerretDB takes no nested arrays


def cut_off_after(instant: str) -> str:
    """The first quarter cut-off at or after `instant` (both `utc_iso` text)."""
    day = datetime.fromisoformat(instant.replace("Z", "+00:00")).astimezone(TZ).date()
    for month in QUARTER_ENDS:
        if day <= date(day.year, month, 14):
            return utc_iso(datetime.combine(date(day.year, month, 14), time.max, tzinfo=TZ))
    return utc_iso(datetime.combine(date(day.year + 1, 3, 14), time.max, tzinfo=TZ))


def next_cut_off(cut_off: str) -> str:
    day = datetime.fromisoformat(cut_off.replace("Z", "+00:00")).astimezone(TZ).date()
    return cut_off_after(utc_iso(datetime.combine(day.replace(day=15), time.min, tzinfo=TZ)))


def previous_cut_off(cut_off: str) -> str:
    day = datetime.fromisoformat(cut_off.replace("Z", "+00:00")).astimezone(TZ).date()
    before = date(day.year, day.month - 3, 14) if day.month > 3 else date(day.year - 1, 12, 14)
    return utc_iso(datetime.combine(before, time.max, tzinfo=TZ))


def packed(key: str, value) -> dict:
    """A document of the timeline: its content compressed, opaque to the database (FerretDB
    decodes nested documents slowly; these are only ever read whole, by `_id`)."""
    return {"_id": key, "z": mongo.pack(value)}


def unpack(doc: dict | None, default):
    return mongo.unpack(doc["z"]) if doc else default


def _entry(fact: dict) -> Entry:
    return [fact["event_time"], fact["accepted_at"], fact["version"], fact["data"]["status"],
            float(fact["data"]["progress"])]


def state_ids(opened: dict) -> list[str]:
    """The documents that hold the open quarter's state beside `open|P`: its base and its parts
    (none for an open document written whole, as before the parts)."""
    if "z" in opened:
        return []
    programme, cut = opened["programme"], opened["cut"]
    return [f"base|{programme}|{cut}"] + [f"part|{programme}|{cut}|{n}" for n in range(opened["parts"])]


def open_state(opened: dict | None, docs: dict[str, dict]) -> dict:
    """The open quarter's state, {best, period}: its base, then each part's reports in the order applied."""
    if opened is None:
        return {"best": {}, "period": []}
    if "z" in opened:
        return unpack(opened, None)
    ids = state_ids(opened)
    state = unpack(docs.get(ids[0]), {"best": {}, "period": []})
    for part in ids[1:]:
        for row in unpack(docs[part], []):
            _take(state, row)
    return state


def _take(state: dict, row: list) -> None:
    state["period"].append(row)
    known = state["best"].get(row[0])
    if known is None or row[3] > known[2]:  # row: [task, *entry]; entry[2] is the version
        state["best"][row[0]] = row[1:]


def sealing(opened: dict | None, reports: list[dict]) -> bool:
    """Whether these reports take the programme past its open cut-off, or its open document is
    written whole (from before the parts): then the whole open state is needed, not only its cut."""
    return opened is not None and ("z" in opened or any(f["event_time"] > opened["cut"] for f in reports))


@dataclass
class Writes:
    """What a batch of status reports writes, in this order: the seals (each written once), the
    bases and parts (replaced: a batch read again may be bounded differently), the late entries,
    the open documents (last: a crash before replays the batch onto the old ones), then what the
    quarter before the one just sealed left (no reader needs it any more)."""
    seals: list[dict] = field(default_factory=list)
    kept: list[dict] = field(default_factory=list)
    late: dict[str, list] = field(default_factory=dict)
    opens: list[dict] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)


def fold(opened: dict | None, docs: dict[str, dict], programme: str, reports: list[dict], writes: Writes) -> None:
    """Apply one programme's status reports (history rows, in the order applied) to its open
    quarter. Nearly always they stay in it: they become a part of their own and the open document
    counts one more, so a batch costs what it brings, not what the quarter holds. Past the cut-off
    (or from an open document written whole) the state is rebuilt from `docs`, the seals made,
    and the open quarter starts again from a base."""
    cut = opened["cut"] if opened else None
    state = open_state(opened, docs) if opened is None or sealing(opened, reports) else None
    added: list[list] = []  # the reports since the last seal (or the batch's start)
    crossed = False
    since = None  # the cut-off before `cut`: a report dated after it and by `cut` is in the open quarter
    for fact in reports:
        entry = _entry(fact)
        cut = cut or cut_off_after(entry[0])
        while entry[0] > cut:  # the first report past the cut-off: what came before is its state
            writes.seals += [packed(f"seal|{programme}|{cut}", state["best"]),
                             packed(f"period|{programme}|{cut}", state["period"])]
            cut, since, added, state["period"], crossed = next_cut_off(cut), None, [], [], True
        since = since or previous_cut_off(cut)
        # nearly every report is in the open quarter: its cut-off is known without parsing its date
        quarter = cut if entry[0] > since else cut_off_after(entry[0])
        while quarter < cut:  # dated before cut-offs already sealed: late for each of them
            writes.late.setdefault(f"late|{programme}|{quarter}", []).append(
                dict(zip(LATE_FIELDS, [fact["subject"], *entry])))
            quarter = next_cut_off(quarter)
        added.append(row := [fact["subject"], *entry])
        if state is not None:
            _take(state, row)
    opens = {"_id": f"open|{programme}", "programme": programme, "cut": cut}
    if crossed or (opened is not None and "z" in opened):  # a new base; the quarter's before last goes
        writes.kept.append(packed(f"base|{programme}|{cut}", state))
        writes.retired += (opened or {}).get("retired", [])
        left = state_ids(opened) if crossed and opened is not None else []
        writes.opens.append({**opens, "parts": 0, "retired": left})
        return
    parts = opened["parts"] if opened else 0
    writes.kept.append(packed(f"part|{programme}|{cut}|{parts}", added))
    writes.opens.append({**opens, "parts": parts + 1, "retired": opened.get("retired", []) if opened else []})


def build(opened: dict[str, dict], docs: dict[str, dict], facts: list[dict]) -> Writes:
    """What a batch of history rows writes, from the open documents of their programmes (by
    programme) and, for those it seals, the documents of their open state (`state_ids`)."""
    writes = Writes()
    for programme, reports in _reports_by_programme(facts).items():
        fold(opened.get(programme), docs, programme, reports, writes)
    return writes


def _reports_by_programme(facts: list[dict]) -> dict[str, list[dict]]:
    by_programme: dict[str, list[dict]] = {}
    for fact in facts:
        if fact["kind"] == "task_report":
            by_programme.setdefault(fact["programme"], []).append(fact)
    return by_programme


async def record(db: AsyncDatabase, facts: list[dict]) -> bool:
    """Keep what a batch of history rows adds: the other facts as they are, the task reports
    in their programmes' documents. True when the timeline is complete (`ready`): then it
    alone answers for the status reports, and the history needs no row of them."""
    ready = await _mark_ready_if_new(db, facts)
    await _keep_facts(db, facts)
    await _keep_reports(db, facts)
    return ready


async def _keep_facts(db: AsyncDatabase, facts: list[dict]) -> None:
    grouped, loose = fact_documents(facts)
    await mongo.insert_many_once(db[FACTS], loose)
    kept = {d["_id"]: d async for d in db[TIMELINE].find({"_id": {"$in": list(grouped)}})} if grouped else {}
    for key, rows in grouped.items():  # one writer per key (see fact_documents): its rows, and these
        old = {row["_id"]: row for row in unpack(kept.get(key), [])}
        await db[TIMELINE].replace_one({"_id": key}, packed(key, list(({r["_id"]: r for r in rows} | old).values())),
                                       upsert=True)


async def _keep_reports(db: AsyncDatabase, facts: list[dict]) -> None:
    by_programme = _reports_by_programme(facts)
    if not by_programme:
        return
    ids = [f"open|{p}" for p in sorted(by_programme, key=str)]
    opened = {d["programme"]: d async for d in db[TIMELINE].find({"_id": {"$in": ids}})}
    ids = [i for p, doc in opened.items() if sealing(doc, by_programme[p]) for i in state_ids(doc)]
    docs = {d["_id"]: d async for d in db[TIMELINE].find({"_id": {"$in": ids}})} if ids else {}
    # folding is pure CPU, and a sealing batch rebuilds whole quarters: in a worker thread, so that
    # the event loop answers requests meanwhile
    writes = await asyncio.to_thread(build, opened, docs, facts)
    await mongo.insert_many_once(db[TIMELINE], writes.seals)
    await _replace(db, writes.kept)
    for key, entries in writes.late.items():
        await db[TIMELINE].update_one({"_id": key}, {"$push": {"entries": {"$each": entries}}}, upsert=True)
    await _replace(db, writes.opens)
    if writes.retired:
        await db[TIMELINE].delete_many({"_id": {"$in": writes.retired}})


async def _replace(db: AsyncDatabase, docs: list[dict]) -> None:
    if docs:
        await db[TIMELINE].bulk_write([ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in docs], ordered=False)


async def _mark_ready_if_new(db: AsyncDatabase, facts: list[dict]) -> bool:
    """The timeline is complete only if it saw every history row: marked ready when the history
    held nothing but this batch's rows at the first batch, older otherwise (a reports database
    from before the timeline keeps reading the history; so would one whose replicas' first
    batches met, which only costs time). Whether it is ready."""
    mark = await db[TIMELINE].find_one({"_id": {"$in": [READY, OLDER]}}, {"_id": 1})
    if mark is None:
        before = await db.history.find_one({"_id": {"$nin": [f["_id"] for f in facts]}}, {"_id": 1})
        await mongo.insert_once(db[TIMELINE], {"_id": OLDER if before else READY})
        return await ready(db)
    return mark["_id"] == READY


async def ready(db: AsyncDatabase) -> bool:
    """Whether reports may read the timeline instead of the history."""
    return await db[TIMELINE].find_one({"_id": READY}, {"_id": 1}) is not None


def fact_documents(facts: list[dict]) -> tuple[dict[str, list[dict]], list[dict]]:
    """Where the facts other than status reports are kept, each by the one writer of its key:
    a programme's (plans, issuances, supervisions) together, a unit's report for a cycle by
    itself, read by `_id`; the rest (indicator values, a few hundred a term) as rows."""
    grouped: dict[str, list[dict]] = {}
    loose = []
    for fact in facts:
        if fact["kind"] == "task_report":
            continue
        if fact["programme"]:
            grouped.setdefault(f"facts|{fact['programme']}", []).append(fact)
        elif fact["kind"] == "unit_report":
            grouped.setdefault(f"unit_report|{fact['subject']}", []).append(fact)
        else:
            loose.append(fact)
    return grouped, loose


def fact_ids(*, programmes: list[str], units: list[str], cycle: str) -> list[str]:
    """The documents of the programmes' facts and of the units' reports for `cycle`."""
    return [f"facts|{p}" for p in programmes] + [f"unit_report|{u}|{cycle}" for u in units]


async def facts_known(db: AsyncDatabase, *, programmes: list[str], units: list[str], cycle: str,
                      known_at: str) -> list[dict]:
    """The facts other than status reports that had arrived by `known_at`: those of the
    programmes, the units' reports for the cycle, and the rest."""
    ids = fact_ids(programmes=programmes, units=units, cycle=cycle)
    rows = [row async for doc in db[TIMELINE].find({"_id": {"$in": ids}}) for row in unpack(doc, [])]
    rows += [d async for d in db[FACTS].find({})]
    return [row for row in rows if row["accepted_at"] <= known_at]
