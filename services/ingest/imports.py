"""Rows of an uploaded spreadsheet turned into the contract's events (pure: no I/O).

Each row of a progress, indicator or report sheet is one event; a plan is its row on
`Kế hoạch` with its tasks (`Nhiệm vụ`) and their milestones (`Lộ trình`). An event's id
is made of its sheet, its row and a hash of what it says, so the same row uploaded again
is the same event (a duplicate) and a row that changed is a new one. Its `time` is the
end of the day the row gives (issued, as of, reported, sent), or now when that is today.

A file with any bad cell is refused whole (`cells.CellErrors`). What the event schema
refuses beyond the cells is named the same way: each event knows which cell each of
its fields came from (`Draft.where`)."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import orjson

from services.ingest import sheets
from services.ingest.cells import CellErrors, Row, Rows, cell_error, complete, optional, rows_of
from services.ingest.sheets import INDICATORS, MILESTONES, PLANS, PROGRESS, REPORTS, TASKS, Sheet

# A task's fields in a plan event -> the column of `Nhiệm vụ` they come from.
TASK_FIELDS = {"task_id": "task_id", "title": "title", "lead_unit": "lead_unit", "lead_person/name": "lead_person",
               "lead_person/position": "lead_position", "coordinating_units": "coordinating_units",
               "due_date": "due_date", "milestones": "task_id"}


@dataclass
class Draft:
    """An event made of rows, and the cell each of its fields came from (JSON pointer -> cell)."""

    sheet: Sheet
    row: int
    type: str
    data: dict
    day: date
    cells: dict[str, str] = field(default_factory=dict)

    def where(self, pointer: str) -> str:
        """The cell a pointer into the event (as the schema names it) came from."""
        parts = pointer.strip("/").split("/")
        for n in range(len(parts), 0, -1):
            if (found := self.cells.get("/" + "/".join(parts[:n]))) is not None:
                return found
        return sheets.cell(self.sheet, self.sheet.columns[0].key, self.row)

    def envelope(self, *, unit: str, tz: str, now: datetime) -> dict:
        digest = hashlib.sha256(orjson.dumps([self.type, self.data], option=orjson.OPT_SORT_KEYS)).hexdigest()
        moment = min(now, datetime.combine(self.day, time(23, 59, 59), tzinfo=ZoneInfo(tz)))
        return {"specversion": "1.0", "id": f"xlsx-{self.sheet.slug}-{self.row}-{digest[:16]}", "source": unit,
                "type": self.type, "time": moment.isoformat(timespec="seconds"),
                "datacontenttype": "application/json", "data": self.data}


def drafts(rows: Rows, *, unit: str, workbook_unit: str | None, known_units: frozenset[str]) -> list[Draft]:
    """The events the filled-in rows make, in sheet order (plans before the progress of their
    tasks); CellErrors naming every bad cell when there is any."""
    errors: list[dict] = []
    if workbook_unit and workbook_unit != unit:
        errors.append(cell_error(f"{sheets.INSTRUCTIONS}!{sheets.UNIT_CELL}", "forbidden",
                                 f"tệp này lập cho đơn vị {workbook_unit}, không phải {unit}",
                                 f"this file was made for unit {workbook_unit}, not {unit}"))
    read = {title: rows_of(sheets.SHEETS[title], raw, known_units, errors) for title, raw in rows.items()}
    made = _plans(read, errors) if PLANS.title in read else []
    for sheet, build in ((PROGRESS, _progress), (INDICATORS, _indicator), (REPORTS, _report)):
        made += [build(row) for row in read.get(sheet.title, ()) if complete(row, sheet)]
    if errors:
        raise CellErrors(errors)
    return made


def _progress(row: Row) -> Draft:
    v = row.values
    data = {"task_id": v["task_id"], "programme": v["programme"], "status": v["status"], "progress": v["progress"],
            "as_of": v["as_of"].isoformat(), **optional(v, "note"),
            "reported_by": {"name": v["reporter"], "position": v["reporter_position"]}}
    cells = row.pointers(**{"/data/task_id": "task_id", "/data/programme": "programme", "/data/status": "status",
                            "/data/progress": "progress", "/data/as_of": "as_of", "/data/note": "note",
                            "/data/reported_by/name": "reporter", "/data/reported_by/position": "reporter_position",
                            "/time": "as_of"})
    return Draft(row.sheet, row.number, "task.updated", data, v["as_of"], cells)


def _indicator(row: Row) -> Draft:
    v = row.values
    data = {"indicator": v["indicator"], "period": v["period"], "value": v["value"], **optional(v, "note")}
    cells = row.pointers(**{"/data/indicator": "indicator", "/data/period": "period", "/data/value": "value",
                            "/data/note": "note", "/time": "reported_on"})
    return Draft(row.sheet, row.number, "indicator.reported", data, v["reported_on"], cells)


def _report(row: Row) -> Draft:
    v = row.values
    texts = ("summary", "achievements", "shortcomings", "proposals")
    data = {"cycle": v["cycle"], "document_no": v["document_no"], **optional(v, *texts)}
    cells = row.pointers(**{"/data/cycle": "cycle", "/data/document_no": "document_no", "/time": "sent_on",
                            **{f"/data/{t}": t for t in texts}})
    return Draft(row.sheet, row.number, "unit-report.submitted", data, v["sent_on"], cells)


def _under(rows, parents: dict, key: str, sheet: str, code: str, vi: str, en: str,
           errors: list[dict]) -> defaultdict[str, list[Row]]:
    """`rows` filed under the parent their `key` names; one naming a parent `sheet` lacks is a bad cell."""
    filed = defaultdict(list)
    for row in rows:
        if row.values.get(key) in parents:
            filed[row.values[key]].append(row)
        elif key in row.values:
            errors.append(cell_error(row.cell(key), code, f"trang {sheet} không có {vi} {row.values[key]}",
                                     f"no {en} {row.values[key]} on sheet {sheet}"))
    return filed


def _plans(read: dict[str, list[Row]], errors: list[dict]) -> list[Draft]:
    """One plan.submitted per row of `Kế hoạch`, with its tasks and their milestones."""
    plans = _unique(read.get(PLANS.title, []), PLANS, "plan_id", errors)
    tasks = _unique(read.get(TASKS.title, []), TASKS, "task_id", errors)
    by_plan = _under(tasks.values(), plans, "plan_id", PLANS.title, "unknown_plan", "kế hoạch", "plan", errors)
    roadmap = _under(read.get(MILESTONES.title, []), tasks, "task_id", TASKS.title, "unknown_task", "nhiệm vụ",
                     "task", errors)
    for task_id, task in tasks.items():
        if not roadmap[task_id]:
            errors.append(cell_error(task.cell("task_id"), "roadmap_missing",
                                     f"thiếu lộ trình: trang {MILESTONES.title} chưa có mốc nào của nhiệm vụ này",
                                     f"roadmap missing: no milestone of this task on sheet {MILESTONES.title}"))
    made = []
    for plan_id, plan in plans.items():
        if not by_plan[plan_id]:
            errors.append(cell_error(plan.cell("plan_id"), "no_tasks",
                                     f"kế hoạch chưa có nhiệm vụ nào trên trang {TASKS.title}",
                                     f"the plan has no task on sheet {TASKS.title}"))
        elif complete(plan, PLANS) and all(complete(t, TASKS) for t in by_plan[plan_id]):
            made.append(_plan(plan, by_plan[plan_id], roadmap))
    return made


def _unique(rows: list[Row], sheet: Sheet, key: str, errors: list[dict]) -> dict[str, Row]:
    """The rows by their code; a code given twice is named at its second row."""
    found: dict[str, Row] = {}
    for row in rows:
        code = row.values.get(key)
        if code is None:
            continue
        if code in found:
            errors.append(cell_error(row.cell(key), "duplicate_code",
                                     f"mã {code} trùng với dòng {found[code].number}",
                                     f"code {code} is also on row {found[code].number}"))
            continue
        found[code] = row
    return found


def _plan(plan: Row, tasks: list[Row], roadmap: dict[str, list[Row]]) -> Draft:
    v = plan.values
    data = {"plan_id": v["plan_id"], "programme": v["programme"], "title": v["title"],
            "document_no": v["document_no"], "issued_on": v["issued_on"].isoformat(), "tasks": []}
    cells = plan.pointers(**{f"/data/{k}": k for k in ("plan_id", "programme", "title", "document_no", "issued_on")},
                          **{"/time": "issued_on"})
    for i, task in enumerate(tasks):
        t, milestones = task.values, roadmap[task.values["task_id"]]
        data["tasks"].append({
            "task_id": t["task_id"], "title": t["title"], "lead_unit": t["lead_unit"],
            "lead_person": {"name": t["lead_person"], "position": t["lead_position"]},
            **optional(t, "coordinating_units"), "due_date": t["due_date"].isoformat(),
            "milestones": [{"title": m.values["title"], "due_date": m.values["due_date"].isoformat()}
                           for m in milestones]})
        cells |= {f"/data/tasks/{i}/{f}": task.cell(key) for f, key in TASK_FIELDS.items()}
        for j, m in enumerate(milestones):
            cells |= {f"/data/tasks/{i}/milestones/{j}/{f}": m.cell(f) for f in ("title", "due_date")}
    return Draft(plan.sheet, plan.number, "plan.submitted", data, v["issued_on"], cells)
