"""The reports service's own data, kept from `programs.changes`:

- a live read model (current state) that the status and the current cycle's
  report read;
- the facts with both clocks (event time, arrival time), from which a report as of
  a past cut-off, as known at a past instant, is rebuilt: the timeline (`timeline.py`),
  and the history rows of all but the status reports, which the timeline alone keeps
  (a database older than the timeline has rows of them too, and reads those);
- the reporting cycles it opened and the archive of reports it issued.

Every write is idempotent and order-tolerant: task states carry the programs
service's sequence number and versioned documents their event version, so an
older one never overwrites a newer one. Task states are kept as a changelog plus
checkpoints per programme (`shared.statelog`: a batch's states in one document, the
highest seq wins), beside one tally document per programme (`live.Tally`); the replica
owning a programme keeps both in memory too (`owned.Holdings`) and folds the changelog."""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, IndexModel, ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase

from shared import claims, consumer, heap, mongo, records, statelog
from shared.statelog import StateLog

from services.reports import domain, tasklog, timeline, timeline_query
from services.reports.live import REGISTRY as REGISTRY_KINDS, Live, Tally, TallyView, TaskWrites, loaded_task
from services.reports.owned import Holdings
from services.reports.snapshot import Snapshot, latest_by_subject, tasks_from_history, unit_reports_from_history

INDEXES: mongo.IndexSpec = {
    "task_states": statelog.INDEXES,
    "plans": [IndexModel([("programme", ASCENDING)])],
    "history": [IndexModel([("kind", ASCENDING), ("event_time", ASCENDING)]),
                IndexModel([("kind", ASCENDING), ("data.cycle", ASCENDING)])],
    "unit_reports": [IndexModel([("cycle", ASCENDING)])],
    "supervisions": [IndexModel([("time", ASCENDING)])],
    "programmes": [], "units": [], "indicators": [], "settings": [], "issued": [], "indicator_values": [],
    "cycles": [], "archive": [], "counters": [], "claims": claims.INDEXES, "tallies": [],
    timeline.TIMELINE: [], timeline.FACTS: [], tasklog.TASK_LOG: [], "users": [],
    "numbers": [IndexModel([("term", ASCENDING), ("cycle", ASCENDING)]),
                IndexModel([("term", ASCENDING), ("n", ASCENDING)])],
}
FACT_KINDS = (records.PLAN, records.PROGRAMME_ISSUED, records.INDICATOR_VALUE, records.UNIT_REPORT, records.SUPERVISION)


