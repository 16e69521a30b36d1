"""The live roll-up, kept as changes arrive instead of recomputed per request. Pure: no I/O.

`Live` holds what the status is made of: the small collections as they are (registry,
plans, issuances, indicator values, unit reports, supervisions), each task's current
state, and per programme a `Tally` of its tasks in numbers. A task change takes the old
state's contribution out of the tally and puts the new one's in, so a status costs the
same at 200 tasks as at 20,000; only its lists (overdue tasks, tasks due next) grow with
what they list. Each write mirrors what `ReportsStore` does to the read model, guards
included, so memory and database say the same."""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from decimal import Decimal
from typing import Iterable

from shared import mongo, records

from services.reports import domain
from services.reports.interning import compact
from services.reports.snapshot import Snapshot

# the registry kinds and the collections that keep them
REGISTRY = {records.UNIT: "units", records.PROGRAMME: "programmes", records.INDICATOR: "indicators",
            records.SETTINGS: "settings"}
TASK_FIELDS = ("task_id", "programme", "plan", "lead_unit", "lead_person", "title", "due_date", "status",
               "progress", "as_of", "dropped", "milestones", "coordinating_units")  # the last two: a task's page


def task_doc(change: dict) -> dict:
    """A task's state as the read model keeps it, from its change (with the programmes it left, if
    any: loading one of them must see that it left, see `shared.statelog`)."""
    left = {"left": change["state"]["left"]} if change["state"].get("left") else {}
    return ({"_id": f"{change['id']}|{change['seq']}"} | {f: change["state"].get(f) for f in TASK_FIELDS}
            | left | {"task_id": change["id"], "seq": change["seq"]})


def loaded_task(doc: dict) -> dict:
    """A task version from a database older than the changelog (packed, or field by field before)."""
    return mongo.unpack(doc["z"]) if "z" in doc else doc


def _bump(counter: Counter, key, n: int) -> None:
    """Add n; a key that falls to zero goes, so that what is counted is what is there."""
    counter[key] += n
    if not counter[key]:
        del counter[key]


def _open_before(open_due: Counter, as_of: str) -> int:
    return sum(n for due, n in open_due.items() if due < as_of)


class Tally:
    """One programme's tasks in numbers: by status, their progress (exactly as `domain.progress_pct`
    sums it), open tasks by due date (overdue moves with the day: a sum over dates), per lead unit."""

    def __init__(self):
        self.statuses: Counter = Counter()
        self.progress_sum, self.progress_n = Decimal(0), 0
        self.open_due: Counter = Counter()                      # due date -> open tasks
        self.unit_open_due: defaultdict[str, Counter] = defaultdict(Counter)  # lead unit -> due date -> open
        self.leads: Counter = Counter()                         # lead unit -> tasks
        self.overdue_cache: tuple[str, int, dict[str, int]] | None = None  # as of a day: overdue, by unit

    def add(self, task: dict, sign: int = 1) -> None:
        """Count `task` in (sign 1) or out (sign -1)."""
        self.overdue_cache = None
        _bump(self.statuses, task["status"], sign)
        value = domain.progress_value(task)
        if value is not None:
            self.progress_sum += sign * value
            self.progress_n += sign
        _bump(self.leads, task["lead_unit"], sign)
        if task["status"] not in domain.CLOSED:
            _bump(self.open_due, task["due_date"], sign)
            _bump(self.unit_open_due[task["lead_unit"]], task["due_date"], sign)
            if not self.unit_open_due[task["lead_unit"]]:
                del self.unit_open_due[task["lead_unit"]]

    def counts(self, as_of: str) -> dict:
        return {"total": sum(self.statuses.values()), **{s: self.statuses.get(s, 0) for s in domain.STATUSES},
                "overdue": self.overdue(as_of)[0]}

    def overdue(self, as_of: str) -> tuple[int, dict[str, int]]:
        """Open tasks due before `as_of`, and by lead unit; kept until the tally or the day changes,
        so the programmes a batch did not touch cost nothing."""
        if self.overdue_cache is None or self.overdue_cache[0] != as_of:
            by_unit = {u: n for u, due in self.unit_open_due.items() if (n := _open_before(due, as_of))}
            self.overdue_cache = (as_of, _open_before(self.open_due, as_of), by_unit)
        return self.overdue_cache[1:]

    def to_doc(self) -> dict:
        """The tally as a small document: no task lists; counts as {key, n} pairs (no Decimal128,
        no dotted keys, no nested arrays: FerretDB 1.24 refuses them)."""
        pairs = lambda counter: [{"key": k, "n": n} for k, n in sorted(counter.items())]
        return {"statuses": pairs(self.statuses), "progress_sum": str(self.progress_sum),
                "progress_n": self.progress_n, "open_due": pairs(self.open_due),
                "unit_open_due": [{"unit": u, "open_due": pairs(c)} for u, c in sorted(self.unit_open_due.items())],
                "leads": pairs(self.leads)}

    @classmethod
    def from_doc(cls, doc: dict) -> "Tally":
        counter = lambda pairs: Counter({p["key"]: p["n"] for p in pairs})
        tally = cls()
        tally.statuses, tally.open_due, tally.leads = (counter(doc[k]) for k in ("statuses", "open_due", "leads"))
        tally.progress_sum, tally.progress_n = Decimal(doc["progress_sum"]), doc["progress_n"]
        for unit in doc["unit_open_due"]:
            tally.unit_open_due[unit["unit"]] = counter(unit["open_due"])
        return tally


