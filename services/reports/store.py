"""The reports service's own data, kept from `programs.changes`:

- a live read model (current state) that the status and the current cycle's
  report read;
- the history of facts with both clocks (event time, arrival time), from which a
  report as of a past cut-off, as known at a past instant, is rebuilt;
- the reporting cycles it opened and the archive of reports it issued.

Every write is idempotent and order-tolerant: task states carry the programs
service's sequence number and versioned documents their event version, so an
older one never overwrites a newer one."""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from shared import claims, mongo

from services.reports import timeline
from services.reports.snapshot import Snapshot, latest_by_subject, tasks_from_history, unit_reports_from_history

INDEXES: mongo.IndexSpec = {
    "tasks": [IndexModel([("programme", ASCENDING)])],
    "plans": [IndexModel([("programme", ASCENDING)])],
    "history": [IndexModel([("kind", ASCENDING), ("event_time", ASCENDING)]),
                IndexModel([("kind", ASCENDING), ("data.cycle", ASCENDING)])],
    "unit_reports": [IndexModel([("cycle", ASCENDING)])],
    "supervisions": [IndexModel([("time", ASCENDING)])],
    "programmes": [], "units": [], "indicators": [], "settings": [], "issued": [], "indicator_values": [],
    "cycles": [], "archive": [], "counters": [], "claims": claims.INDEXES,
    timeline.TIMELINE: [], timeline.FACTS: [],
    "numbers": [IndexModel([("term", ASCENDING), ("cycle", ASCENDING)]),
                IndexModel([("term", ASCENDING), ("n", ASCENDING)])],
}
REGISTRY_KINDS = {"unit": "units", "programme": "programmes", "indicator": "indicators", "settings": "settings"}
TASK_FIELDS = ("task_id", "programme", "plan", "lead_unit", "lead_person", "title", "due_date", "status",
               "progress", "as_of", "dropped")
FACT_KINDS = ("plan", "programme_issued", "indicator_value", "unit_report", "supervision")