class ReportsStore:
    def __init__(self, db: AsyncDatabase, holdings: Holdings | None = None):
        self.db = db
        self.holdings = holdings or Holdings()  # one per process, shared by the stores it makes
        self.states = StateLog(db.task_states, key="task_id", group=lambda task: task["programme"])
        self.migrated = False

    # --- keeping the read model and the history ---
    async def apply_change(self, change: dict) -> None:
        await self.apply_changes([change])

    async def apply_changes(self, changes: list[dict]) -> None:
        """Apply changes read together, to the read model and to the live state: their facts kept
        in one write, task states in one changelog document and one tally document per
        programme touched; the small kinds a write each. Every write
        is order-tolerant and idempotent, so a batch read again after a crash changes nothing.
        A kind without an applier refuses the batch before anything is written. Beside a consumer,
        the caller holds `holdings.lock` (`handlers.take_batch`): a load never misses a write."""
        unknown = sorted({c["kind"] for c in changes} - KINDS)
        if unknown:
            raise consumer.Poison(f"a change of kind {', '.join(map(repr, unknown))}, which reports does not know")
        try:
            await self._hold({c["state"]["programme"] for c in changes if c["kind"] == records.TASK})
            tasks, logged = TaskWrites(), []
            with self.holdings.applying():
                for change in changes:
                    outcome = self.holdings.live.apply(change)  # memory first: a failed write forgets it
                    if change["kind"] == records.TASK:
                        tasks.take(outcome)
                        if change.get("fact") is not None:
                            logged.append((change, outcome[0]))
                    else:
                        await APPLIERS[change["kind"]](self, change)
            # Facts, task log and task states depend on no write of one another, so they go at once:
            # a crash between any of them leaves a batch that, read again, writes what is missing
            # (a report whose state is already written is filed under the same `task|seq`, with
            # `$addToSet`). The tallies count the task states: `_put_tasks` writes them after those.
            await mongo.together(self._keep_facts(changes), tasklog.record(self.db, logged), self._put_tasks(tasks))
            # The batch is written: the status is made again (from memory) while a fold is under way.
            self.holdings.changed()
            await self.states.fold_if_due(self.holdings.live.tasks.values(), self.holdings.programmes,
                                          self.holdings.task_docs)
        except BaseException:
            self.holdings.forget()  # memory may be ahead of the database: read it again when needed
            raise

    async def _keep_facts(self, changes: list[dict]) -> None:
        """The batch's facts, with both clocks: in the timeline, and the history rows it does not hold."""
        facts = [_fact(c) for c in changes if c["kind"] in FACT_KINDS or c.get("fact") is not None]
        if facts:
            # The timeline keeps every status report: the history keeps a row of each only in a
            # database older than the timeline, which reads them from there (one insert per report).
            with heap.phase("reports.timeline"):
                in_timeline = await timeline.record(self.db, facts)
            await mongo.insert_many_once(self.db.history, [f for f in facts if not in_timeline
                                                           or f["kind"] != "task_report"])

    async def _put_tasks(self, tasks: TaskWrites) -> None:
        """The batch's task states in one changelog document, then the tally of each programme
        touched (the caller folds the changelog into a checkpoint per programme held, now and then)."""
        holdings = self.holdings
        await self.states.append(list(tasks.fresh.values()), holdings.task_docs)
        await self._put_tallies(tasks.touched)
        if holdings.complete:  # every programme is in memory, a new one too
            holdings.programmes |= tasks.touched

    async def _put_tallies(self, programmes: set[str]) -> None:
        """Each programme's tally document, replaced in one command (a statement per programme:
        a few, well under what makes FerretDB 1.24 stall on one command), packed: a tally counts
        by due date and lead unit, hundreds of fields rewritten per batch otherwise."""
        tallies = self.holdings.live.tallies
        replace = [ReplaceOne({"_id": p}, {"_id": p, "z": mongo.pack((tallies.get(p) or Tally()).to_doc())},
                              upsert=True) for p in sorted(programmes)]
        if replace:
            await self.db.tallies.bulk_write(replace, ordered=False)

    async def _hold(self, programmes: set[str]) -> None:
        """Load the tasks of these programmes into memory, once after each assignment."""
        missing = sorted(programmes - self.holdings.programmes)
        if missing and not self.holdings.complete:
            await self._hold_tasks(missing)

    async def _hold_tasks(self, programmes: list[str] | None) -> None:
        """Load the tasks of these programmes (None: of all) into memory."""
        states = await self._task_states(programmes, known=self.holdings.task_docs)
        self.holdings.live.load_tasks(states.values())
        loaded = set(programmes) if programmes is not None else {t["programme"] for t in states.values()}
        self.holdings.programmes |= loaded
        await self._put_tallies(loaded)  # the tally as the tasks say, had a crash left it behind

    async def _task_states(self, programmes: list[str] | None = None, known=None) -> dict[str, dict]:
        """The current state of the tasks of these programmes (None: of all), by task id."""
        await self._migrate_versions()
        return await self.states.read(programmes, known)

    async def _migrate_versions(self) -> None:
        """A database from before the changelog keeps task versions (`task|seq`) in `tasks`: their
        latest become checkpoints, then the versions go (a crash in between: done again)."""
        if not self.migrated:
            await self.states.take_over(self.db.tasks, loaded_task)
            self.migrated = True

    async def current_tasks(self) -> list[dict]:
        """Every task's current state, as stored (for tools and tests: the service reads by programme)."""
        return list((await self._task_states()).values())

    async def _apply_registry(self, change: dict) -> None:
        await self.db[REGISTRY_KINDS[change["kind"]]].update_one({"_id": change["id"]}, {"$set": change["state"]},
                                                                 upsert=True)

    async def _apply_plan_change(self, change: dict) -> None:
        await self._apply_plan(change["id"], change["programme"], change["state"])

    async def _apply_issued(self, change: dict) -> None:
        await self._versioned("issued", change["id"], change["state"], change)

    async def _apply_indicator_value(self, change: dict) -> None:
        await self._versioned("indicator_values", change["id"], change["state"], change)

    async def _apply_unit_report(self, change: dict) -> None:
        await self._versioned("unit_reports", change["id"], change["state"], change)
        # received when its first report for the cycle was (as the history says, see as_of)
        await self.db.unit_reports.update_one({"_id": change["id"]}, {"$min": {"received_at": change["accepted_at"]}})

    async def _apply_supervision(self, change: dict) -> None:
        await mongo.insert_once(self.db.supervisions, {"_id": change["id"], **change["state"]})

    async def _apply_plan(self, key: str, programme: str, state: dict) -> None:
        if state["status"] == "submitted":  # in effect from its issued_on (rollup.in_effect)
            update = {"$set": {"programme": programme, "submitted": True, "issued_on": state.get("issued_on")}}
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
        """The current state: what the status and the open cycle's report read. From memory alone
        when this replica owns every programme; else the small collections, the other programmes'
        tallies and their open tasks from the database, and the programmes it holds from memory."""
        holdings = self.holdings
        if holdings.owns_all():
            if not holdings.complete:
                async with holdings.lock:
                    await self._hold_everything()
            await holdings.steady()
            return holdings.live.snapshot(cycle=cycle, window_start=window_start)
        values: dict[str, list[dict]] = {}
        async for doc in self.db.indicator_values.find({}, {"indicator": 1, "period": 1, "value": 1}):
            values.setdefault(doc["indicator"], []).append(doc)
        return Snapshot(
            **await self._registry(),
            issued={d["_id"]: d async for d in self.db.issued.find({})},
            plans=[d async for d in self.db.plans.find({}, {"programme": 1, "submitted": 1, "issued_on": 1})],
            tasks=[], indicator_values=values,
            unit_reports={d["unit"]: d async for d in self.db.unit_reports.find({"cycle": cycle})},
            supervisions=[d async for d in self.db.supervisions.find({"time": {"$gte": window_start}})],
            view=await self._merged_view())

    async def tasks_where(self, **match) -> list[dict]:
        """The current state of the tasks matching `match` (equality on task fields): from memory
        when this replica holds every programme, else as stored."""
        if self.holdings.owns_all():
            if not self.holdings.complete:
                async with self.holdings.lock:
                    await self._hold_everything()
            await self.holdings.steady()
            tasks = self.holdings.live.tasks
        else:
            tasks = await self._task_states()
        return [t for t in tasks.values() if all(t.get(k) == v for k, v in match.items())]

    async def unit_reports_of(self, unit: str, cycles: list[str]) -> dict[str, dict]:
        """The unit's report for each of these cycles that has one, by cycle."""
        ids = [f"{unit}|{cycle}" for cycle in cycles]
        return {d["cycle"]: d async for d in self.db.unit_reports.find({"_id": {"$in": ids}})} if ids else {}

    async def _merged_view(self) -> TallyView:
        """The programmes this replica holds from memory, the others as their owners wrote them."""
        held, mine = sorted(self.holdings.programmes), self.holdings.live
        tallies = {d["_id"]: Tally.from_doc(mongo.unpack(d["z"]) if "z" in d else d)
                   async for d in self.db.tallies.find({"_id": {"$nin": held}})}
        theirs = Live()  # their open tasks
        theirs.load_tasks([t for t in (await self._task_states()).values()
                           if t["programme"] not in held and t["status"] not in domain.CLOSED])

        def open_tasks(first: str | None, last: str, included: bool,
                       limit: int | None = None) -> tuple[list[dict], int]:
            (held_tasks, n_held), (other_tasks, n_other) = (
                tasks.open_tasks(first, last, included, limit) for tasks in (mine, theirs))
            both = sorted(held_tasks + other_tasks, key=lambda t: (t["due_date"], t["task_id"]))
            return both[:limit], n_held + n_other

        return TallyView(tallies | {p: mine.tallies[p] for p in held if p in mine.tallies}, open_tasks)

    async def _hold_everything(self) -> None:
        """Load the whole read model into memory (this replica owns every programme)."""
        if self.holdings.complete:
            return
        live = self.holdings.live
        for name in live.registry:
            live.registry[name] = {d["_id"]: d async for d in self.db[name].find({})}
        for name in ("issued", "plans", "indicator_values", "unit_reports", "supervisions"):
            setattr(live, name, {d["_id"]: d async for d in self.db[name].find({})})
        await self._hold_tasks(None)
        self.holdings.complete = True

    async def as_of(self, *, cycle: str, window_start: str, cut_off: str, known_at: str) -> Snapshot:
        """The state as of `cut_off` (event time), over what had arrived by `known_at`."""
        registry = await self._registry()
        if await timeline.ready(self.db):
            facts, reports = _by_kind(await timeline.facts_known(
                self.db, programmes=[p["_id"] for p in registry["programmes"]], units=list(registry["units"]),
                cycle=cycle, known_at=known_at), cycle=cycle, cut_off=cut_off)
            task_facts = await timeline_query.task_reports(self.db, plans=facts["plan"], cut_off=cut_off,
                                                           known_at=known_at)
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

    async def update_archive(self, cycle: str, *, upsert: bool = False, **fields) -> None:
        await self.db.archive.update_one({"_id": cycle}, {"$set": fields}, upsert=upsert)

    async def reports(self) -> dict[str, dict]:
        """Every cycle's report as the sign-off sees it (without the document and its files)."""
        fields = ("status", "revision", "number", "known_at", "issued_on", "approved_by", "approved_at", "comment")
        return {d["_id"]: d async for d in self.db.archive.find({}, dict.fromkeys(fields, 1))}


# What each kind of change does to the read model; task states are written together, per batch
# (`TaskWrites`), and every kind is mirrored in the live state (`live.MIRRORS`).
APPLIERS = {**dict.fromkeys(REGISTRY_KINDS, ReportsStore._apply_registry),
            records.PLAN: ReportsStore._apply_plan_change, records.PROGRAMME_ISSUED: ReportsStore._apply_issued,
            records.INDICATOR_VALUE: ReportsStore._apply_indicator_value,
            records.UNIT_REPORT: ReportsStore._apply_unit_report, records.SUPERVISION: ReportsStore._apply_supervision}
KINDS = frozenset({*APPLIERS, records.TASK})  # every kind reports applies


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
