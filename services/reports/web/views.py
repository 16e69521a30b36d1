"""What each page shows, read from the reports service's maintained state: the live roll-up
(`ReportsService.live_status`, kept in memory as changes arrive), the tasks in memory (or their
versions, on a replica that holds only some programmes), a task's reports by its id
(`tasklog`). Nothing here recomputes the roll-up from the tasks; lists are filtered and paged."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Mapping

from shared.cycles import label, parse_cycle

from services.reports import domain, tasklog
from services.reports.service import ReportsService, end_of_day, reporting_cycle
from services.reports.web.auth import PageError
from services.reports.web.users import User

PAGE_SIZE = 50


@dataclass(frozen=True)
class TaskFilter:
    """Which tasks a list shows: by lead unit, status, overdue; which page of them."""

    unit: str | None = None
    status: str | None = None
    overdue: bool = False
    page: int = 1

    def query(self, **change) -> str:
        """This filter as a query string, with `change` applied (for links and pager)."""
        values = {"unit": self.unit, "status": self.status, "overdue": "1" if self.overdue else None,
                  "page": None if self.page == 1 else str(self.page)} | change
        return "&".join(f"{k}={v}" for k, v in values.items() if v not in (None, "", False))


def task_filter(query: Mapping[str, str], *, units: Mapping[str, dict]) -> TaskFilter:
    """The filter a query string asks for; 400 naming each bad parameter."""
    problems = []
    unit, status = query.get("unit") or None, query.get("status") or None
    if unit is not None and unit not in units:
        problems.append(f"không có đơn vị {unit!r}")
    if status is not None and status not in domain.STATUSES:
        problems.append(f"tình trạng {status!r} không có; chọn một trong {', '.join(domain.STATUSES)}")
    overdue = query.get("overdue") or ""
    if overdue not in ("", "0", "1"):
        problems.append("overdue chỉ nhận 0 hoặc 1")
    page = query.get("page") or "1"
    if not page.isdigit() or not 1 <= int(page) <= 100_000:
        problems.append(f"trang {page!r} phải là số nguyên dương")
    if problems:
        raise PageError(400, "Tham số lọc không hợp lệ: " + "; ".join(problems) + ".")
    return TaskFilter(unit=unit, status=status, overdue=overdue == "1", page=int(page))


def _paged(tasks: list[dict], flt: TaskFilter, today: date) -> dict:
    chosen = [t for t in tasks if (flt.unit is None or t["lead_unit"] == flt.unit)
              and (flt.status is None or t["status"] == flt.status)
              and (not flt.overdue or domain.is_overdue(t, today))]
    chosen.sort(key=lambda t: (t["due_date"], t["task_id"]))
    pages = max(1, -(-len(chosen) // PAGE_SIZE))
    if flt.page > pages:
        raise PageError(400, f"Trang {flt.page} không có: danh sách có {pages} trang.")
    first = (flt.page - 1) * PAGE_SIZE
    rows = [{**t, "overdue": domain.is_overdue(t, today)} for t in chosen[first:first + PAGE_SIZE]]
    return {"rows": rows, "total": len(chosen), "first": first + 1 if rows else 0, "last": first + len(rows),
            "page": flt.page, "pages": pages, "filter": flt}


async def overview(*, service: ReportsService) -> dict:
    """The whole programme at a glance: the live status, exactly as GET /v1/status gives it."""
    return {"status": await service.live_status()}


async def _snapshot(service: ReportsService):
    cycle = reporting_cycle(service.clock.today())
    return await service.store.live(cycle=cycle.code,
                                    window_start=end_of_day(cycle.start - timedelta(days=1), service.clock))


async def programme(*, service: ReportsService, code: str, query: Mapping[str, str], user: User) -> dict:
    """A programme, its plans and its tasks filtered and paged; a unit sees only its own tasks."""
    snapshot = await _snapshot(service)
    found = next((p for p in snapshot.programmes if p["_id"] == code), None)
    if found is None:
        raise PageError(404, f"Không có chương trình {code!r}.")
    flt = task_filter(query, units=snapshot.units)
    if user.role == "unit":
        flt = TaskFilter(unit=user.unit, status=flt.status, overdue=flt.overdue, page=flt.page)
    today = service.clock.today()
    counts = snapshot.view.counts(code, today.isoformat())
    plans = sorted((p for p in snapshot.plans if p["programme"] == code and user.sees_unit(_plan_unit(p))),
                   key=lambda p: p["_id"])
    return {"programme": found, "issued": snapshot.issued.get(code), "units": snapshot.units,
            "counts": counts, "progress": snapshot.view.progress(code), "plans": plans,
            "tasks": _paged(await service.store.tasks_where(programme=code), flt, today),
            "own_tasks_only": user.role == "unit"}


def _plan_unit(plan: dict) -> str:
    return plan["_id"].split("|", 1)[0]  # a plan is kept as "unit|plan id"


async def task(*, service: ReportsService, task_id: str, user: User) -> dict:
    """A task: who answers for it, its roadmap and due date, and every report applied to it."""
    found = await service.store.tasks_where(task_id=task_id)
    if not found:
        raise PageError(404, f"Không có nhiệm vụ {task_id!r}.")
    current = found[0]
    if not user.sees_unit(current["lead_unit"]):
        raise PageError(403, "Nhiệm vụ này do đơn vị khác chủ trì; tài khoản của đơn vị chỉ xem nhiệm vụ của mình.")
    snapshot = await _snapshot(service)
    return {"task": current, "overdue": domain.is_overdue(current, service.clock.today()),
            "units": snapshot.units, "history": await tasklog.history(service.store.db, task_id, current["seq"])}


async def units(*, service: ReportsService, report: str | None) -> dict:
    """Every unit with its report for the current cycle and its overdue tasks; `report` filters
    them by that report's status (expected, on_time, late, missing)."""
    status = (await overview(service=service))["status"]
    if report not in (None, "", "expected", "on_time", "late", "missing"):
        raise PageError(400, f"Tình trạng báo cáo {report!r} không có; chọn expected, on_time, late hoặc missing.")
    rows = [u for u in status["units"] if not report or u["reports"][report]]
    return {"status": status, "rows": rows, "report": report or None}


