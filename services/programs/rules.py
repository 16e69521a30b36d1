"""The programme's rules per event type, decided in memory over a batch's working set: what
the batch read before (tasks, plans, registry entries, states in force) and what it changes.
No I/O here: the service loads the working set, runs the rules, then writes what they
collected with a few bulk commands."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared import records
from shared.cycles import UnknownCycle, parse_cycle
from shared.events import Envelope, utc_iso, utc_now
from shared.registry import expected_to_report

from services.programs import domain
from services.programs.domain import Rejection
from services.programs.store import REGISTRY

Change = dict
HELD = "held"  # not an outcome: the event waits for its plan


@dataclass(frozen=True, slots=True)
class Item:
    """A record to decide: an accepted event, or an update released from `held` (by its plan
    or the sweep); `expire`: its wait is over, so an unknown task is `unknown_task` now."""
    event: Envelope
    accepted_at: str
    accept_id: str
    released: bool = False
    expire: bool = False
    # Worked out once, as the item is made: every outcome and change of the event names them
    # (a `cached_property` takes a lock on each read in Python 3.11: 6.7% of programs' samples).
    key: str = field(init=False)  # the event's idempotency key
    event_time: str = field(init=False)
    version: str = field(init=False)  # order of events about the same thing (`domain.version_of`)

    def __post_init__(self) -> None:
        event_time = utc_iso(self.event.time)
        object.__setattr__(self, "key", self.event.key)
        object.__setattr__(self, "event_time", event_time)
        object.__setattr__(self, "version", domain.version_of(self.event, event_time=event_time))


@dataclass
class Working:
    """What a batch reads and changes. `tasks` is the service's state of its programmes (plus
    the tasks of other programmes the batch named), changed in place."""
    tasks: dict[str, dict]
    registry: dict[str, dict[str, dict]]
    outcomes: dict[str, dict] = field(default_factory=dict)     # event key -> recorded outcome
    held: dict[str, dict] = field(default_factory=dict)         # event key -> update waiting for its plan
    plans: dict[str, dict] = field(default_factory=dict)
    in_force: dict[tuple[str, str], str] = field(default_factory=dict)  # (collection, key) -> version
    others: set[str] = field(default_factory=set)  # ids of tasks read for this batch only
    changed: set[str] = field(default_factory=set)  # ids of tasks the batch changed
    now: str = field(default_factory=utc_now)  # when the batch is decided
    # what the batch writes
    kept: dict[str, dict] = field(default_factory=dict)  # event key -> its history entry, until its outcome
    was_in: dict[str, str | None] = field(default_factory=dict)  # changed task id -> its programme before (None: new)
    plan_writes: dict[str, dict] = field(default_factory=dict)
    versioned_writes: list[tuple[str, str, dict, str]] = field(default_factory=list)
    supervisions: list[dict] = field(default_factory=list)
    registry_writes: list[tuple[str, dict]] = field(default_factory=list)
    new_held: dict[str, dict] = field(default_factory=dict)
    new_outcomes: list[dict] = field(default_factory=list)

    def entry(self, collection: str, code: str) -> dict | None:
        return self.registry.get(collection, {}).get(code)

    def put_task(self, task: dict) -> None:
        old = self.tasks.get(task["_id"])
        self.was_in.setdefault(task["_id"], old["programme"] if old is not None else None)
        self.tasks[task["_id"]] = task
        self.changed.add(task["_id"])

    def written(self) -> None:
        """The effects collected so far are stored: collect the next ones afresh."""
        self.was_in, self.plan_writes, self.versioned_writes = {}, {}, []
        self.supervisions, self.registry_writes, self.new_held, self.new_outcomes = [], [], {}, []

    def keep(self, item: Item, *, subject: str, kind: str, data: dict) -> None:
        """Keep the event in the history (its outcome document, which says its event time and
        arrival time too): what it was about, in which order, with what data."""
        self.kept[item.key] = {"subject": subject, "kind": kind, "version": item.version, "data": data}


def registry_entry(work: Working, item: Item, unit: dict | None) -> list[Change] | Rejection:
    event = item.event
    if event.source != domain.OFFICE:
        return Rejection.of("forbidden", event.source, "registry changes come from the Office (VPTU)")
    entry = event.data.model_dump(mode="json")
    entries = work.registry.setdefault(REGISTRY[event.type], {})
    entries[entry["code"]] = {**entries.get(entry["code"], {}), **entry, "_id": entry["code"]}
    work.registry_writes.append((event.type, entry))
    return [change(item, kind=event.type.removeprefix("registry."), id=entry["code"], state=entry)]


def plan_submitted(work: Working, item: Item, unit: dict) -> list[Change] | Rejection:
    event, plan = item.event, item.event.data
    plan_key = f"{event.source}|{plan.plan_id}"
    version = item.version
    current = work.plans.get(plan_key)
    if current is not None and current["version"] > version:
        return Rejection.of("superseded", plan.plan_id)
    units = {t.lead_unit for t in plan.tasks} | {u for t in plan.tasks for u in t.coordinating_units}
    owners = {t.task_id: work.tasks[t.task_id]["plan"] for t in plan.tasks if t.task_id in work.tasks}
    findings = domain.check_plan(plan, known_units={u for u in units if work.entry("units", u)},
                                 owners=owners, plan_key=plan_key)
    if findings:
        return Rejection.of("invalid_plan", domain.offending_tasks(findings), findings=findings)
    header = {**plan.model_dump(mode="json", exclude={"tasks"}), "source": event.source}
    tasks = [t.model_dump(mode="json") for t in plan.tasks]
    work.keep(item, subject=plan_key, kind=records.PLAN, data={**header, "tasks": tasks})
    ids = [t["task_id"] for t in tasks]
    ever = set((current or {}).get("tasks_ever") or (current or {}).get("task_ids") or ()) | set(ids)
    states = _put_plan(work, plan_key, header, tasks, version, ever)
    work.plans[plan_key] = work.plan_writes[plan_key] = {**header, "_id": plan_key, "version": version,
                                                         "task_ids": ids, "tasks_ever": sorted(ever)}
    roadmap = [{k: t[k] for k in ("task_id", "title", "lead_unit", "lead_person", "due_date")} for t in tasks]
    changes = [change(item, kind=records.PLAN, id=plan_key, programme=plan.programme,
                      state={**header, "status": "submitted", "tasks": roadmap})]
    return changes + [task_change(item, s) for s in states]


FRESH = {"status": "not_started", "progress": 0.0, "status_version": "", "as_of": None}


def _put_plan(work: Working, plan_key: str, header: dict, tasks: list[dict], version: str,
              members: set[str]) -> list[dict]:
    """The plan's tasks (progress of tasks that stay is kept; a task the plan dropped earlier and
    brings back starts afresh, one change more), then the tasks this revision dropped, cancelled;
    return the state of every task of the plan. A task this very plan version wrote already (its
    record read again after a crash) is left as it is, so `seq` counts each change once."""
    ids = [t["task_id"] for t in tasks]
    programme = header["programme"]
    for t in tasks:
        task = work.tasks.get(t["task_id"])
        if task is not None and task.get("plan_version") == version:
            continue
        new = {"_id": t["task_id"], **FRESH, "seq": 0} if task is None else dict(task)
        if task is not None and task["plan"] == plan_key and task["dropped"]:
            new.update(FRESH, seq=new["seq"] + 1)
        if task is not None and task["programme"] != programme:  # found by its old programme too, as moved
            new["left"] = sorted({*task.get("left", ()), task["programme"]} - {programme})
        new.update(t, plan=plan_key, programme=programme, dropped=False, plan_version=version, seq=new["seq"] + 1)
        work.put_task(new)
    dropped = sorted(members - set(ids))
    for task in [work.tasks[t] for t in dropped if t in work.tasks and work.tasks[t]["plan"] == plan_key]:
        if not task["dropped"]:
            work.put_task({**task, "dropped": True, "status": "cancelled", "seq": task["seq"] + 1})
    return [work.tasks[t] for t in [*ids, *dropped] if t in work.tasks and work.tasks[t]["plan"] == plan_key]


def task_updated(work: Working, item: Item, unit: dict) -> list[Change] | Rejection | str:
    event, update = item.event, item.event.data
    task = work.tasks.get(update.task_id)
    if task is None:
        return Rejection.of("unknown_task", update.task_id, update.programme) if item.expire else HELD
    if rejection := domain.check_task_update(event.source, update.task_id, update.programme, task):
        return rejection
    version = item.version
    fields = update.model_dump(mode="json", exclude={"task_id", "programme"})
    work.keep(item, subject=update.task_id, kind=records.TASK, data=fields)
    before = None
    if task["status_version"] < version:
        before, task = task, {**task, **fields, "status_version": version, "seq": task["seq"] + 1}
        work.put_task(task)
    # An older report arriving late is kept in the history but changes nothing now;
    # the change carries the report itself too, for reports as of a past date.
    return [{**task_change(item, task, before=before), "fact": fields}]


def programme_issued(work: Working, item: Item, unit: dict) -> list[Change] | Rejection:
    event, issued = item.event, item.event.data
    if event.source != domain.OFFICE:
        return Rejection.of("forbidden", event.source, "programmes are issued by the Office (VPTU)")
    return _versioned(work, item, collection="issuances", kind=records.PROGRAMME_ISSUED, key=issued.programme,
                      state=issued.model_dump(mode="json"), programme=issued.programme)


def indicator_reported(work: Working, item: Item, unit: dict) -> list[Change] | Rejection:
    event, report = item.event, item.event.data
    indicator = work.entry("indicators", report.indicator)
    if indicator is None:
        return Rejection.of("unknown_indicator", report.indicator)
    if event.source != indicator["responsible_unit"]:
        return Rejection.of("forbidden", event.source,
                            f"indicator {report.indicator} is reported by {indicator['responsible_unit']}")
    state = {**report.model_dump(mode="json"), "source": event.source}
    return _versioned(work, item, collection="indicator_values", kind=records.INDICATOR_VALUE,
                      key=f"{report.indicator}|{report.period}", state=state)


def unit_report_submitted(work: Working, item: Item, unit: dict) -> list[Change] | Rejection:
    event, report = item.event, item.event.data
    settings = work.entry("settings", "settings") or {}
    term = settings.get("term") or {}
    try:
        cycle = parse_cycle(report.cycle)
    except UnknownCycle as err:
        return Rejection.of("unknown_cycle", report.cycle, str(err))
    if term and not (term["start"] <= cycle.cut_off.isoformat() <= term["end"]):
        return Rejection.of("unknown_cycle", report.cycle, f"{term['start']}..{term['end']}")
    expected = (settings.get("reporting") or {}).get("expected_units", "default")
    if not expected_to_report(unit, expected):
        return Rejection.of("forbidden", event.source, f"cycle {report.cycle} does not expect a report from it")
    state = {**report.model_dump(mode="json"), "unit": event.source, "time": utc_iso(event.time)}
    return _versioned(work, item, collection="unit_reports", kind=records.UNIT_REPORT,
                      key=f"{event.source}|{report.cycle}", state=state)


def supervision_recorded(work: Working, item: Item, unit: dict) -> list[Change] | Rejection:
    event, record = item.event, item.event.data
    if not domain.may_supervise(unit):
        return Rejection.of("forbidden", event.source,
                            "supervision comes from the Fatherland Front and socio-political organisations")
    if record.unit and not work.entry("units", record.unit):
        return Rejection.of("unknown_unit", record.unit)
    if record.task_id and record.task_id not in work.tasks:
        return Rejection.of("unknown_task", record.task_id, record.programme)
    state = {**record.model_dump(mode="json"), "source": event.source, "time": utc_iso(event.time)}
    work.supervisions.append({"_id": event.key, **state, "accepted_at": item.accepted_at})
    return [change(item, kind=records.SUPERVISION, id=event.key, programme=record.programme, state=state)]


def _versioned(work: Working, item: Item, *, collection: str, kind: str, key: str, state: dict,
               programme: str | None = None) -> list[Change]:
    """Keep the event in the history; make it the current state unless a later one is in force."""
    version = item.version
    work.keep(item, subject=key, kind=kind, data=state)
    in_force = work.in_force.get((collection, key))
    if in_force is None or in_force < version:
        work.in_force[(collection, key)] = version
        work.versioned_writes.append((collection, key, {**state, "accepted_at": item.accepted_at}, version))
    current = in_force is None or in_force <= version
    return [change(item, kind=kind, id=key, programme=programme, state={**state, "current": current})]


def change(item: Item, *, kind: str, id: str, state: dict, programme: str | None = None, seq: int = 0,
           old: dict | None = None) -> Change:
    return {"kind": kind, "id": id, "programme": programme, "seq": seq, "state": state, "old": old,
            "event_key": item.key, "event_time": item.event_time, "accepted_at": item.accepted_at,
            "version": item.version}


# What a status report changes: the old state of a task change says only this, so that a
# change (the task's whole state plus its old status) always fits in one Kafka record.
STATUS_FIELDS = ("status", "progress", "as_of", "status_version", "seq", "dropped")


def task_change(item: Item, task: dict, before: dict | None = None) -> Change:
    old = {k: before[k] for k in STATUS_FIELDS if k in before} if before else None
    state = dict(task)
    del state["_id"]
    return change(item, kind=records.TASK, id=task["_id"], programme=task["programme"], seq=task["seq"],
                  state=state, old=old)


def rejected_plan_change(item: Item) -> list[Change]:
    event, plan = item.event, item.event.data
    return [change(item, kind=records.PLAN, id=f"{event.source}|{plan.plan_id}", programme=plan.programme,
                   state={"plan_id": plan.plan_id, "programme": plan.programme, "source": event.source,
                          "status": "rejected"})]
