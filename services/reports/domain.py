"""Pure roll-up arithmetic, exactly as the contract defines the numbers."""

from __future__ import annotations

from collections import Counter
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Iterable

STATUSES = ("not_started", "in_progress", "completed", "blocked", "cancelled")
CLOSED = ("completed", "cancelled")


def is_overdue(task: dict, as_of: date) -> bool:
    """Not completed/cancelled and its due date is before the as-of date."""
    return task["status"] not in CLOSED and date.fromisoformat(task["due_date"]) < as_of


def task_counts(tasks: Iterable[dict], as_of: date) -> dict:
    tasks = list(tasks)
    by_status = Counter(t["status"] for t in tasks)
    counts = {"total": len(tasks), **{s: by_status.get(s, 0) for s in STATUSES}}
    counts["overdue"] = sum(is_overdue(t, as_of) for t in tasks)
    return counts


def progress_value(task: dict) -> Decimal | None:
    """What a task adds to its programme's progress: None when cancelled, 100 when completed."""
    if task["status"] == "cancelled":
        return None
    return Decimal(100) if task["status"] == "completed" else Decimal(repr(float(task["progress"])))


def mean_pct(total: Decimal, count: int) -> float | None:
    """The mean of `count` progress values summing to `total`, one decimal, half up."""
    if not count:
        return None
    return float((total / count).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def progress_pct(tasks: Iterable[dict]) -> float | None:
    """Mean progress of the non-cancelled tasks, a completed task counting 100; one decimal."""
    values = [v for v in map(progress_value, tasks) if v is not None]
    return mean_pct(sum(values, Decimal(0)), len(values))


def programme_status(programme: dict, *, issued: dict | None, tasks: list[dict], plans: list[dict],
                     as_of: date) -> dict:
    return programme_summary(programme, issued=issued, plans=plans, counts=task_counts(tasks, as_of),
                             progress=progress_pct(tasks))


def programme_summary(programme: dict, *, issued: dict | None, plans: list[dict], counts: dict,
                      progress: float | None) -> dict:
    """A programme's line of the roll-up, from its task counts and progress however they were made."""
    return {
        "code": programme["code"],
        "title": programme["title"],
        "lead_unit": programme.get("lead_unit"),
        "issued": issued is not None,
        "document_no": issued.get("document_no") if issued else None,
        "steering_committee": issued.get("steering_committee") if issued else None,
        "plans": {
            "expected": programme.get("plans_expected", 0),
            "submitted": sum(1 for p in plans if p["submitted"]),
            "rejected": sum(1 for p in plans if not p["submitted"]),
        },
        "tasks": counts,
        "progress_pct": progress,
    }


INDICATOR_STATUSES = ("achieved", "on_track", "at_risk", "off_track", "no_data")
TARGET_YEAR = 2025


def period_year(period: str) -> int:
    return int(period[:4])


def period_end(period: str) -> str:
    """Sortable end of a period: '2021-Q2' -> '2021-06', '2021-H1' -> '2021-06', '2021' -> '2021-12'."""
    year, _, part = period.partition("-")
    month = {"": 12, "H1": 6, "H2": 12, "Q1": 3, "Q2": 6, "Q3": 9, "Q4": 12}[part]
    return f"{year}-{month:02d}"


def latest_value(values: list[dict]) -> dict | None:
    """The value of the most recent period (a yearly figure wins over a quarter ending with it)."""
    if not values:
        return None
    best = max(values, key=lambda v: (period_end(v["period"]), len(v["period"]) == 4))
    return {"period": best["period"], "value": best["value"]}


def indicator_status(indicator: dict, latest: dict | None) -> str:
    """First rule that matches: achieved (at or past the 2025 target), on_track (at or past
    the straight line from the baseline to the 2025 target for the period's year),
    at_risk (at least 90 % of the way that line expects by then), else off_track."""
    target = indicator["targets"].get(str(TARGET_YEAR))
    if latest is None or target is None:
        return "no_data"
    sign = 1 if indicator["direction"] == "increase" else -1
    value = latest["value"]
    if sign * (value - target) >= 0:
        return "achieved"
    baseline = indicator.get("baseline") or {}
    start, start_year = baseline.get("value"), baseline.get("year")
    if start is None or start_year is None or start_year >= TARGET_YEAR:
        return "off_track"
    share = min(max((period_year(latest["period"]) - start_year) / (TARGET_YEAR - start_year), 0.0), 1.0)
    expected = start + (target - start) * share
    if sign * (value - expected) >= 0:
        return "on_track"
    if sign * (value - start) >= 0.9 * sign * (expected - start):
        return "at_risk"
    return "off_track"


def report_status(report: dict | None, due_instant: str, *, by_event_time: bool = False) -> str:
    """A unit's report for a cycle: on time when it was received (its acceptance time) on or before
    the due date, whatever time its sender wrote on it. A replay of past events judges by that
    event time instead: their acceptance times are the day of the replay."""
    if report is None:
        return "missing"
    when = report["time"] if by_event_time else report.get("received_at") or report["time"]
    return "on_time" if when <= due_instant else "late"


# --- the Office's sign-off ---
class BadRequest(ValueError):
    """What was asked cannot be done, and the message says why; nothing was changed."""


NUMBERED = ("approved", "issuing")  # numbered and frozen, not issued yet ("issuing": an earlier version's)


def signoff_status(report: dict) -> str:
    return "approved" if report.get("status") in NUMBERED else report.get("status")


def required_text(text: str, what: str, limit: int) -> str:
    text = (text or "").strip()
    if not text or len(text) > limit:
        raise BadRequest(f"{what} is required, at most {limit:,} characters")
    return text


def not_signable(cycle_code: str, report: dict | None) -> str:
    """Why the report of a cycle cannot be approved or sent back now."""
    status = signoff_status(report) if report else None
    if status is None:
        return (f"the report for {cycle_code} has no draft yet: one is prepared once the units' reports "
                f"for the cycle fall due")
    if status == "returned":
        return f"the draft for {cycle_code} was sent back; the next one is prepared shortly, act on that one"
    return f"the report for {cycle_code} is already approved (Số {report['number']}); it cannot be sent back"