async def unit(*, service: ReportsService, code: str, query: Mapping[str, str]) -> dict:
    """A unit: its plans, tasks (filtered, paged), overdue tasks, reports per cycle."""
    snapshot = await _snapshot(service)
    if code not in snapshot.units:
        raise PageError(404, f"Không có đơn vị {code!r}.")
    flt = task_filter({**query, "unit": code}, units=snapshot.units)
    today = service.clock.today()
    tasks = await service.store.tasks_where(lead_unit=code)
    return {"unit": snapshot.units[code], "code": code, "units": snapshot.units,
            "plans": sorted((p for p in snapshot.plans if _plan_unit(p) == code), key=lambda p: p["_id"]),
            "tasks": _paged(tasks, flt, today), "task_count": len(tasks), "overdue": sum(domain.is_overdue(t, today) for t in tasks),
            "cycles": await _unit_cycles(service, code, snapshot.settings)}


async def _unit_cycles(service: ReportsService, code: str, settings: dict) -> list[dict]:
    """The unit's report for each cycle whose cut-off has come, judged as the roll-up judges it."""
    _, cycles = await service.cycles_of_term()
    today, rows = service.clock.today(), []
    cycles = [c for c in cycles if c.cut_off < today]
    reports = await service.store.unit_reports_of(code, [c.code for c in cycles])
    for cycle in cycles:
        due = service.report_due(cycle=cycle, settings=settings)
        report = reports.get(cycle.code)
        status = domain.report_status(report, end_of_day(due, service.clock),
                                      by_event_time=service.clock.fixed is not None) if due < today or report else None
        rows.append({"cycle": cycle.code, "label": label(cycle), "due": due.isoformat(), "report": report,
                     "status": status})
    return rows


async def indicators(*, service: ReportsService) -> dict:
    """Each indicator against its baseline and 2025 target, with the values reported so far."""
    status = (await overview(service=service))["status"]
    snapshot = await _snapshot(service)
    rows = []
    for indicator in status["indicators"]:
        values = sorted(snapshot.indicator_values.get(indicator["code"], []), key=lambda v: domain.period_end(v["period"]))
        values = [{"period": v["period"], "value": v["value"]} for v in values]
        rows.append({**indicator, "values": values, "chart": trajectory(indicator, values)})
    return {"status": status, "rows": rows}


def _year(period: str) -> float:
    """Where a period ends on a year axis: 2021-Q2 -> 2021.5, 2021-H1 -> 2021.5, 2021 -> 2022."""
    month = int(domain.period_end(period)[5:])
    return int(period[:4]) + month / 12


def trajectory(indicator: dict, values: list[dict], *, width: float = 180, height: float = 50) -> dict | None:
    """A small chart in SVG coordinates, 2020 to 2025: the straight line from the baseline to
    the 2025 target, the target's mark, a dot per reported value."""
    baseline, target = indicator.get("baseline"), indicator.get("target_2025")
    numbers = [v["value"] for v in values] + ([baseline["value"]] if baseline else []) + \
        ([target] if target is not None else [])
    if not numbers:
        return None
    low, span = min(numbers), (max(numbers) - min(numbers)) or 1

    def at(year: float, value: float) -> tuple[float, float]:
        x = 10 + (min(max(year, 2020), 2026) - 2020) * (width - 20) / 6
        return round(x, 1), round(height - 6 - (value - low) * (height - 12) / span, 1)

    line = (*at(baseline["year"] + 1, baseline["value"]), *at(2026, target)) if baseline and target is not None else None
    return {"line": line, "target": at(2026, target) if target is not None else None,
            "dots": [at(_year(v["period"]), v["value"]) for v in values]}


def cycle_or_404(code: str):
    try:
        return parse_cycle(code)
    except ValueError as err:
        raise PageError(404, f"Không có kỳ báo cáo {code!r}: {err}") from err

