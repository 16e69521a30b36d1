"""The state of every task as of a cut-off, as known at an instant, without reading the
history: what a report on a past cycle (or as known at a past instant) is built from.

Task status reports are nearly all of the history (a million over a term), and FerretDB's
SQLite backend serves only `_id` lookups by index, so reading them back took minutes per
report. Instead, per programme (the key of `programs.changes`: one writer per programme),
the reports consumer keeps, as it applies a batch:

- `open|P`: each task's latest status report (highest version) among P's reports dated on
  or before the open cut-off, the first quarter cut-off (end of 14 Mar/Jun/Sep/Dec, Hanoi
  time) that no report of P has gone past yet, and the reports applied while it is open;
- `seal|P|X` and `period|P|X`: those two frozen when the first report of P dated after
  cut-off X is applied, so every report applied before it is dated on or before X (there is
  no seal before P's first report: nothing was applied);
- `late|P|X`: the reports dated on or before X applied after that seal (late arrivals,
  replays out of order), each with its arrival time.

The state as of X known at T is, per task, the latest of: its late reports that arrived by T,
and its entry in the first seal at or after X (the open state when P has not gone past it) if
that entry is dated on or before X and arrived by T. Otherwise the answer lies in the reports
applied while that seal was open and in the seal below, and so on down (`Query`): one more
read for a known_at earlier than the cut-off's seal, or a cut-off between quarter ends.

The other facts (plans, issuances, indicator values, unit reports, supervisions: a few
thousand over a term) are kept whole, grouped so that a report reads few documents
(`fact_documents`).
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

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


def fold(opened: dict | None, programme: str, reports: list[dict]) -> tuple[dict, list[dict], dict[str, list]]:
    """Apply one programme's status reports (history rows, in the order applied) to its open
    document: the new open document, the seals (and their periods) it made, and the late
    entries by document id."""
    cut = opened["cut"] if opened else None
    state = unpack(opened, {"best": {}, "period": []})
    best, period = state["best"], state["period"]
    sealed_docs: list[dict] = []
    late: dict[str, list] = {}
    since = None  # the cut-off before `cut`: a report dated after it and by `cut` is in the open quarter
    for fact in reports:
        entry = _entry(fact)
        cut = cut or cut_off_after(entry[0])
        while entry[0] > cut:  # the first report past the cut-off: what came before is its state
            sealed_docs += [packed(f"seal|{programme}|{cut}", best), packed(f"period|{programme}|{cut}", period)]
            cut, period, since = next_cut_off(cut), [], None
        since = since or previous_cut_off(cut)
        # nearly every report is in the open quarter: its cut-off is known without parsing its date
        sealed = cut if entry[0] > since else cut_off_after(entry[0])
        while sealed < cut:  # dated before cut-offs already sealed: late for each of them
            late.setdefault(f"late|{programme}|{sealed}", []).append(dict(zip(LATE_FIELDS, [fact["subject"], *entry])))
            sealed = next_cut_off(sealed)
        period.append([fact["subject"], *entry])
        known = best.get(fact["subject"])
        if known is None or entry[2] > known[2]:
            best[fact["subject"]] = entry
    opened = {**packed(f"open|{programme}", {"best": best, "period": period}), "programme": programme, "cut": cut}
    return opened, sealed_docs, late


def build(opened: dict[str, dict], facts: list[dict]) -> tuple[list[dict], dict[str, list], list[dict]]:
    """What a batch of history rows adds, from the open documents of their programmes (by
    programme): the seals to insert, the late entries to append, the open documents to write."""
    by_programme: dict[str, list[dict]] = {}
    for fact in facts:
        if fact["kind"] == "task_report":
            by_programme.setdefault(fact["programme"], []).append(fact)
    seals, late, opens = [], {}, []
    for programme, reports in by_programme.items():
        doc, made, entries = fold(opened.get(programme), programme, reports)
        seals += made
        opens.append(doc)
        for key, more in entries.items():
            late.setdefault(key, []).extend(more)
    return seals, late, opens


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
    programmes = sorted({f["programme"] for f in facts if f["kind"] == "task_report"}, key=str)
    if not programmes:
        return
    opened = {d["programme"]: d async for d in db[TIMELINE].find({"_id": {"$in": [f"open|{p}" for p in programmes]}})}
    # unpacking and packing the open quarters is the batch's longest stretch of pure CPU: in a
    # worker thread, so that the event loop answers requests meanwhile
    seals, late, opens = await asyncio.to_thread(build, opened, facts)
    # seals first: a crash before the open documents are written replays the batch onto the
    # old ones, which makes the same seals again
    await mongo.insert_many_once(db[TIMELINE], seals)
    for key, entries in late.items():
        await db[TIMELINE].update_one({"_id": key}, {"$push": {"entries": {"$each": entries}}}, upsert=True)
    for doc in opens:
        await db[TIMELINE].replace_one({"_id": doc["_id"]}, doc, upsert=True)


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


async def task_reports(db: AsyncDatabase, *, plans: list[dict], cut_off: str, known_at: str) -> list[dict]:
    """The latest status report of each task of `plans` (their history rows) dated on or before
    `cut_off` among those arrived by `known_at`, as history rows."""
    async def read(ids: list[str]) -> dict[str, dict]:
        return {d["_id"]: d async for d in db[TIMELINE].find({"_id": {"$in": ids}})} if ids else {}

    query = Query(plans, cut_off, known_at)
    docs = await read(query.first_ids())
    while ids := query.step(docs):
        docs = await read(ids)
    return query.rows()


class Query:
    """The reads of `task_reports`, one round at a time (pure: the documents come in). For each
    programme: the late reports, then the level the cut-off falls in (the open state, or the
    seal at the cut-off) and, for the tasks whose entry there is dated after the cut-off or
    arrived after `known_at`, the reports applied while that level was open and the level
    below, down to where every task's entry is known by then."""

    def __init__(self, plans: list[dict], cut_off: str, known_at: str):
        self.programmes = sorted({plan["programme"] for plan in plans})
        self.tasks = {task["task_id"] for plan in plans for task in plan["data"].get("tasks", [])}
        self.cut_off, self.known_at, self.cut = cut_off, known_at, cut_off_after(cut_off)
        self.latest: dict[str, Entry] = {}
        self.walks: dict[str, tuple[str, set[str]]] = {}  # programme -> (level whose period is next, tasks open)
        self.started = False

    def first_ids(self) -> list[str]:
        return [f"{kind}|{p}" + ("" if kind == "open" else f"|{self.cut}")
                for p in self.programmes for kind in ("open", "seal", "late")]

    def step(self, docs: dict[str, dict]) -> list[str]:
        """Take the documents read; the ids to read next ([] when done)."""
        walks, self.walks = self.walks, {}
        if not self.started:
            self.started = True
            for p in self.programmes:
                self._start(p, docs)
        for p, (level, tasks) in walks.items():
            self._period(unpack(docs.get(f"period|{p}|{level}"), []), tasks)
            below = previous_cut_off(level)
            self._level(p, below, unpack(docs.get(f"seal|{p}|{below}"), {}), tasks)
        return [f"{kind}|{p}|{cut}" for p, (level, _) in self.walks.items()
                for kind, cut in (("period", level), ("seal", previous_cut_off(level)))]

    def _start(self, programme: str, docs: dict[str, dict]) -> None:
        opened = docs.get(f"open|{programme}")
        if opened is None:
            return
        if opened["cut"] <= self.cut:  # nothing of it is dated after the cut-off's quarter end
            state = unpack(opened, None)
            if tasks := self._resolve(state["best"], self.tasks):
                self._period(state["period"], tasks)
                self.walks[programme] = (opened["cut"], tasks)  # its period is read: the seal below next
            return
        for row in (docs.get(f"late|{programme}|{self.cut}") or {}).get("entries", []):
            self._offer(row["task"], [row[f] for f in LATE_FIELDS[1:]])
        self._level(programme, self.cut, unpack(docs.get(f"seal|{programme}|{self.cut}"), {}), self.tasks)

    def _period(self, period: list[list], tasks: set[str]) -> None:
        for task, *entry in period:
            if task in tasks:
                self._offer(task, entry)

    def _level(self, programme: str, level: str, best: dict[str, Entry], tasks: set[str]) -> None:
        if tasks := self._resolve(best, tasks):
            self.walks[programme] = (level, tasks)

    def _resolve(self, best: dict[str, Entry], tasks: set[str]) -> set[str]:
        """Take the entries known by then; the tasks whose entry is not, to look further for."""
        left = set()
        for task in tasks & best.keys():
            if best[task][0] <= self.cut_off and best[task][1] <= self.known_at:
                self._offer(task, best[task])
            else:
                left.add(task)
        return left

    def _offer(self, task: str, entry: Entry) -> None:
        if entry[0] <= self.cut_off and entry[1] <= self.known_at and task in self.tasks \
                and (task not in self.latest or entry[2] > self.latest[task][2]):
            self.latest[task] = entry

    def rows(self) -> list[dict]:
        return [{"subject": task, "version": e[2], "event_time": e[0], "accepted_at": e[1],
                 "data": {"status": e[3], "progress": e[4]}} for task, e in self.latest.items()]
