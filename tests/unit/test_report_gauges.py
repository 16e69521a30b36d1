"""The reports service's gauges: overdue reports by the service's clock, and the programme
gauges set from a live roll-up."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from prometheus_client import REGISTRY

from shared.clock import Clock
from shared.cycles import due_date, parse_cycle

from services.reports import gauges
from services.reports.service import ReportsService

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")


class Store:
    def __init__(self, issued: set[str]):
        self.issued = issued

    async def settings(self) -> dict:
        return {"term": {"start": "2020-11-02", "end": "2025-12-31"}}  # as in the Hanoi registry

    async def issued_cycles(self) -> set[str]:
        return self.issued


def service(now: datetime, issued: set[str]) -> ReportsService:
    return ReportsService(Store(issued), Clock(fixed=now), due_working_days=2)


async def test_a_cycle_past_its_due_date_without_an_issued_report_is_overdue():
    due = due_date(parse_cycle("2021-Q1"), 2)
    now = datetime.combine(due + timedelta(days=3), time(9), tzinfo=HANOI)
    count, seconds = await service(now, set()).overdue_reports()
    assert count == 1
    assert seconds == (now - datetime.combine(due, time.max, tzinfo=HANOI)).total_seconds()
    assert await service(now, {"2021-Q1"}).overdue_reports() == (0, 0.0)


async def test_nothing_is_overdue_on_the_due_date_itself():
    due = due_date(parse_cycle("2021-Q1"), 2)
    assert await service(datetime.combine(due, time(23, 0), tzinfo=HANOI), set()).overdue_reports() == (0, 0.0)


def test_the_programme_gauges_follow_the_roll_up():
    programme = {"code": "07", "issued": True, "progress_pct": 37.5,
                 "plans": {"expected": 3, "submitted": 2, "rejected": 1},
                 "tasks": {"total": 4, "not_started": 1, "in_progress": 2, "completed": 1, "blocked": 0,
                           "cancelled": 0, "overdue": 1}}
    gauges.record_status({"programmes": [programme]})
    sample = lambda name, **labels: REGISTRY.get_sample_value(name, {"programme": "07", **labels})  # noqa: E731
    assert sample("nqt_programme_tasks", status="in_progress") == 2
    assert sample("nqt_programme_tasks", status="overdue") == 1
    assert sample("nqt_programme_plans", state="rejected") == 1
    assert sample("nqt_programme_progress_pct") == 37.5
    assert sample("nqt_programme_issued") == 1
    gauges.record_status({"programmes": [{**programme, "progress_pct": None, "issued": False}]})
    assert sample("nqt_programme_progress_pct") == 0 and sample("nqt_programme_issued") == 0