class TallyView:
    """The tasks as `rollup.build` asks about them, answered from tallies and an index of open tasks."""

    def __init__(self, tallies: dict[str, Tally], open_tasks):
        self.tallies = tallies
        self.open_tasks = open_tasks  # (first due date or None, last, last included) -> tasks by (due, id)

    def counts(self, programme: str | None, as_of: str) -> dict:
        tallies = self._of(programme)
        counts = [t.counts(as_of) for t in tallies]
        return {k: sum(c[k] for c in counts) for k in ("total", *domain.STATUSES, "overdue")}

    def progress(self, programme: str | None) -> float | None:
        tallies = self._of(programme)
        return domain.mean_pct(sum((t.progress_sum for t in tallies), Decimal(0)), sum(t.progress_n for t in tallies))

    def overdue_by_unit(self, as_of: str) -> dict[str, int]:
        overdue: Counter = Counter()
        for tally in self.tallies.values():
            overdue.update(tally.overdue(as_of)[1])
        return dict(overdue)

    def leads(self) -> set[str]:
        return {unit for tally in self.tallies.values() for unit in tally.leads}

    def open_due(self, first: str | None, last: str, *, included: bool,
                 limit: int | None = None) -> tuple[list[dict], int]:
        return self.open_tasks(first, last, included, limit)

    def _of(self, programme: str | None) -> list[Tally]:
        if programme is None:
            return list(self.tallies.values())
        return [self.tallies[programme]] if programme in self.tallies else []


