"""The numbers of the status and of the report to the Standing Committee, computed
from a Snapshot exactly as the contract defines them. Pure: no I/O, no clock."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
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


def build(snapshot: Snapshot, moment: Moment) -> dict:
    tasks_by_programme, plans_by_programme = defaultdict(list), defaultdict(list)
    for task in snapshot.tasks:
        tasks_by_programme[task["programme"]].append(task)
    for plan in snapshot.plans:
        plans_by_programme[plan["programme"]].append(plan)
    programmes = [_programme(p, snapshot, tasks_by_programme[p["code"]], plans_by_programme[p["code"]], moment)
                  for p in snapshot.programmes]
    units = _units(snapshot, moment)
    return {
        "cycle": moment.cycle.code,
        "kind": moment.cycle.kind,
        "cycle_label": label(moment.cycle),
        "window": {"start": moment.cycle.start.isoformat(), "cut_off": moment.cycle.cut_off.isoformat()},
        "due_date": moment.due_date.isoformat(),
        "as_of": moment.as_of.isoformat(),
        "known_at": moment.known_at,
        "programmes": programmes,
        "deadline_q1_2021": _issuance_deadline(snapshot),
        "indicators": [_indicator(i, snapshot) for i in snapshot.indicators],
        "units": units,
        "reports_summary": {k: sum(u["reports"][k] for u in units) for k in ("expected", "on_time", "late", "missing")},
        "overdue_tasks": _overdue(snapshot, moment.as_of),
        "supervisions": [_supervision(s, snapshot) for s in sorted(snapshot.supervisions, key=lambda s: s["time"])],
        "next_period": _next_period(snapshot, moment),
        "totals": {"tasks": domain.task_counts(snapshot.tasks, moment.as_of),
                   "progress_pct": domain.progress_pct(snapshot.tasks),
                   "plans": {k: sum(p["plans"][k] for p in programmes) for k in ("expected", "submitted", "rejected")}},
    }


def _unit_name(snapshot: Snapshot, code: str | None) -> str | None:
    return (snapshot.units.get(code) or {}).get("name", code) if code else None


def _programme(programme: dict, snapshot: Snapshot, tasks: list[dict], plans: list[dict], moment: Moment) -> dict:
    issued = snapshot.issued.get(programme["code"])
    status = domain.programme_status(programme, issued=issued, tasks=tasks, plans=plans, as_of=moment.as_of)
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


def _units(snapshot: Snapshot, moment: Moment) -> list[dict]:
    expected_units = (snapshot.settings.get("reporting") or {}).get("expected_units", "default")
    overdue = defaultdict(int)
    for task in snapshot.tasks:
        if domain.is_overdue(task, moment.as_of):
            overdue[task["lead_unit"]] += 1
    leads = {task["lead_unit"] for task in snapshot.tasks}
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


def _overdue(snapshot: Snapshot, as_of: date) -> list[dict]:
    overdue = [t for t in snapshot.tasks if domain.is_overdue(t, as_of)]
    return [_task_line(t, snapshot) for t in sorted(overdue, key=lambda t: (t["due_date"], t["task_id"]))]


def _supervision(record: dict, snapshot: Snapshot) -> dict:
    return {"programme": record["programme"], "kind": record["kind"], "source": record["source"],
            "source_name": _unit_name(snapshot, record["source"]), "finding": record["finding"],
            "recommendation": record.get("recommendation"), "unit": record.get("unit"), "time": record["time"]}


def _next_period(snapshot: Snapshot, moment: Moment) -> dict:
    following = next_quarter(moment.cycle)
    start, end = following.start.isoformat(), following.cut_off.isoformat()
    due = [t for t in snapshot.tasks if t["status"] not in domain.CLOSED and start <= t["due_date"] <= end]
    return {"cycle": following.code, "cycle_label": label(following), "cut_off": end,
            "due_date": (moment.next_due_date or following.cut_off + timedelta(days=2)).isoformat(),
            "tasks_due": [_task_line(t, snapshot) for t in sorted(due, key=lambda t: (t["due_date"], t["task_id"]))]}
