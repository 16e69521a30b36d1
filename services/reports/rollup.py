"""The numbers of the status and of the report to the Standing Committee, computed
from a Snapshot exactly as the contract defines them. Pure: no I/O, no clock."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import date, timedelta

from shared.cycles import Cycle, label, next_quarter
from shared.registry import expected_to_report

from services.reports import domain
from services.reports.snapshot import Snapshot


@dataclass(frozen=True)
class Moment:
    """Which cycle, as of which day (event time), known at which instant (arrival time)."""

    cycle: Cycle
    as_of: date
    due_date: date
    due_instant: str     # end of the due date, UTC ISO: reports timed at or before it are on time
    known_at: str
    next_due_date: date | None = None
    by_event_time: bool = False  # a replay of past events: lateness by event time, not by acceptance


class Listed:
    """The tasks as the roll-up asks about them, answered from the list of them (a past cut-off)."""

    def __init__(self, tasks: list[dict]):
        self.tasks = tasks
        self.by_programme = defaultdict(list)
        for task in tasks:
            self.by_programme[task["programme"]].append(task)

    def _of(self, programme: str | None) -> list[dict]:
        return self.tasks if programme is None else self.by_programme.get(programme, [])

    def counts(self, programme: str | None, as_of: str) -> dict:
        return domain.task_counts(self._of(programme), date.fromisoformat(as_of))

    def progress(self, programme: str | None) -> float | None:
        return domain.progress_pct(self._of(programme))

    def overdue_by_unit(self, as_of: str) -> dict[str, int]:
        overdue = defaultdict(int)
        for task in self.tasks:
            if domain.is_overdue(task, date.fromisoformat(as_of)):
                overdue[task["lead_unit"]] += 1
        return overdue

    def leads(self) -> set[str]:
        return {task["lead_unit"] for task in self.tasks}

    def open_due(self, first: str | None, last: str, *, included: bool,
                 limit: int | None = None) -> tuple[list[dict], int]:
        """The first `limit` (None: all) open tasks due from `first` (None: any) to `last`, ordered
        by due date and task id, and how many there are."""
        due = [t for t in self.tasks if t["status"] not in domain.CLOSED and (first is None or first <= t["due_date"])
               and (t["due_date"] <= last if included else t["due_date"] < last)]
        return sorted(due, key=lambda t: (t["due_date"], t["task_id"]))[:limit], len(due)


def in_effect(snapshot: Snapshot, as_of: date) -> Snapshot:
    """What had taken effect by `as_of`, whenever it was reported: a programme counts as issued
    from its `issued_on`, its steering committee as established from its `established_on`, a
    plan as submitted from its `issued_on` (a rejected one from its event time, as before)."""
    day = as_of.isoformat()
    issued = {}
    for code, doc in snapshot.issued.items():
        if (doc.get("issued_on") or "") > day:
            continue
        if ((doc.get("steering_committee") or {}).get("established_on") or "") > day:
            doc = {**doc, "steering_committee": None}
        issued[code] = doc
    plans = [p for p in snapshot.plans if (p.get("issued_on") or "") <= day]
    return replace(snapshot, issued=issued, plans=plans)


def build(snapshot: Snapshot, moment: Moment, *, limit: int | None = None) -> dict:
    """The status (or a report's numbers) as of `moment`; its task lists (overdue, due next period)
    hold their first `limit` tasks (None: all) beside how many there are."""
    snapshot = in_effect(snapshot, moment.as_of)
    tasks = snapshot.view or Listed(snapshot.tasks)
    plans_by_programme = defaultdict(list)
    for plan in snapshot.plans:
        plans_by_programme[plan["programme"]].append(plan)
    programmes = [_programme(p, snapshot, tasks, plans_by_programme[p["code"]], moment) for p in snapshot.programmes]
    units = _units(snapshot, tasks, moment)
    as_of = moment.as_of.isoformat()
    overdue, overdue_total = _open(tasks, OVERDUE, moment, limit)
    return {
        "cycle": moment.cycle.code,
        "kind": moment.cycle.kind,
        "cycle_label": label(moment.cycle),
        "window": {"start": moment.cycle.start.isoformat(), "cut_off": moment.cycle.cut_off.isoformat()},
        "due_date": moment.due_date.isoformat(),
        "as_of": as_of,
        "known_at": moment.known_at,
        "programmes": programmes,
        "deadline_q1_2021": _issuance_deadline(snapshot),
        "indicators": [_indicator(i, snapshot) for i in snapshot.indicators],
        "units": units,
        "reports_summary": {k: sum(u["reports"][k] for u in units) for k in ("expected", "on_time", "late", "missing")},
        "overdue_tasks": [_task_line(t, snapshot) for t in overdue],
        "overdue_tasks_total": overdue_total,
        "supervisions": [_supervision(s, snapshot) for s in sorted(snapshot.supervisions, key=lambda s: s["time"])],
        "next_period": _next_period(snapshot, tasks, moment, limit),
        "totals": {"tasks": tasks.counts(None, as_of), "progress_pct": tasks.progress(None),
                   "plans": {k: sum(p["plans"][k] for p in programmes) for k in ("expected", "submitted", "rejected")}},
    }


def _unit_name(snapshot: Snapshot, code: str | None) -> str | None:
    return (snapshot.units.get(code) or {}).get("name", code) if code else None


def _programme(programme: dict, snapshot: Snapshot, tasks, plans: list[dict], moment: Moment) -> dict:
    issued = snapshot.issued.get(programme["code"])
    status = domain.programme_summary(programme, issued=issued, plans=plans,
                                      counts=tasks.counts(programme["code"], moment.as_of.isoformat()),
                                      progress=tasks.progress(programme["code"]))
    return {**status, "lead_unit_name": _unit_name(snapshot, programme.get("lead_unit")),
            "issued_on": issued.get("issued_on") if issued else None}


def _issuance_deadline(snapshot: Snapshot) -> dict:
    """The action programme required every programme issued, with its steering committee, by its deadline."""
    deadlines = [p["issue_by"] for p in snapshot.programmes if p.get("issue_by")]
    deadline = max(deadlines) if deadlines else None
    issued_on_time = steering_on_time = 0
    missed = []
    for programme in snapshot.programmes:
        issued = snapshot.issued.get(programme["code"]) or {}
        by = programme.get("issue_by") or deadline
        steering = (issued.get("steering_committee") or {}).get("established_on")
        on_time = bool(issued) and by is not None and issued["issued_on"] <= by
        steering_ok = steering is not None and by is not None and steering <= by
        issued_on_time += on_time
        steering_on_time += steering_ok
        if not (on_time and steering_ok):
            missed.append({"code": programme["code"], "issued_on": issued.get("issued_on"),
                           "steering_established_on": steering})
    return {"deadline": deadline, "issued_on_time": issued_on_time, "steering_on_time": steering_on_time,
            "total": len(snapshot.programmes), "missed": missed}


def _indicator(indicator: dict, snapshot: Snapshot) -> dict:
    latest = domain.latest_value(snapshot.indicator_values.get(indicator["code"], []))
    targets = indicator.get("targets") or {}
    return {"code": indicator["code"], "group": indicator.get("group"), "name": indicator["name"],
            "measure": indicator.get("measure"), "direction": indicator["direction"],
            "baseline": indicator.get("baseline"), "latest": latest,
            "target_2025": targets.get("2025"), "target_2030": targets.get("2030"), "target_2045": targets.get("2045"),
            "status": domain.indicator_status(indicator, latest), "sample": bool(indicator.get("sample"))}


def _units(snapshot: Snapshot, tasks, moment: Moment) -> list[dict]:
    expected_units = (snapshot.settings.get("reporting") or {}).get("expected_units", "default")
    overdue = tasks.overdue_by_unit(moment.as_of.isoformat())
    leads = tasks.leads()
    units = []
    for code, unit in sorted(snapshot.units.items()):
        expected = expected_to_report(unit, expected_units)
        if not expected and code not in leads:
            continue
        report = snapshot.unit_reports.get(code)
        status = domain.report_status(report, moment.due_instant, by_event_time=moment.by_event_time) \
            if expected else None
        units.append({
            "code": code, "name": unit["name"],
            "reports": {"expected": int(expected), "on_time": int(status == "on_time"), "late": int(status == "late"),
                        "missing": int(status == "missing")},
            "report": {"status": status, "time": (report or {}).get("time"),
                       "received_at": (report or {}).get("received_at"),
                       "document_no": (report or {}).get("document_no")} if expected else None,
            "tasks_overdue": overdue.get(code, 0),
        })
    return units


def _task_line(task: dict, snapshot: Snapshot) -> dict:
    return {"task_id": task["task_id"], "title": task["title"], "programme": task["programme"],
            "lead_unit": task["lead_unit"], "lead_unit_name": _unit_name(snapshot, task["lead_unit"]),
            "lead_person": task.get("lead_person"), "due_date": task["due_date"], "status": task["status"],
            "progress": float(task["progress"])}


def _supervision(record: dict, snapshot: Snapshot) -> dict:
    return {"programme": record["programme"], "kind": record["kind"], "source": record["source"],
            "source_name": _unit_name(snapshot, record["source"]), "finding": record["finding"],
            "recommendation": record.get("recommendation"), "unit": record.get("unit"), "time": record["time"]}


def _next_period(snapshot: Snapshot, tasks, moment: Moment, limit: int | None) -> dict:
    following = next_quarter(moment.cycle)
    due, total = _open(tasks, DUE_NEXT, moment, limit)
    return {"cycle": following.code, "cycle_label": label(following), "cut_off": following.cut_off.isoformat(),
            "due_date": (moment.next_due_date or following.cut_off + timedelta(days=2)).isoformat(),
            "tasks_due": [_task_line(t, snapshot) for t in due], "tasks_due_total": total}


# The task lists of the status: open tasks due before the as-of day, and those due next quarter.
OVERDUE, DUE_NEXT = "overdue", "due_next"


def _window(which: str, moment: Moment) -> tuple[str | None, str, bool]:
    """The list's due dates: from (None: any), to, and whether `to` itself is in."""
    if which == OVERDUE:
        return None, moment.as_of.isoformat(), False
    following = next_quarter(moment.cycle)
    return following.start.isoformat(), following.cut_off.isoformat(), True


def _open(tasks, which: str, moment: Moment, limit: int | None) -> tuple[list[dict], int]:
    first, last, included = _window(which, moment)
    return tasks.open_due(first, last, included=included, limit=limit)


def task_page(snapshot: Snapshot, moment: Moment, which: str, *, offset: int, limit: int) -> dict:
    """Tasks `offset` to `offset + limit` of one of the status's task lists, in its order."""
    listed, total = _open(snapshot.view or Listed(snapshot.tasks), which, moment, offset + limit)
    return {"list": which, "as_of": moment.as_of.isoformat(), "total": total, "offset": offset, "limit": limit,
            "tasks": [_task_line(t, snapshot) for t in listed[offset:]]}