class ReportsStore:
    def __init__(self, db: AsyncDatabase):
        self.db = db

    # --- keeping the read model and the history ---
    async def apply_change(self, change: dict) -> None:
        await self.apply_changes([change])

    async def apply_changes(self, changes: list[dict]) -> None:
        """Apply changes read together: their facts kept in one write, and task states
        coalesced (of several changes of a task, only the latest is written). Every change
        is order-tolerant, so the rest keep writes of their own."""
        facts = [_fact(c) for c in changes if c["kind"] in FACT_KINDS or c.get("fact") is not None]
        if facts:
            await mongo.insert_many_once(self.db.history, facts)
            await timeline.record(self.db, facts)
        latest: dict[str, dict] = {}
        for change in changes:
            if change["kind"] != "task":
                await self._apply_state(change)
            elif change["seq"] > latest.get(change["id"], {"seq": -1})["seq"]:
                latest[change["id"]] = change
        if latest:
            await self._put_tasks({key: {f: c["state"].get(f) for f in TASK_FIELDS} | {"task_id": key, "seq": c["seq"]}
                                   for key, c in latest.items()})

    async def _put_tasks(self, docs: dict[str, dict]) -> None:
        """Write task states unless a newer one is there: which are known in one query, the
        new ones in one insert_many, each known one that is behind in a guarded update of its
        own. (Not one bulk_write: FerretDB 1.24 keeps every statement's rows open until the
        command ends, and a command with more statements than its connection pool holds
        waits for ever, stalling every client.) A task inserted meanwhile by another writer
        gets its guarded write after all."""
        known = {d["_id"]: d["seq"] async for d in self.db.tasks.find({"_id": {"$in": list(docs)}}, {"seq": 1})}
        fresh = [{"_id": key, **doc} for key, doc in docs.items() if key not in known]
        raced = [fresh[i]["_id"] for i in await mongo.insert_many_once(self.db.tasks, fresh)]
        for key in [k for k in docs if k in known and known[k] < docs[k]["seq"]] + raced:
            await self._guarded("tasks", key, "seq", docs[key]["seq"], docs[key])

    async def _apply_state(self, change: dict) -> None:
        kind, key, state = change["kind"], change["id"], change["state"]
        if kind in REGISTRY_KINDS:
            await self.db[REGISTRY_KINDS[kind]].update_one({"_id": key}, {"$set": state}, upsert=True)
        elif kind == "plan":
            await self._apply_plan(key, change["programme"], state)
        elif kind == "programme_issued":
            await self._versioned("issued", key, state, change)
        elif kind == "indicator_value":
            await self._versioned("indicator_values", key, state, change)
        elif kind == "unit_report":
            await self._versioned("unit_reports", key, state, change)
            # received when its first report for the cycle was (as the history says, see as_of)
            await self.db.unit_reports.update_one({"_id": key}, {"$min": {"received_at": change["accepted_at"]}})
        elif kind == "supervision":
            await mongo.insert_once(self.db.supervisions, {"_id": key, **state})

    async def _apply_plan(self, key: str, programme: str, state: dict) -> None:
        if state["status"] == "submitted":
            update = {"$set": {"programme": programme, "submitted": True}}
        else:  # a rejected submission counts until a revision of the plan is accepted
            update = {"$setOnInsert": {"programme": programme, "submitted": False}}
        await self.db.plans.update_one({"_id": key}, update, upsert=True)

    async def _versioned(self, collection: str, key: str, state: dict, change: dict) -> None:
        await self._guarded(collection, key, "version", change["version"], {**state, "version": change["version"]})

    async def _guarded(self, collection: str, key: str, field: str, value, doc: dict) -> None:
        # a duplicate key: a newer state is already there
        await mongo.tolerating_duplicate(
            self.db[collection].update_one({"_id": key, field: {"$lt": value}}, {"$set": doc}, upsert=True))

    # --- snapshots ---
    async def settings(self) -> dict:
        """The registry header: term, issuer, reporting (empty until the registry is loaded)."""
        return await self.db.settings.find_one({"_id": "settings"}) or {}

    async def units(self) -> dict[str, dict]:
        return {d["_id"]: d async for d in self.db.units.find({})}

    async def _registry(self) -> dict:
        return {
            "programmes": [d async for d in self.db.programmes.find({}, sort=[("_id", ASCENDING)])],
            "units": await self.units(),
            "indicators": [d async for d in self.db.indicators.find({}, sort=[("_id", ASCENDING)])],
            "settings": await self.settings(),
        }

    async def live(self, *, cycle: str, window_start: str) -> Snapshot:
        """The current state: what the status and the open cycle's report read."""
        values: dict[str, list[dict]] = {}
        async for doc in self.db.indicator_values.find({}, {"indicator": 1, "period": 1, "value": 1}):
            values.setdefault(doc["indicator"], []).append(doc)
        projection = {f: 1 for f in TASK_FIELDS}
        return Snapshot(
            **await self._registry(),
            issued={d["_id"]: d async for d in self.db.issued.find({})},
            plans=[d async for d in self.db.plans.find({}, {"programme": 1, "submitted": 1})],
            tasks=[d async for d in self.db.tasks.find({}, projection)],
            indicator_values=values,
            unit_reports={d["unit"]: d async for d in self.db.unit_reports.find({"cycle": cycle})},
            supervisions=[d async for d in self.db.supervisions.find({"time": {"$gte": window_start}})],
        )

    async def as_of(self, *, cycle: str, window_start: str, cut_off: str, known_at: str) -> Snapshot:
        """The state as of `cut_off` (event time), over what had arrived by `known_at`."""
        registry = await self._registry()
        if await timeline.ready(self.db):
            facts, reports = _by_kind(await timeline.facts_known(
                self.db, programmes=[p["_id"] for p in registry["programmes"]], units=list(registry["units"]),
                cycle=cycle, known_at=known_at), cycle=cycle, cut_off=cut_off)
            task_facts = await timeline.task_reports(self.db, plans=facts["plan"], cut_off=cut_off, known_at=known_at)
        else:  # a history older than the timeline (see timeline.record): read it whole
            known = {"accepted_at": {"$lte": known_at}}
            facts, reports = _by_kind([d async for d in self.db.history.find({"kind": {"$ne": "task_report"}, **known})],
                                      cycle=cycle, cut_off=cut_off)
            task_facts = [d async for d in self.db.history.find({"kind": "task_report",
                                                                  "event_time": {"$lte": cut_off}, **known})]
        plans, tasks = tasks_from_history(facts["plan"], task_facts)
        values: dict[str, list[dict]] = {}
        for fact in latest_by_subject(facts["indicator_value"]).values():
            values.setdefault(fact["data"]["indicator"], []).append(fact["data"])
        return Snapshot(
            **registry,
            issued={f["subject"]: f["data"] for f in latest_by_subject(facts["programme_issued"]).values()},
            plans=plans, tasks=tasks, indicator_values=values,
            unit_reports=unit_reports_from_history(reports),
            supervisions=[f["data"] for f in facts["supervision"] if f["data"]["time"] >= window_start],
        )

    # --- cycles and the archive ---
    async def cycle(self, code: str) -> dict | None:
        return await self.db.cycles.find_one({"_id": code})

    async def mark_cycle(self, code: str, **fields) -> None:
        await self.db.cycles.update_one({"_id": code}, {"$set": fields}, upsert=True)

    async def issued_report(self, cycle: str) -> dict | None:
        return await self.db.archive.find_one({"_id": cycle})

    async def issued_cycles(self) -> set[str]:
        """The cycles whose report has been issued."""
        return {doc["_id"] async for doc in self.db.archive.find({"status": "issued"}, {"_id": 1})}

    async def number_for(self, term: str, cycle: str) -> int:
        """The report number of `cycle`. Numbers run per term and each belongs to one cycle: a
        unique insert of `BC|term|n` that carries it, so no number is taken twice, and a retry,
        a restart or a second replica reuses the cycle's. Two replicas numbering one cycle at once
        may both reserve one; the lower stands and the other is given back at once."""
        while True:
            own = await self._own_number(term, cycle)
            if own is not None:
                return own
            last = await self.db.numbers.find_one({"term": term}, sort=[("n", DESCENDING)])
            # reports numbered before numbers belonged to cycles were counted here
            counted = await self.db.counters.find_one({"_id": f"BC|{term}"})
            n = max(last["n"] if last else 0, counted["value"] if counted else 0) + 1
            if await mongo.insert_once(self.db.numbers, {"_id": f"BC|{term}|{n}", "term": term, "n": n,
                                                         "cycle": cycle}):
                own = await self._own_number(term, cycle)
                if own != n:
                    await self.db.numbers.delete_one({"_id": f"BC|{term}|{n}", "cycle": cycle})
                return own

    async def _own_number(self, term: str, cycle: str) -> int | None:
        own = await self.db.numbers.find_one({"term": term, "cycle": cycle}, sort=[("n", ASCENDING)])
        return own["n"] if own else None

    async def archive(self, doc: dict) -> bool:
        return await mongo.insert_once(self.db.archive, doc)

    async def update_archive(self, cycle: str, **fields) -> None:
        await self.db.archive.update_one({"_id": cycle}, {"$set": fields})


def _by_kind(facts: list[dict], *, cycle: str, cut_off: str) -> tuple[dict[str, list[dict]], list[dict]]:
    """The facts dated on or before `cut_off` by kind, and the units' reports for `cycle`: they fall
    due after the cut-off, so they count as known at `known_at`, whenever made."""
    by_kind: dict[str, list[dict]] = {k: [] for k in ("plan", "programme_issued", "indicator_value", "supervision")}
    reports = []
    for fact in facts:
        if fact["kind"] == "unit_report" and fact["data"].get("cycle") == cycle:
            reports.append(fact)
        elif fact["kind"] in by_kind and fact["event_time"] <= cut_off:
            by_kind[fact["kind"]].append(fact)
    return by_kind, reports


def _fact(change: dict) -> dict:
    """The history row of a change: what happened, with both clocks."""
    return {"_id": change["event_key"], "kind": "task_report" if change["kind"] == "task" else change["kind"],
            "subject": change["id"], "programme": change["programme"], "version": change["version"],
            "event_time": change["event_time"], "accepted_at": change["accepted_at"],
            "data": change.get("fact") or change["state"]}
