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


def progress_pct(tasks: Iterable[dict]) -> float | None:
    """Mean progress of the non-cancelled tasks, a completed task counting 100; one decimal."""
    values = [Decimal(100) if t["status"] == "completed" else Decimal(repr(float(t["progress"])))
              for t in tasks if t["status"] != "cancelled"]
    if not values:
        return None
    mean = sum(values) / len(values)
    return float(mean.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def programme_status(programme: dict, *, issued: dict | None, tasks: list[dict], plans: list[dict],
                     as_of: date) -> dict:
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
        "tasks": task_counts(tasks, as_of),
        "progress_pct": progress_pct(tasks),
    }
