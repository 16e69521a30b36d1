"""What the reports service shows Prometheus about the term: each programme's tasks,
plans and progress (10 programmes, a handful of statuses: low cardinality), and the
reporting cycles whose report is overdue, for the alert that no report was issued."""

from __future__ import annotations

import time

from shared import metrics

from services.reports.service import ReportsService

TASK_STATUSES = ("not_started", "in_progress", "completed", "blocked", "cancelled", "overdue")
PLAN_STATES = ("expected", "submitted", "rejected")


def record_status(status: dict) -> None:
    """Set the programme gauges from a live roll-up (`GET /v1/status`)."""
    for programme in status["programmes"]:
        code, tasks = programme["code"], programme["tasks"]
        for name in TASK_STATUSES:
            metrics.PROGRAMME_TASKS.labels(programme=code, status=name).set(tasks.get(name, 0))
        for name in PLAN_STATES:
            metrics.PROGRAMME_PLANS.labels(programme=code, state=name).set(programme["plans"].get(name, 0))
        metrics.PROGRAMME_PROGRESS.labels(programme=code).set(programme["progress_pct"] or 0)
        metrics.PROGRAMME_ISSUED.labels(programme=code).set(1 if programme["issued"] else 0)


def record_generated(trigger: str, fmt: str, started: float) -> None:
    """A report was built and rendered (request) or issued (issue) since `started` (perf_counter)."""
    metrics.REPORT_SECONDS.labels(format=fmt, trigger=trigger).observe(time.perf_counter() - started)
    metrics.REPORT_LAST_SUCCESS.labels(trigger=trigger).set_to_current_time()


async def refresh(service: ReportsService) -> None:
    """The periodic update: the programme gauges and the overdue reports."""
    record_status(await service.live_status())
    count, oldest_s = await service.overdue_reports()
    metrics.REPORTS_OVERDUE.set(count)
    metrics.REPORT_OVERDUE_SECONDS.set(oldest_s)