class Live:
    """The maintained state behind the live status (see the module's docstring)."""

    def __init__(self):
        self.registry: dict[str, dict[str, dict]] = {name: {} for name in REGISTRY.values()}
        self.issued: dict[str, dict] = {}
        self.plans: dict[str, dict] = {}
        self.indicator_values: dict[str, dict] = {}
        self.unit_reports: dict[str, dict] = {}
        self.supervisions: dict[str, dict] = {}
        self.tasks: dict[str, dict] = {}                        # task id -> current state (with seq)
        self.people: dict[tuple, dict] = {}                     # each lead person once (see `compact`)
        self.tallies: defaultdict[str, Tally] = defaultdict(Tally)  # programme -> its tasks in numbers
        self.open_by_due: dict[str, set[str]] = {}              # due date -> open tasks
        self.due_dates: list[str] = []                          # its keys, sorted

    def apply(self, change: dict):
        """Apply one change (of a kind in MIRRORS); for a task, what `put_task` tells."""
        return MIRRORS[change["kind"]](self, change)

    # --- the small collections, as the store writes them ---
    def set_registry(self, collection: str, key: str, state: dict) -> None:
        self.registry[collection].setdefault(key, {"_id": key}).update(state)  # $set, upsert

    def set_plan(self, key: str, programme: str, submitted: bool, issued_on: str | None = None) -> None:
        if submitted:
            self.plans.setdefault(key, {"_id": key}).update(programme=programme, submitted=True, issued_on=issued_on)
        else:  # a rejected submission counts until a revision of the plan is accepted
            self.plans.setdefault(key, {"_id": key, "programme": programme, "submitted": False})

    def set_versioned(self, collection: str, key: str, state: dict, version: str) -> dict:
        """Keep `state` unless a newer version is there; the document either way."""
        docs = getattr(self, collection)
        doc = docs.get(key)
        if doc is None:
            doc = docs[key] = {"_id": key, **state, "version": version}
        elif "version" in doc and doc["version"] < version:
            doc.update(state, version=version)
        return doc

    def set_unit_report(self, key: str, state: dict, version: str, accepted_at: str) -> None:
        doc = self.set_versioned("unit_reports", key, state, version)
        doc["received_at"] = min(doc.get("received_at", accepted_at), accepted_at)  # $min

    def add_supervision(self, key: str, state: dict) -> None:
        self.supervisions.setdefault(key, {"_id": key, **state})

    # --- tasks ---
    def put_task(self, task: dict) -> tuple[bool, dict | None, dict]:
        """Take `task` (with its seq) unless a state as new is there: (taken, the one it replaced, task)."""
        old = self.tasks.get(task["task_id"])
        if old is not None and old["seq"] >= task["seq"]:
            return False, old, task
        if old is not None:
            self._count(old, -1)
        self.tasks[task["task_id"]] = compact(task, self.people, old)
        self._count(task, 1)
        return True, old, task

    def load_tasks(self, tasks: Iterable[dict]) -> None:
        for task in tasks:
            self.put_task(task)

    def drop_programmes(self, programmes: set[str]) -> None:
        """Forget the tasks of these programmes (another replica owns them now)."""
        for task in [t for t in self.tasks.values() if t["programme"] in programmes]:
            self._count(task, -1)
            del self.tasks[task["task_id"]]
        for programme in programmes:
            self.tallies.pop(programme, None)

    def _count(self, task: dict, sign: int) -> None:
        self.tallies[task["programme"]].add(task, sign)
        if not self.tallies[task["programme"]].statuses:
            del self.tallies[task["programme"]]
        if task["status"] in domain.CLOSED:
            return
        due = task["due_date"]
        if sign > 0:
            if due not in self.open_by_due:
                self.open_by_due[due] = set()
                bisect.insort(self.due_dates, due)
            self.open_by_due[due].add(task["task_id"])
            return
        self.open_by_due[due].discard(task["task_id"])
        if not self.open_by_due[due]:
            del self.open_by_due[due]
            self.due_dates.pop(bisect.bisect_left(self.due_dates, due))

    def open_tasks(self, first: str | None, last: str, included: bool,
                   limit: int | None = None) -> tuple[list[dict], int]:
        """The first `limit` (None: all) open tasks due from `first` (None: any) to `last`, ordered
        by due date and task id, and how many there are: only the dates listed are sorted, so the
        head of a list of 20,000 costs what the head does."""
        lo = 0 if first is None else bisect.bisect_left(self.due_dates, first)
        hi = (bisect.bisect_right if included else bisect.bisect_left)(self.due_dates, last)
        dates = self.due_dates[lo:hi]
        listed: list[dict] = []
        for due in dates:
            if limit is not None and len(listed) >= limit:
                break
            listed.extend(self.tasks[t] for t in sorted(self.open_by_due[due]))
        return listed[:limit], sum(len(self.open_by_due[due]) for due in dates)

    # --- what the status is made of ---
    def view(self) -> TallyView:
        return TallyView(dict(self.tallies), self.open_tasks)

    def snapshot(self, *, cycle: str, window_start: str) -> Snapshot:
        """Everything but the tasks, which the view answers for, as `ReportsStore.live` reads it."""
        values: dict[str, list[dict]] = {}
        for doc in self.indicator_values.values():
            values.setdefault(doc["indicator"], []).append(doc)
        return Snapshot(
            programmes=sorted(self.registry["programmes"].values(), key=lambda d: d["_id"]),
            units=dict(self.registry["units"]),
            indicators=sorted(self.registry["indicators"].values(), key=lambda d: d["_id"]),
            settings=self.registry["settings"].get("settings") or {},
            issued=dict(self.issued), plans=list(self.plans.values()), tasks=[], indicator_values=values,
            unit_reports={d["unit"]: d for d in self.unit_reports.values() if d.get("cycle") == cycle},
            supervisions=[d for d in self.supervisions.values() if d["time"] >= window_start],
            view=self.view())


class TaskWrites:
    """What a batch's task changes write: the states taken (the last of each task), the programmes."""

    def __init__(self):
        self.fresh: dict[str, dict] = {}
        self.touched: set[str] = set()

    def take(self, outcome: tuple[bool, dict | None, dict]) -> None:
        taken, old, new = outcome
        if not taken:
            return
        self.fresh[new["task_id"]] = new
        self.touched.add(new["programme"])
        if old is not None:
            self.touched.add(old["programme"])


# What each kind of change does to the live state; a mirror of the store's APPLIERS.
MIRRORS = {
    **{kind: lambda live, c, name=name: live.set_registry(name, c["id"], c["state"])
       for kind, name in REGISTRY.items()},
    records.PLAN: lambda live, c: live.set_plan(c["id"], c["programme"], c["state"]["status"] == "submitted",
                                                c["state"].get("issued_on")),
    records.TASK: lambda live, c: live.put_task(task_doc(c)),
    records.PROGRAMME_ISSUED: lambda live, c: live.set_versioned("issued", c["id"], c["state"], c["version"]),
    records.INDICATOR_VALUE: lambda live, c: live.set_versioned("indicator_values", c["id"], c["state"],
                                                                c["version"]),
    records.UNIT_REPORT: lambda live, c: live.set_unit_report(c["id"], c["state"], c["version"], c["accepted_at"]),
    records.SUPERVISION: lambda live, c: live.add_supervision(c["id"], c["state"]),
}
