"""Use cases of the reports service: the live status roll-up."""

from __future__ import annotations

from collections import defaultdict

from shared.clock import Clock

from services.reports import domain
from services.reports.store import ReportsStore

# Units expected to report by default (contract section 5).
DEFAULT_REPORTING_KINDS = ("department", "district")
DEFAULT_REPORTING_UNITS = ("HDND", "UBND", "MTTQ")


async def live_status(*, store: ReportsStore, clock: Clock) -> dict:
    """The roll-up of everything applied so far, as of today."""
    as_of = clock.today()
    tasks, plans = await store.tasks(), await store.plans()
    issued = await store.issued()
    tasks_by_programme, plans_by_programme = defaultdict(list), defaultdict(list)
    for task in tasks:
        tasks_by_programme[task["programme"]].append(task)
    for plan in plans:
        plans_by_programme[plan["programme"]].append(plan)
    lead_units = {task["lead_unit"] for task in tasks}
    overdue_by_unit = defaultdict(int)
    for task in tasks:
        if domain.is_overdue(task, as_of):
            overdue_by_unit[task["lead_unit"]] += 1
    programmes = [
        domain.programme_status(p | {"code": p["_id"]}, issued=issued.get(p["_id"]),
                                tasks=tasks_by_programme[p["_id"]], plans=plans_by_programme[p["_id"]],
                                as_of=as_of)
        for p in await store.programmes()
    ]
    indicators = [
        {"code": i["_id"], "name": i["name"], "latest": None, "target_2025": i["targets"].get("2025"),
         "status": "no_data"}
        for i in await store.indicators()
    ]
    units = [
        {"code": u["_id"], "name": u["name"],
         "reports": {"expected": 0, "on_time": 0, "late": 0, "missing": 0},
         "tasks_overdue": overdue_by_unit.get(u["_id"], 0)}
        for u in await store.units()
        if u.get("kind") in DEFAULT_REPORTING_KINDS or u["_id"] in DEFAULT_REPORTING_UNITS
        or u["_id"] in lead_units
    ]
    return {"as_of": as_of.isoformat(), "cycle": None, "programmes": programmes,
            "indicators": indicators, "units": units}
