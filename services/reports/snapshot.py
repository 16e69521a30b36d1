"""What a report is computed from: the state of every programme, plan, task,
indicator and unit report at one moment. It comes either from the live read model
(now) or from the history (as of a cut-off in event time, as known at a time of
arrival); both give the same Snapshot, and one calculation makes the numbers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Snapshot:
    programmes: list[dict]                 # registry, sorted by code
    units: dict[str, dict]                 # registry, by code
    indicators: list[dict]                 # registry, sorted by code
    settings: dict                         # registry header: term, issuer, reporting
    issued: dict[str, dict]                # programme -> programme.issued data
    plans: list[dict]                      # {programme, submitted: bool, issued_on}
    tasks: list[dict]                      # {task_id, programme, lead_unit, lead_person, title, due_date, status, progress}
    indicator_values: dict[str, list[dict]] = field(default_factory=dict)  # indicator -> [{period, value}]
    unit_reports: dict[str, dict] = field(default_factory=dict)  # unit -> {time, received_at, document_no}
    supervisions: list[dict] = field(default_factory=list)                 # within the cycle's window
    view: Any = None  # what answers for the tasks when they are kept as numbers (live.TallyView), not listed


def latest_by_subject(facts: list[dict]) -> dict[str, dict]:
    """The fact with the highest version for each subject."""
    latest: dict[str, dict] = {}
    for fact in facts:
        current = latest.get(fact["subject"])
        if current is None or fact["version"] > current["version"]:
            latest[fact["subject"]] = fact
    return latest


def unit_reports_from_history(facts: list[dict]) -> dict[str, dict]:
    """Each unit's report for a cycle: the latest it sent, received when its first one was."""
    first: dict[str, str] = {}
    for fact in facts:
        first[fact["subject"]] = min(first.get(fact["subject"], fact["accepted_at"]), fact["accepted_at"])
    return {f["data"]["unit"]: {**f["data"], "received_at": first[f["subject"]]}
            for f in latest_by_subject(facts).values()}


def tasks_from_history(plan_facts: list[dict], task_facts: list[dict]) -> tuple[list[dict], list[dict]]:
    """Plans and tasks as the known plan revisions and status reports make them.

    A plan counts as submitted once a revision was applied, as rejected while only
    rejected submissions are known. The latest applied revision defines its tasks;
    tasks of earlier revisions that it dropped are cancelled."""
    applied = [f for f in plan_facts if f["data"]["status"] == "submitted"]
    current = latest_by_subject(applied)
    plans = [{"programme": f["programme"], "submitted": True, "issued_on": f["data"].get("issued_on")}
             for f in current.values()]
    rejected = {f["subject"]: f for f in plan_facts if f["subject"] not in current}
    plans += [{"programme": f["programme"], "submitted": False} for f in rejected.values()]
    reports = latest_by_subject(task_facts)
    tasks: dict[str, dict] = {}
    for fact in sorted(applied, key=lambda f: f["version"]):
        for task in fact["data"]["tasks"]:
            tasks[task["task_id"]] = {**task, "programme": fact["programme"], "plan": fact["subject"]}
    for task_id, task in tasks.items():
        kept = any(t["task_id"] == task_id for t in current[task["plan"]]["data"]["tasks"])
        report = reports.get(task_id)
        if not kept:
            task.update(status="cancelled", progress=float(report["data"]["progress"]) if report else 0.0)
        elif report is not None:
            task.update(status=report["data"]["status"], progress=float(report["data"]["progress"]))
        else:
            task.update(status="not_started", progress=0.0)
    return plans, list(tasks.values())
