"""Benchmark: the report to the Standing Committee on a Hanoi-sized term.

Builds a whole term (2021 to the replay clock's "now", 1 May 2025) straight into
the reports service's own collections, exactly as the service would hold them
after consuming `programs.changes`, then times the report for the current cycle
(live read model), for a past cycle as known at a past instant (history), each
as JSON, HTML and PDF, and the live status. Every figure is printed as
min/median/max over --repeat runs and next to a raw baseline measured in the same
run on the same database: the driver alone reading the same documents.

    .venv/bin/python bench/reports.py                          # full size, 3 runs
    .venv/bin/python bench/reports.py --scale 0.02 --repeat 2  # a quick check
    NQT_MONGO_URL=mongodb://127.0.0.1:27017 .venv/bin/python bench/reports.py --db nqt_bench_term --profile
        # load once into a kept database, reuse it on the next runs; + py-spy profiles of the reports

Full size (--scale 1): the 63 registry units plus generated sub-units (about 120),
the 10 programmes, 20 sample indicators, about 1,000 plans with 20,000 tasks and
1,000,000 task status reports over 2021-2025, indicator values, unit reports for
every cycle due so far and some supervision findings. --scale shrinks plans,
tasks and reports; the registry, indicators and unit reports stay full size.

It starts its own FerretDB on a free 127.0.0.1 port in a temporary directory
(or uses NQT_MONGO_URL, in a database of its own that it drops at the end), and
needs no Kafka. Nothing is asserted: it measures and prints.

How the data is written: every document comes from a change record shaped as
the programs service publishes it (services/programs/service.py `_change`), and
is written with `insert_many` through functions mirroring what
`ReportsStore.apply_change` does with it (`history_doc`, `task_doc`, `mirror`);
the timeline of the status reports is folded by `timeline.build` itself, in the
order the consumer applies them (`TimelineFold`). (Going through `apply_change`
itself would take days on FerretDB 1.24, whose updates scan the whole collection.) A sample of every kind of change, and the
whole timeline of some tasks, is also replayed through the real `apply_change`
into a scratch database and compared document by document ("shape check").
After loading, the current cycle's report is computed both from the live read
model and from the whole history as known now; the two must agree ("consistency
check").

The data is loaded by a child process, so that the peak RSS printed at the end
is that of the process generating the reports only.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import re
import multiprocessing
import os
import random
import resource
import secrets
import shutil
import statistics
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import harness, profiles  # noqa: E402
from deploy.local import infra  # noqa: E402
from shared import mongo  # noqa: E402
from shared.clock import Clock  # noqa: E402
from shared.cycles import due_date, parse_cycle, term_cycles  # noqa: E402
from shared.events import RegistryUnit, utc_iso  # noqa: E402
from shared.registry import expected_to_report, load_events  # noqa: E402

from services.reports import handlers, timeline, timeline_query  # noqa: E402
from services.reports.service import ReportsService, end_of_day, parse_known_at  # noqa: E402
from services.reports.snapshot import tasks_from_history  # noqa: E402
from services.reports import live  # noqa: E402
from services.reports.store import FACT_KINDS, INDEXES, REGISTRY_KINDS, ReportsStore  # noqa: E402

REGISTRY = ROOT / "deploy" / "registry" / "hanoi-xvii.yaml"
HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = datetime(2025, 5, 1, 9, 0, tzinfo=HANOI)          # the replay clock
CURRENT_CYCLE = "2025-Q2"                                  # running on NOW: live read model
PAST_CYCLE, PAST_KNOWN_AT = "2023-Q1", "2023-04-05"        # history, as known that day
FULL = {"plans": 1_000, "tasks": 20_000, "reports": 1_000_000}
UNITS_WANTED = 120
SUPERVISIONS = 60
BATCH = 5_000
TARGETS = {"current": {"json": 1.0, "pdf": 5.0},          # seconds, per report (the project's targets):
           "past": {"json": 2.0, "pdf": 6.0}}              # a past cycle reads its timeline
OFFICE = "VPTU"

DAY0 = date(2020, 1, 1)
BASE = int(datetime(2020, 1, 1, tzinfo=HANOI).timestamp())  # Hanoi keeps UTC+7 all year
NOW_TS = int(NOW.timestamp())
NOW_DAY = (NOW.date() - DAY0).days
TERM_END_DAY = (date(2025, 12, 31) - DAY0).days

SURNAMES = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đỗ", "Bùi", "Đặng", "Ngô", "Dương", "Lý"]
MIDDLE = ["Văn", "Thị", "Đức", "Minh", "Thu", "Quang", "Thanh", "Ngọc", "Hữu", "Xuân", "Hồng", "Tiến"]
GIVEN = ["An", "Bình", "Cường", "Dũng", "Hà", "Hải", "Hương", "Lan", "Long", "Mai", "Nam", "Phương",
         "Quân", "Sơn", "Thắng", "Trang", "Tuấn", "Yến", "Hùng", "Linh"]
POSITIONS = ["Giám đốc", "Phó Giám đốc", "Chủ tịch UBND", "Phó Chủ tịch UBND", "Trưởng phòng",
             "Phó Trưởng phòng", "Chánh Văn phòng", "Trưởng ban", "Phó Trưởng ban"]
VERBS = ["Triển khai", "Hoàn thiện", "Rà soát, sửa đổi", "Xây dựng và ban hành", "Tổ chức thực hiện",
         "Đẩy mạnh", "Nâng cao hiệu quả", "Tổng kết, đánh giá", "Kiểm tra, đôn đốc", "Hoàn thành"]
OBJECTS = ["đề án chuyển đổi số trong các cơ quan nhà nước", "kế hoạch cải cách hành chính",
           "quy hoạch phân khu đô thị", "dự án cải tạo, xây dựng lại chung cư cũ",
           "chương trình xây dựng nông thôn mới nâng cao", "hệ thống thu gom, xử lý nước thải tập trung",
           "cơ chế hỗ trợ doanh nghiệp khởi nghiệp đổi mới sáng tạo", "dự án tuyến đường sắt đô thị",
           "mạng lưới trường học đạt chuẩn quốc gia", "công tác phòng, chống tham nhũng, lãng phí",
           "công tác bồi thường, hỗ trợ, giải phóng mặt bằng", "cơ sở dữ liệu đất đai, dân cư",
           "chương trình phát triển văn hóa đọc", "mô hình dân vận khéo ở cơ sở", "hệ thống y tế cơ sở",
           "công tác quản lý trật tự xây dựng", "việc sắp xếp, tinh gọn tổ chức bộ máy",
           "kế hoạch phát triển du lịch, dịch vụ", "chương trình giảm nghèo bền vững",
           "việc chỉnh trang hè phố, chiếu sáng đô thị"]
SUFFIXES = ["trên địa bàn", "giai đoạn 2021-2025", "theo lộ trình đã đề ra", "của đơn vị",
            "theo chỉ đạo của Thành ủy", "bảo đảm tiến độ, chất lượng"]
BLOCKERS = ["Vướng mắc về giải phóng mặt bằng, chờ thành phố cho ý kiến.",
            "Chưa bố trí được nguồn vốn thực hiện.", "Chờ sửa đổi văn bản quy phạm pháp luật của Trung ương."]
FINDINGS = ["Tiến độ thực hiện còn chậm so với kế hoạch, chưa công khai kết quả cho người dân.",
            "Việc phối hợp giữa các cơ quan còn thiếu chặt chẽ; một số nhiệm vụ chưa rõ cá nhân chịu trách nhiệm.",
            "Công tác tuyên truyền đến cơ sở chưa được quan tâm đúng mức."]


def iso(ts: int) -> str:
    return utc_iso(datetime.fromtimestamp(ts, timezone.utc))


def day_iso(day: int) -> str:
    return (DAY0 + timedelta(days=day)).isoformat()


def day_of(d: date) -> int:
    return (d - DAY0).days


def hanoi_day(ts: int) -> str:
    return day_iso((ts - BASE) // 86400)


def at(day: int, rng: random.Random) -> int:
    """An instant in working hours (08:00-17:00 Hanoi) of a day."""
    return BASE + day * 86400 + 8 * 3600 + rng.randrange(9 * 3600)


def arrival_delay(rng: random.Random, ts: int) -> int:
    """Seconds until ingest accepted the event: minutes, sometimes days (a unit's late batch);
    never after the replay clock's now."""
    delay = rng.randint(86400, 15 * 86400) if rng.random() < 0.04 else rng.randint(5, 1800)
    return max(0, min(delay, NOW_TS - 1 - ts))


def stamp(source: str, event_id: str, ts: int, delay: int) -> dict:
    """The fields a change record takes from its event: key, both clocks, version."""
    key = f"{source}:{event_id}"
    event_time = iso(ts)
    return {"event_key": key, "event_time": event_time, "accepted_at": iso(ts + delay),
            "version": f"{event_time}|{key}"}


def change(kind: str, id: str, state: dict, st: dict, *, programme: str | None = None, seq: int = 0,
           old: dict | None = None) -> dict:
    """A `programs.changes` record, as services/programs/service.py `_change` makes it."""
    return {"kind": kind, "id": id, "programme": programme, "seq": seq, "state": state, "old": old, **st}


# --- the two bulk writes, mirroring ReportsStore._keep_fact and ReportsStore._apply_task ---

def history_doc(ch: dict) -> dict:
    kind = "task_report" if ch["kind"] == "task" else ch["kind"]
    data = ch.get("fact") or ch["state"]
    return {"_id": ch["event_key"], "kind": kind, "subject": ch["id"], "programme": ch["programme"],
            "version": ch["version"], "event_time": ch["event_time"], "accepted_at": ch["accepted_at"],
            "data": data}


def task_doc(ch: dict) -> dict:
    return live.task_doc(ch)


VERSIONED = {"programme_issued": "issued", "indicator_value": "indicator_values", "unit_report": "unit_reports"}


def mirror(changes: list[dict]) -> tuple[list[dict], dict[str, dict[str, dict]]]:
    """What ReportsStore.apply_change leaves after `changes` (not task changes), in arrival order:
    the history facts, and the read-model documents by collection and _id."""
    facts: dict[str, dict] = {}
    docs: dict[str, dict[str, dict]] = {}
    for ch in changes:
        kind, key, state = ch["kind"], ch["id"], ch["state"]
        if kind in REGISTRY_KINDS:               # update_one $set, upsert
            coll = docs.setdefault(REGISTRY_KINDS[kind], {})
            coll[key] = {**coll.get(key, {"_id": key}), **state}
            continue
        if kind in FACT_KINDS or ch.get("fact") is not None:
            facts.setdefault(ch["event_key"], history_doc(ch))   # insert_once
        if kind == "plan":
            plans = docs.setdefault("plans", {})
            if state["status"] == "submitted":
                plans[key] = {**plans.get(key, {"_id": key}), "programme": ch["programme"], "submitted": True,
                              "issued_on": state.get("issued_on")}
            else:
                plans.setdefault(key, {"_id": key, "programme": ch["programme"], "submitted": False})
        elif kind in VERSIONED:                  # guarded by version
            coll = docs.setdefault(VERSIONED[kind], {})
            if key not in coll or coll[key]["version"] < ch["version"]:
                coll[key] = {**coll.get(key, {"_id": key}), **state, "version": ch["version"]}
            if kind == "unit_report":            # $min received_at
                coll[key]["received_at"] = min(coll[key].get("received_at", ch["accepted_at"]), ch["accepted_at"])
        elif kind == "supervision":
            docs.setdefault("supervisions", {}).setdefault(key, {"_id": key, **state})
    return list(facts.values()), docs


# --- the term ---

@dataclass
class Plan:
    n: int
    source: str
    programme: str
    day: int
    ts: int
    delay: int
    tasks: list["Task"] = field(default_factory=list)
    revision: tuple[int, int] | None = None      # (ts, delay) of the revision that drops the last task
    rejected_before: tuple[int, int] | None = None

    @property
    def plan_id(self) -> str:
        return f"KH-{self.programme}-{self.n:04d}"

    @property
    def key(self) -> str:
        return f"{self.source}|{self.plan_id}"

    def event_id(self, suffix: str = "") -> str:
        return f"{self.source}-KH-{self.n:04d}{suffix}"

    def stamp(self) -> dict:
        return stamp(self.source, self.event_id(), self.ts, self.delay)

    def revision_stamp(self) -> dict:
        return stamp(self.source, self.event_id("-R1"), *self.revision)


@dataclass
class Task:
    idx: int
    plan: Plan
    task_id: str
    lead_unit: str
    title: str
    lead_person: dict
    due_day: int
    reporter: dict
    fate: str = "in_progress"     # completed | in_progress | blocked | not_started
    final_progress: float = 0.0
    start_day: int = 0
    end_day: int = 0
    times: list[int] = field(default_factory=list)    # event times of its status reports, ascending
    delays: list[int] = field(default_factory=list)
    blocked_from: int = 10 ** 9
    dropped: bool = False

    def static(self) -> dict:
        """The task as its plan carries it (PlanTask, model_dump(mode="json"))."""
        return {"task_id": self.task_id, "title": self.title, "lead_unit": self.lead_unit,
                "lead_person": self.lead_person, "coordinating_units": [], "due_date": day_iso(self.due_day),
                "milestones": [{"title": "Xây dựng kế hoạch chi tiết", "due_date": day_iso(self.start_day + 30)},
                               {"title": "Hoàn thành, báo cáo kết quả", "due_date": day_iso(self.due_day)}],
                "tags": []}

    def roadmap(self) -> dict:
        return {"task_id": self.task_id, "title": self.title, "lead_unit": self.lead_unit,
                "lead_person": self.lead_person, "due_date": day_iso(self.due_day)}

    def fields(self, k: int) -> dict:
        """The status report k (TaskUpdated without task_id and programme)."""
        n = len(self.times)
        if self.fate == "completed" and k == n - 1:
            status, progress = "completed", 100.0
        else:
            progress = float(round(self.final_progress * (k + 1) / n))
            if self.fate == "completed":
                progress = min(progress, 95.0)
            status = "blocked" if k >= self.blocked_from else ("not_started" if progress == 0 else "in_progress")
        note = BLOCKERS[self.idx % len(BLOCKERS)] if status == "blocked" else None
        return {"status": status, "progress": progress, "as_of": hanoi_day(self.times[k]), "note": note,
                "reported_by": self.reporter}

    def report_stamp(self, k: int) -> dict:
        return stamp(self.lead_unit, f"{self.lead_unit}-TD-{self.idx:05d}-{k:03d}", self.times[k], self.delays[k])

    def report_change(self, k: int, state: dict | None = None, seq: int = 0, old: dict | None = None) -> dict:
        return {**change("task", self.task_id, state, self.report_stamp(k), programme=self.plan.programme,
                         seq=seq, old=old), "fact": self.fields(k)}

    def arrivals(self):
        """(arrival, task, k) of its status reports, in arrival order."""
        for k in sorted(range(len(self.times)), key=lambda k: self.times[k] + self.delays[k]):
            yield self.times[k] + self.delays[k], self.idx, k

    def timeline(self) -> list[dict]:
        """Every change the programs service publishes about this task, in arrival order, with the
        task's state after it: the plan, each status report (applied only if newer in event time),
        the plan's revision."""
        plan = self.plan
        events = [(plan.ts + plan.delay, "plan", 0)] + [(a, "report", k) for a, _, k in self.arrivals()]
        if plan.revision:
            events.append((sum(plan.revision), "revision", 0))
        events.sort(key=lambda e: (e[0], e[1] != "plan"))
        plan_stamp = plan.stamp()
        state = {**self.static(), "plan": plan.key, "programme": plan.programme, "dropped": False,
                 "plan_version": plan_stamp["version"], "status": "not_started", "progress": 0.0,
                 "status_version": "", "as_of": None, "seq": 1}
        out = []
        for _, what, k in events:
            if what == "plan":
                out.append(change("task", self.task_id, dict(state), plan_stamp, programme=plan.programme,
                                  seq=state["seq"]))
            elif what == "report":
                st = self.report_stamp(k)
                before = None
                if st["version"] > state["status_version"]:
                    before = state
                    state = {**state, **self.fields(k), "status_version": st["version"], "seq": state["seq"] + 1}
                out.append(self.report_change(k, dict(state), state["seq"], dict(before) if before else None))
            else:
                st = plan.revision_stamp()
                before = state
                if self.dropped:
                    state = {**state, "dropped": True, "status": "cancelled", "seq": state["seq"] + 1}
                else:
                    state = {**state, "plan_version": st["version"], "seq": state["seq"] + 1}
                out.append(change("task", self.task_id, dict(state), st, programme=plan.programme,
                                  seq=state["seq"], old=dict(before)))
        return out


class Term:
    def __init__(self, scale: float, seed: int):
        self.rng = random.Random(seed)
        self.scale = scale
        self.registry_events = load_events(REGISTRY)
        entries = [(e.type.removeprefix("registry."), e) for e in self.registry_events]
        self.units = {e.data.code: e.data.model_dump(mode="json") for kind, e in entries if kind == "unit"}
        self.indicators = [e.data.model_dump(mode="json") for kind, e in entries if kind == "indicator"]
        self.programmes = [e.data.code for kind, e in entries if kind == "programme"]
        self.generated_units = self._sub_units()
        self.units.update(self.generated_units)
        self.planners = sorted(c for c in self.units if c not in ("BTV", OFFICE))
        self.plans: list[Plan] = []
        self.tasks: list[Task] = []
        self.rejected_only: list[Plan] = []
        self._plans_and_tasks()

    def _sub_units(self) -> dict[str, dict]:
        """Sub-units (chi cục, ban quản lý dự án) up to ~120 units in all."""
        rng, out = self.rng, {}
        departments = [c for c, u in self.units.items() if u["kind"] == "department"]
        districts = [c for c, u in self.units.items() if u["kind"] == "district"]
        wanted = max(0, UNITS_WANTED - len(self.units))
        for i in range(wanted):
            if i % 3 == 2:
                parent, kind = districts[(i // 3) % len(districts)], "district"
                code, name = f"{parent}-BQLDA", f"Ban Quản lý dự án đầu tư xây dựng {self.units[parent]['name']}"
            else:
                parent, kind = departments[i % len(departments)], "department"
                code = f"{parent}-CC{i // len(departments) + 1}"
                name = f"Chi cục {rng.choice(['Quản lý', 'Phát triển', 'Kiểm tra'])} số {i + 1} thuộc " \
                       f"{self.units[parent]['name']}"
            out[code] = RegistryUnit(code=code, name=name, kind=kind, parent=parent,
                                     email=f"{code.lower()}@hanoi.example").model_dump(mode="json")
        return out

    def _person(self) -> dict:
        rng = self.rng
        return {"name": f"{rng.choice(SURNAMES)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}",
                "position": rng.choice(POSITIONS)}

    def _plans_and_tasks(self) -> None:
        rng = self.rng
        n_plans = max(10, round(FULL["plans"] * self.scale))
        n_tasks = max(n_plans, round(FULL["tasks"] * self.scale))
        n_reports = round(FULL["reports"] * self.scale)
        for n in range(n_plans):
            r = rng.random()
            lo, hi = ((date(2021, 1, 10), date(2021, 4, 30)) if r < 0.7 else
                      (date(2021, 5, 1), date(2021, 12, 31)) if r < 0.9 else (date(2022, 1, 1), date(2024, 6, 30)))
            day = rng.randint(day_of(lo), day_of(hi))
            ts = at(day, rng)
            plan = Plan(n + 1, self.planners[n % len(self.planners)], rng.choice(self.programmes), day, ts,
                        rng.randint(60, 3600))
            if rng.random() < 0.02:
                rts = at(day - rng.randint(3, 15), rng)
                plan.rejected_before = (rts, rng.randint(60, 3600))
            self.plans.append(plan)
        for n in range(max(1, round(n_plans * 0.005))):  # submissions rejected and never put right
            day = rng.randint(day_of(date(2021, 2, 1)), day_of(date(2023, 12, 31)))
            self.rejected_only.append(Plan(n_plans + n + 1, rng.choice(self.planners), rng.choice(self.programmes),
                                           day, at(day, rng), rng.randint(60, 3600)))
        owners = list(range(n_plans)) + [rng.randrange(n_plans) for _ in range(n_tasks - n_plans)]
        owners.sort()
        for idx, p in enumerate(owners):
            plan = self.plans[p]
            lead = plan.source if rng.random() < 0.85 else rng.choice(self.planners)
            title = f"{rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(SUFFIXES)}"
            task = Task(idx, plan, f"{plan.source}-{plan.programme}-{idx + 1:05d}", lead, title, self._person(),
                        0, {"name": f"{rng.choice(SURNAMES)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}",
                            "position": "Chuyên viên tổng hợp"})
            plan.tasks.append(task)
            self.tasks.append(task)
        for plan in self.plans:  # 3 % of plans are revised once, dropping their last task
            if len(plan.tasks) >= 3 and rng.random() < 0.03:
                rday = min(plan.day + rng.randint(200, 700), NOW_DAY - 30)
                plan.revision = (at(rday, rng), rng.randint(60, 3600))
                plan.tasks[-1].dropped = True
        for task in self.tasks:
            self._fate(task)
        weights = [t.end_day - t.start_day + 30 if t.fate != "not_started" else 0 for t in self.tasks]
        total = sum(weights) or 1
        for task, w in zip(self.tasks, weights):
            if w:
                self._reports(task, max(1, round(n_reports * w / total)))

    def _fate(self, task: Task) -> None:
        rng, plan = self.rng, task.plan
        task.start_day = plan.day + rng.randint(7, 45)
        if rng.random() < 0.35:  # many tasks fall due mid-year or at a year's end
            year = rng.randint(max(2021, (DAY0 + timedelta(days=task.start_day)).year), 2025)
            task.due_day = day_of(date(year, 6, 30) if rng.random() < 0.4 else date(year, 12, 31))
        else:
            task.due_day = rng.randint(task.start_day + 90, TERM_END_DAY)
        task.due_day = max(task.due_day, task.start_day + 60)
        last_open = NOW_DAY - 1 - rng.randint(0, 25)   # an open task last reported recently
        if task.dropped:
            task.fate, task.final_progress = "in_progress", float(rng.randint(10, 60))
            task.end_day = (plan.revision[0] - BASE) // 86400 - 20
        elif task.due_day < NOW_DAY:
            r = rng.random()
            if r < 0.90:
                done = (task.due_day - rng.randint(0, 60)) if rng.random() < 0.8 else task.due_day + rng.randint(1, 120)
                if done < NOW_DAY:
                    task.fate, task.final_progress, task.end_day = "completed", 100.0, max(done, task.start_day)
                else:
                    task.fate, task.final_progress, task.end_day = "in_progress", float(rng.randint(85, 99)), last_open
            elif r < 0.95:
                task.fate, task.final_progress, task.end_day = "in_progress", float(rng.randint(40, 95)), last_open
            elif r < 0.98:
                task.fate, task.final_progress, task.end_day = "blocked", float(rng.randint(10, 70)), last_open
            else:
                task.fate = "not_started"
        else:
            r = rng.random()
            elapsed = max(0.0, (NOW_DAY - task.start_day) / max(1, task.due_day - task.start_day))
            if r < 0.08 and NOW_DAY - 1 > task.start_day:
                task.fate, task.final_progress = "completed", 100.0
                task.end_day = rng.randint(task.start_day, NOW_DAY - 1)
            elif r < 0.12:
                task.fate, task.final_progress, task.end_day = "blocked", float(rng.randint(10, 60)), last_open
            else:
                task.fate, task.end_day = "in_progress", last_open
                task.final_progress = float(min(95, round(100 * elapsed * rng.uniform(0.7, 1.15))))
        task.end_day = min(max(task.end_day, task.start_day), NOW_DAY - 1)
        if task.start_day >= NOW_DAY:
            task.fate = "not_started"

    def _reports(self, task: Task, n: int) -> None:
        rng, span = self.rng, task.end_day - task.start_day
        times = sorted(at(task.start_day + (span * (k + 1)) // n, rng) for k in range(n))
        for k in range(1, n):
            if times[k] <= times[k - 1]:
                times[k] = times[k - 1] + 1
        task.times = times
        task.delays = [arrival_delay(rng, ts) for ts in times]
        if task.fate == "blocked":
            task.blocked_from = max(0, n - rng.randint(1, 3))

    # --- the small changes, applied through ReportsStore.apply_change ---
    def small_changes(self) -> list[dict]:
        rng = self.rng
        out = []
        base = at(day_of(date(2020, 12, 1)), rng)
        for i, event in enumerate(self.registry_events):
            kind = event.type.removeprefix("registry.")
            state = event.data.model_dump(mode="json")
            out.append(change(kind, state["code"], state, stamp(OFFICE, event.id, base + i, 5)))
        for i, (code, state) in enumerate(self.generated_units.items()):
            out.append(change("unit", code, state, stamp(OFFICE, f"registry-unit-{code}-bench",
                                                         base + 1000 + i, 5)))
        for i, code in enumerate(self.programmes):   # programme 10 is issued late, the others in Q1 2021
            day = day_of(date(2021, 4, 12)) if code == "10" else day_of(date(2021, 2, 20)) + 3 * i
            state = {"programme": code, "document_no": f"{code}-CTr/TU", "issued_on": day_iso(day),
                     "steering_committee": {"decision_no": f"{100 + i}-QĐ/TU", "established_on": day_iso(day + 5),
                                            "head": {"name": "Thường trực Thành ủy (mẫu)",
                                                     "position": "Trưởng Ban Chỉ đạo"}},
                     "current": True}
            out.append(change("programme_issued", code, state, stamp(OFFICE, f"{OFFICE}-2021-CTR-{code}",
                                                                     at(day, rng), 30), programme=code))
        for plan in self.plans + self.rejected_only:
            header = {"plan_id": plan.plan_id, "programme": plan.programme,
                      "title": f"Kế hoạch thực hiện Chương trình {plan.programme}-CTr/TU của "
                               f"{self.units[plan.source]['name']}",
                      "document_no": f"{plan.n}/KH-{plan.source}", "issued_on": day_iso(plan.day - 2),
                      "source": plan.source}
            rejected = {"plan_id": plan.plan_id, "programme": plan.programme, "source": plan.source,
                        "status": "rejected"}
            if plan in self.rejected_only:
                out.append(change("plan", plan.key, rejected, plan.stamp(), programme=plan.programme))
                continue
            if plan.rejected_before:
                out.append(change("plan", plan.key, rejected,
                                  stamp(plan.source, plan.event_id("-X"), *plan.rejected_before),
                                  programme=plan.programme))
            out.append(change("plan", plan.key, {**header, "status": "submitted",
                                                 "tasks": [t.roadmap() for t in plan.tasks]},
                              plan.stamp(), programme=plan.programme))
            if plan.revision:
                rday = (plan.revision[0] - BASE) // 86400
                out.append(change("plan", plan.key, {**header, "document_no": f"{plan.n}b/KH-{plan.source}",
                                                     "issued_on": day_iso(rday), "status": "submitted",
                                                     "tasks": [t.roadmap() for t in plan.tasks if not t.dropped]},
                                  plan.revision_stamp(), programme=plan.programme))
        out += self._indicator_values() + self._unit_reports() + self._supervisions()
        return sorted(out, key=lambda c: c["accepted_at"])

    def _indicator_values(self) -> list[dict]:
        rng, out = self.rng, []
        for ind in self.indicators:
            start, target = ind["baseline"]["value"], ind["targets"]["2025"]
            periods = [(str(y), y - 2020, day_of(date(y + 1, 1, 15)) + rng.randint(0, 40)) for y in range(2021, 2025)]
            periods += [(f"{y}-Q{q}", y - 2021 + q / 4, day_of(date(y, 3 * q, 28)) + rng.randint(10, 30))
                        for y in range(2021, 2026) for q in range(1, 5)]
            for period, share, day in periods:
                if day >= NOW_DAY:
                    continue
                value = round(start + (target - start) * share / 5 * rng.uniform(0.8, 1.1), 2)
                versions = [(day, value)]
                if rng.random() < 0.05 and day + 90 < NOW_DAY:  # a figure corrected later
                    versions.append((day + rng.randint(30, 90), round(value * rng.uniform(0.98, 1.02), 2)))
                for i, (vday, v) in enumerate(versions):
                    src = ind["responsible_unit"]
                    state = {"indicator": ind["code"], "period": period, "value": v, "note": None, "source": src,
                             "current": True}
                    out.append(change("indicator_value", f"{ind['code']}|{period}", state,
                                      stamp(src, f"{src}-CT-{ind['code']}-{period}-{i}", at(vday, rng),
                                            rng.randint(5, 600))))
        return out

    def _unit_reports(self) -> list[dict]:
        rng, out = self.rng, []
        expected = [c for c, u in sorted(self.units.items()) if expected_to_report(u, "default")]
        for cycle in term_cycles(2021, 2025):
            if cycle.kind == "term":
                continue
            due = day_of(due_date(cycle))
            if due >= NOW_DAY:
                continue
            cut = day_of(cycle.cut_off)
            for unit in expected:
                r = rng.random()
                if r < 0.85:
                    day = rng.randint(cut + 1, due)
                elif r < 0.94:
                    day = due + rng.randint(1, 25)
                else:
                    continue
                if day >= NOW_DAY:
                    continue
                ts = at(day, rng)
                state = {"cycle": cycle.code, "document_no": f"{rng.randint(10, 400)}/BC-{unit}",
                         "summary": "Đơn vị đã triển khai các nhiệm vụ theo kế hoạch; tiến độ cơ bản bảo đảm.",
                         "achievements": "Hoàn thành các nhiệm vụ trọng tâm của kỳ.",
                         "shortcomings": "Một số nhiệm vụ còn chậm so với lộ trình.",
                         "proposals": None, "unit": unit, "time": iso(ts), "current": True}
                out.append(change("unit_report", f"{unit}|{cycle.code}", state,
                                  stamp(unit, f"{unit}-BC-{cycle.code}", ts, rng.randint(5, 900))))
        return out

    def _supervisions(self) -> list[dict]:
        rng, out = self.rng, []
        sources = [c for c, u in self.units.items() if u["kind"] in ("front", "organisation")]
        lo, hi = day_of(date(2021, 3, 1)), NOW_DAY - 2
        for i in range(SUPERVISIONS):
            day = rng.randint(lo, hi)
            known = [t for t in rng.sample(self.tasks, min(20, len(self.tasks))) if t.plan.day + 1 < day]
            task = known[0] if known and rng.random() < 0.5 else None
            source, ts = rng.choice(sources), at(day, rng)
            programme = task.plan.programme if task else rng.choice(self.programmes)
            st = stamp(source, f"{source}-GS-{i:04d}", ts, rng.randint(5, 900))
            state = {"programme": programme, "kind": rng.choice(["giam_sat", "phan_bien"]),
                     "finding": rng.choice(FINDINGS),
                     "recommendation": "Đề nghị đơn vị khẩn trương khắc phục và báo cáo kết quả.",
                     "task_id": task.task_id if task else None,
                     "unit": task.lead_unit if task else rng.choice(self.planners), "source": source,
                     "time": iso(ts)}
            out.append(change("supervision", st["event_key"], state, st, programme=programme))
        return out


# --- loading (in a child process) ---

def _rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


class Progress:
    def __init__(self, what: str, total: int):
        self.what, self.total, self.done, self.t0, self.shown = what, total, 0, time.perf_counter(), 0.0

    def add(self, n: int, force: bool = False) -> None:
        self.done += n
        now = time.perf_counter()
        if force or now - self.shown >= 5 or self.done >= self.total:
            self.shown = now
            elapsed = now - self.t0
            print(f"  {self.what}: {self.done:,}/{self.total:,} ({self.done / max(elapsed, 1e-9):,.0f}/s, "
                  f"{elapsed:.0f} s)", flush=True)


async def _bulk(collection, docs_iter, progress: Progress) -> None:
    """insert_many in batches, building the next batch (in a thread) while the last one is written."""
    def next_batch():
        batch = []
        for doc in docs_iter:
            batch.append(doc)
            if len(batch) >= BATCH:
                break
        return batch

    pending, pending_n = None, 0
    while True:
        batch = await asyncio.to_thread(next_batch)
        if pending is not None:
            await pending
            progress.add(pending_n)
        if not batch:
            break
        pending, pending_n = asyncio.ensure_future(collection.insert_many(batch, ordered=False)), len(batch)


class TimelineFold:
    """The timeline documents `timeline.record` leaves after the status reports, folded in the
    order the consumer applies them, a batch at a time."""

    def __init__(self):
        self.docs: dict[str, dict] = {}  # every document written, as the timeline collection holds them
        self.opened: dict[str, dict] = {}
        self.batch: list[dict] = []

    def add(self, fact: dict) -> dict:
        self.batch.append(fact)
        if len(self.batch) >= BATCH:
            self.flush()
        return fact

    def flush(self) -> None:
        writes = timeline.build(self.opened, self.docs, self.batch)
        for doc in writes.seals:
            self.docs.setdefault(doc["_id"], doc)
        self.docs.update((doc["_id"], doc) for doc in writes.kept + writes.opens)
        for key, entries in writes.late.items():
            self.docs.setdefault(key, {"_id": key, "entries": []})["entries"].extend(entries)
        for key in writes.retired:
            self.docs.pop(key, None)
        self.opened.update((doc["programme"], doc) for doc in writes.opens)
        self.batch = []

    def documents(self) -> list[dict]:
        self.flush()
        return [*self.docs.values(), {"_id": timeline.READY}]


async def load(url: str, db_name: str, scale: float, seed: int) -> None:
    t0 = time.perf_counter()
    term = Term(scale, seed)
    n_reports = sum(len(t.times) for t in term.tasks)
    print(f"generated the term in {time.perf_counter() - t0:.1f} s: {len(term.units)} units, "
          f"{len(term.programmes)} programmes, {len(term.indicators)} indicators, {len(term.plans)} plans "
          f"(+{len(term.rejected_only)} rejected only, {sum(1 for p in term.plans if p.revision)} revised), "
          f"{len(term.tasks):,} tasks, {n_reports:,} task status reports", flush=True)
    client = mongo.connect(url)
    try:
        db = client[db_name]
        await mongo.ensure_indexes(db, INDEXES)   # as the service does at start-up
        small = term.small_changes()
        facts, docs = mirror(small)
        await _bulk(db.history, iter(facts), Progress(
            f"history: {len(facts):,} facts from {len(small):,} registry, programme, plan, indicator, unit report "
            "and supervision changes (insert_many)", len(facts)))
        for coll, by_id in docs.items():
            await _bulk(db[coll], iter(by_id.values()), Progress(f"{coll} read model (insert_many)", len(by_id)))
        grouped, loose = timeline.fact_documents(facts)
        await _bulk(db[timeline.FACTS], iter(loose), Progress("timeline: indicator values (insert_many)", len(loose)))
        await _bulk(db[timeline.TIMELINE], (timeline.packed(k, v) for k, v in grouped.items()), Progress(
            "timeline: the other facts by programme and unit report (insert_many)", len(grouped)))
        stream = heapq.merge(*(t.arrivals() for t in term.tasks))   # in arrival order, as consumed
        fold = TimelineFold()  # status reports are kept by the timeline alone (no history row)

        def fold_reports() -> None:
            for _, i, k in stream:
                fold.add(history_doc(term.tasks[i].report_change(k)))
        await asyncio.to_thread(fold_reports)
        made = fold.documents()
        await _bulk(db[timeline.TIMELINE], iter(made), Progress(
            "timeline: open states, seals, periods and late reports of each programme (insert_many)", len(made)))
        # the latest state of each task, as checkpoints per programme (what the store folds into)
        await ReportsStore(db).states.adopt(task_doc(t.timeline()[-1]) for t in term.tasks)
        print(f"loaded in {time.perf_counter() - t0:.0f} s; {await db.history.estimated_document_count():,} "
              f"history docs, {len(term.tasks):,} tasks", flush=True)
        await shape_check(client, db, term, small, db_name)
        await consistency_check(db)
    finally:
        await client.close()


async def shape_check(client, db, term: Term, small: list[dict], db_name: str) -> None:
    """Replay samples through ReportsStore.apply_change into a scratch database and compare with
    what the bulk load wrote, document by document: every registry entry and issuance, all the
    changes of some plans, indicators, units' reports and supervisions, and the whole timeline
    (plan, status reports, revision) of some tasks."""
    rng = random.Random(1)
    sample = [t for t in term.tasks if t.dropped][:3] + [t for t in term.tasks if t.plan.revision and not t.dropped][:2]
    sample += [t for t in term.tasks if any(d > 86400 for d in t.delays)][:5]
    sample += rng.sample(term.tasks, min(15, len(term.tasks)))
    tasks = {t.task_id: t for t in sample}
    keys = {kind: sorted({c["id"] for c in small if c["kind"] == kind}) for kind in
            ("plan", "indicator_value", "unit_report", "supervision")}
    keys = {kind: set(rng.sample(ids, min(40, len(ids)))) for kind, ids in keys.items()}
    keys["plan"] |= {c["id"] for c in small if c["kind"] == "plan" and c["state"]["status"] == "rejected"}
    keys["plan"] |= {t.plan.key for t in tasks.values()}
    replay = [c for c in small if c["kind"] not in keys or c["id"] in keys[c["kind"]]]
    scratch = client[f"{db_name}_check"]
    try:
        store = ReportsStore(scratch)
        for ch in replay:
            await store.apply_change(ch)
        for task in tasks.values():
            for ch in task.timeline():
                await store.apply_change(ch)
        subjects = sorted(set(tasks) | {c["id"] for c in replay})
        checks = [(coll, {"subject": {"$in": subjects}}) for coll in ("history", timeline.FACTS)]
        checks += [(coll, {}) for coll in ("units", "programmes", "indicators", "settings", "issued")]
        checks += [(coll, {"_id": {"$in": sorted(keys[kind])}}) for coll, kind in
                   (("plans", "plan"), ("indicator_values", "indicator_value"), ("unit_reports", "unit_report"),
                    ("supervisions", "supervision"))]
        equal, problems = 0, []
        for coll, query in [*checks, ("task_states", None)]:
            if query is None:  # the states, however the changelog and its checkpoints hold them
                want, have = [{t["task_id"]: t for t in await ReportsStore(d).current_tasks() if t["task_id"] in tasks}
                              for d in (scratch, db)]
            else:
                want = {d["_id"]: d async for d in scratch[coll].find(query)}
                have = {d["_id"]: d async for d in db[coll].find(query)}
            wrong = sorted(k for k in want.keys() | have.keys() if want.get(k) != have.get(k))
            equal += len(want) - len(wrong)
            if wrong:
                problems.append(f"{coll}: {len(wrong)} differ, e.g. {wrong[0]!r}: "
                                f"apply_change={want.get(wrong[0])} bulk={have.get(wrong[0])}")
        print(f"shape check: {len(replay) + sum(len(t.timeline()) for t in tasks.values()):,} changes replayed "
              f"through ReportsStore.apply_change; {equal:,} documents equal to the bulk load's"
              + ("" if not problems else "; MISMATCH " + "; ".join(problems)), flush=True)
    finally:
        await client.drop_database(scratch.name)


async def consistency_check(db) -> None:
    """The current cycle's report from the live read model and from the whole history as known
    now must agree (everything loaded happened and arrived by now)."""
    service = ReportsService(ReportsStore(db), Clock(fixed=NOW))
    t0 = time.perf_counter()
    live = await service.report(cycle_code=CURRENT_CYCLE)
    t1 = time.perf_counter()
    hist = await service.report(cycle_code=CURRENT_CYCLE, known_at=utc_iso(NOW))
    t2 = time.perf_counter()
    diff = sorted(k for k in live.keys() | hist.keys() if k != "known_at" and live.get(k) != hist.get(k))
    print(f"consistency check: report {CURRENT_CYCLE} from the live read model ({t1 - t0:.2f} s) and from the "
          f"whole history as known now ({t2 - t1:.2f} s, {len(live['overdue_tasks'])} overdue tasks): "
          + ("identical" if not diff else f"DIFFER in {', '.join(diff)}"), flush=True)


def _loader_main(url: str, db_name: str, scale: float, seed: int) -> None:
    asyncio.run(load(url, db_name, scale, seed))


# --- measuring (in this process) ---

class TimedStore(ReportsStore):
    """The service's store, noting how long reading the snapshot took."""
    last = 0.0

    async def live(self, **kw):
        t0 = time.perf_counter()
        snapshot = await super().live(**kw)
        self.last = time.perf_counter() - t0
        return snapshot

    async def as_of(self, **kw):
        t0 = time.perf_counter()
        snapshot = await super().as_of(**kw)
        self.last = time.perf_counter() - t0
        return snapshot


async def _read(label: str, cursor, timings: dict[str, float]) -> list[dict]:
    t0 = time.perf_counter()
    docs = [d async for d in cursor]
    timings[label] = time.perf_counter() - t0
    return docs


async def raw_registry(db, timings: dict[str, float]) -> None:
    for name in ("programmes", "units", "indicators"):
        await _read(f"{name} find", db[name].find({}), timings)
    await _read("settings find_one", db.settings.find({"_id": "settings"}, limit=1), timings)


async def raw_live(db, cycle: str, window_start: str) -> dict[str, float]:
    """The documents ReportsStore.live reads, with the driver alone: the time of each find."""
    timings: dict[str, float] = {}
    await _read("indicator_values find", db.indicator_values.find({}, {"indicator": 1, "period": 1, "value": 1}),
                timings)
    await raw_registry(db, timings)
    await _read("issued find", db.issued.find({}), timings)
    await _read("plans find", db.plans.find({}, {"programme": 1, "submitted": 1}), timings)
    await _read("task_states find (changelog + checkpoints, packed)", db.task_states.find({}), timings)
    await _read("unit_reports find {cycle}", db.unit_reports.find({"cycle": cycle}), timings)
    await _read("supervisions find {time >=}", db.supervisions.find({"time": {"$gte": window_start}}), timings)
    return timings


async def raw_as_of(db, cycle: str, cut_off: str, known_at: str) -> tuple[dict[str, float], list[dict]]:
    """The documents ReportsStore.as_of reads, with the driver alone: the time of each find, and the
    facts and status reports (as history rows) it computes from."""
    timings: dict[str, float] = {}
    ids = timeline.fact_ids(programmes=[p["_id"] async for p in db.programmes.find({}, {"_id": 1})],
                            units=[u["_id"] async for u in db.units.find({}, {"_id": 1})], cycle=cycle)
    grouped = await _read("timeline find by _id (facts)", db[timeline.TIMELINE].find({"_id": {"$in": ids}}), timings)
    docs = [row for doc in grouped for row in timeline.unpack(doc, [])]
    docs += await _read("timeline_facts find", db[timeline.FACTS].find({}), timings)
    docs = [d for d in docs if d["accepted_at"] <= known_at]
    plans = [d for d in docs if d["kind"] == "plan" and d["event_time"] <= cut_off]
    query = timeline_query.Query(plans, cut_off, known_at)
    ids, rounds = query.first_ids(), 0
    while ids:
        rounds += 1
        read = await _read(f"timeline find by _id (round {rounds})", db[timeline.TIMELINE].find({"_id": {"$in": ids}}),
                           timings)
        ids = query.step({d["_id"]: d for d in read})
    await raw_registry(db, timings)
    return timings, docs + [{**row, "kind": "task_report"} for row in query.rows()]


def _pages(pdf: bytes) -> int:
    """Pages of a PDF whose objects may sit in compressed object streams."""
    view, parts = memoryview(pdf), [pdf]
    for m in re.finditer(rb"stream\r?\n", pdf):
        try:
            parts.append(zlib.decompressobj().decompress(view[m.end():]))
        except zlib.error:
            pass
    return len(re.findall(rb"/Type\s*/Page(?![s\w])", b"".join(parts)))


async def measure(url: str, db_name: str, repeat: int) -> dict:
    client = mongo.connect(url)
    try:
        db = client[db_name]
        clock = Clock(fixed=NOW)
        store = TimedStore(db)
        service = ReportsService(store, clock)
        past_known = parse_known_at(PAST_KNOWN_AT, clock)
        cases = {"current": (CURRENT_CYCLE, None), "past": (PAST_CYCLE, past_known)}
        windows = {name: (parse_cycle(code), end_of_day(parse_cycle(code).start - timedelta(days=1), clock))
                   for name, (code, _) in cases.items()}
        past_cut_off = end_of_day(min(windows["past"][0].cut_off, clock.today()), clock)

        t0 = time.perf_counter()
        warm = await service.report(cycle_code=CURRENT_CYCLE)
        handlers.rendered(warm, "json")
        cold_json, cold_snapshot = time.perf_counter() - t0, store.last
        for fmt in ("html", "pdf"):
            handlers.rendered(warm, fmt)
        cold = time.perf_counter() - t0
        print(f"warm-up, untimed in the figures (report {CURRENT_CYCLE}, all formats, the first after start-up: "
              f"the read model into memory, imports, fonts, templates): {cold:.2f} s, of which the JSON "
              f"{cold_json:.2f} s (its snapshot {cold_snapshot:.2f} s)", flush=True)

        times: dict[str, list[float]] = {}
        info: dict[str, object] = {"cold": cold, "cold json": cold_json, "cold snapshot": cold_snapshot}

        def note(key: str, value: float) -> None:
            times.setdefault(key, []).append(value)

        for run in range(1, repeat + 1):
            reads = await raw_live(db, CURRENT_CYCLE, windows["current"][1])
            note("raw live: all reads", sum(reads.values()))
            for label, seconds in reads.items():
                note(f"raw live: {label}", seconds)
            reads, docs = await raw_as_of(db, PAST_CYCLE, past_cut_off, past_known)
            note("raw as-of: all reads", sum(reads.values()))
            for label, seconds in reads.items():
                note(f"raw as-of: {label}", seconds)
            facts = {"plan": [], "task_report": []}
            for d in docs:
                if d["kind"] in facts and d["event_time"] <= past_cut_off:
                    facts[d["kind"]].append(d)
            t = time.perf_counter()
            tasks_from_history(facts["plan"], facts["task_report"])
            note("as-of: tasks_from_history on those docs", time.perf_counter() - t)
            info["docs computed from (past)"] = len(docs)
            del docs, facts
            for name, (code, known_at) in cases.items():
                for fmt in ("json", "html", "pdf"):
                    t0 = time.perf_counter()
                    report = await service.report(cycle_code=code, known_at=known_at)
                    t1, cpu = time.perf_counter(), time.process_time()
                    body = handlers.rendered(report, fmt)
                    t2 = time.perf_counter()
                    note(f"{name} {fmt}: render cpu", time.process_time() - cpu)
                    note(f"{name} {fmt}", t2 - t0)
                    note(f"{name} {fmt}: snapshot", store.last)
                    note(f"{name} {fmt}: roll-up", t1 - t0 - store.last)
                    note(f"{name} {fmt}: render", t2 - t1)
                    info[f"{name} {fmt} bytes"] = len(body)
                    if fmt == "pdf":
                        info[f"{name} pdf pages"] = _pages(body)
                info[f"{name} overdue rows"] = len(report["overdue_tasks"])
                info[f"{name} next-period rows"] = len(report["next_period"]["tasks_due"])
                info[f"{name} tasks"] = report["totals"]["tasks"]["total"]
            t0 = time.perf_counter()
            await service.live_status()
            note("live_status", time.perf_counter() - t0)
            note("live_status: snapshot", store.last)
            print(f"run {run}/{repeat}: " + ", ".join(
                f"{k} {times[k][-1]:.2f} s" for k in ("current json", "current pdf", "past json", "past pdf",
                                                      "live_status")), flush=True)
        return {"times": times, "info": info}
    finally:
        await client.close()


def _fmt(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def print_results(result: dict, args, loader_rss: float | None, ferret_rss: str) -> None:
    times, info = result["times"], result["info"]
    med = {k: statistics.median(v) for k, v in times.items()}
    base = {"current": med["raw live: all reads"], "past": med["raw as-of: all reads"]}
    print()
    print(f"Reports on a Hanoi-sized term, --scale {args.scale}, --repeat {args.repeat}; replay clock "
          f"{NOW.isoformat()}; {info['current tasks']:,} tasks")
    print(f"  current = {CURRENT_CYCLE} (live read model); past = {PAST_CYCLE} as known at {PAST_KNOWN_AT} "
          f"(timeline: {info['docs computed from (past)']:,} facts and task states)")
    head = f"{'figure':<34}{'min':>10}{'median':>10}{'max':>10}{'baseline':>11}{'ratio':>8}  {'target':<9}{'met':<5}"
    print(head)
    print("-" * len(head))
    rows = [("JSON  current (live)", "current json", "current", "json"),
            ("HTML  current (live)", "current html", "current", None),
            ("PDF   current (live)", "current pdf", "current", "pdf"),
            ("JSON  past (timeline, known_at)", "past json", "past", "json"),
            ("HTML  past (timeline, known_at)", "past html", "past", None),
            ("PDF   past (timeline, known_at)", "past pdf", "past", "pdf"),
            ("live_status()", "live_status", "current", None)]
    for label, key, case, target in rows:
        lo, mid, hi = harness.spread(times[key])
        goal = TARGETS[case].get(target)
        met = "" if goal is None else ("yes" if hi <= goal else "NO")
        print(f"{label:<34}{_fmt(lo):>10}{_fmt(mid):>10}{_fmt(hi):>10}{_fmt(base[case]):>11}"
              f"{mid / base[case]:>7.1f}x  {('<= %g s' % goal) if goal else '-':<9}{met:<5}")
    print("  baseline = the same finds with the driver alone, materialised in lists (median); ratio = median / "
          "baseline; met = the slowest run within the target")
    print()
    print("where the time goes (median):")
    for prefix in ("raw live: ", "raw as-of: "):
        reads = sorted(((v, k) for k, v in med.items() if k.startswith(prefix) and k != prefix + "all reads"),
                       reverse=True)
        print(f"  {prefix + 'all reads':<60}{_fmt(med[prefix + 'all reads']):>10}   of which:")
        for seconds, key in reads[:4]:
            print(f"    {key.removeprefix(prefix):<58}{_fmt(seconds):>10}")
    key = "as-of: tasks_from_history on those docs"
    print(f"  {key:<60}{_fmt(med[key]):>10}")
    for case in ("current", "past"):
        for fmt in ("json", "html", "pdf"):
            print(f"  {case} {fmt:<5} snapshot {_fmt(med[f'{case} {fmt}: snapshot']):>9}   roll-up+frame "
                  f"{_fmt(med[f'{case} {fmt}: roll-up']):>9}   render {_fmt(med[f'{case} {fmt}: render']):>9} "
                  f"(CPU {_fmt(med[f'{case} {fmt}: render cpu'])})   "
                  f"({info[f'{case} {fmt} bytes'] / 1024:,.0f} KiB"
                  + (f", {info[f'{case} pdf pages']} pages" if fmt == "pdf" else "") + ")")
        html, pdf = med[f"{case} html: render"], med[f"{case} pdf: render"]
        print(f"  {case}: PDF render = HTML with charts {_fmt(html)} + WeasyPrint {_fmt(pdf - html)}")
        print(f"  {case}: {info[f'{case} overdue rows']:,} overdue tasks and "
              f"{info[f'{case} next-period rows']:,} tasks due next period listed in the report")
    print("  CPU = this process's CPU time while rendering: the wall time above it is what other processes on "
          "the machine leave of a core")
    print(f"  live_status snapshot {_fmt(med['live_status: snapshot'])}")
    print(f"  first report after start-up ({CURRENT_CYCLE}, all formats, warm-up): {_fmt(info['cold'])}; its JSON "
          f"{_fmt(info['cold json'])}, of which loading the live read model into memory {_fmt(info['cold snapshot'])}")
    print()
    print(f"peak RSS: {_rss_mb():,.0f} MB (this process: warm-up and every report above); "
          f"loader process {'not run (a kept database)' if loader_rss is None else f'{loader_rss:,.0f} MB'}; "
          f"FerretDB {ferret_rss}")


def _ferret_rss(server) -> str:
    if server is None:
        return "not measured (NQT_MONGO_URL)"
    peak = harness.rss_mb(server.proc.pid, "VmHWM")
    return "unknown" if peak is None else f"{peak:,.0f} MB"


def results(result: dict, loader_rss: float | None, server, args) -> dict:
    """The report_* keys of bench/results/latest.json: medians in seconds, and the peak RSS."""
    med = {k: statistics.median(v) for k, v in result["times"].items()}
    figures = {f"report_{case}_{fmt}_s": round(med[f"{case} {fmt}"], 3)
               for case in ("current", "past") for fmt in ("json", "html", "pdf")}
    figures |= {"report_json_s": figures["report_current_json_s"], "report_pdf_s": figures["report_current_pdf_s"],
                "report_live_status_s": round(med["live_status"], 3),
                "report_raw_live_reads_s": round(med["raw live: all reads"], 3),
                **{f"report_{case}_pdf_render_cpu_s": round(med[f"{case} pdf: render cpu"], 3)
                   for case in ("current", "past")},
                "report_raw_as_of_reads_s": round(med["raw as-of: all reads"], 3),
                "report_current_json_cold_s": round(result["info"]["cold json"], 3),
                "report_pdf_pages": result["info"]["current pdf pages"],
                "report_past_pdf_pages": result["info"]["past pdf pages"],
                "report_tasks": result["info"]["current tasks"],
                "report_settings": {"scale": args.scale, "repeat": args.repeat, "seed": args.seed}}
    rss = {"reports_bench": _rss_mb()} | ({} if loader_rss is None else {"loader": loader_rss})
    if server is not None and harness.rss_mb(server.proc.pid, "VmHWM") is not None:
        rss["ferretdb"] = harness.rss_mb(server.proc.pid, "VmHWM")
    return {"figures": figures, "rss": rss}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full size (default 1.0)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each figure (default 3)")
    parser.add_argument("--seed", type=int, default=17, help="random seed of the generated term")
    parser.add_argument("--db", help="with NQT_MONGO_URL: a database of that name, loaded by the first run and "
                                     "reused (kept, not dropped) by the next ones with the same --db")
    parser.add_argument("--profile", action="store_true",
                        help="then py-spy profiles of the current report as JSON, HTML and PDF, in "
                             "bench/results/profiles/")
    parser.add_argument("--profile-duration", type=float, default=30.0, help="seconds profiled per format (30)")
    args = parser.parse_args()
    if not 0 < args.scale <= 10 or args.repeat < 1:
        parser.error("--scale must be in (0, 10] and --repeat at least 1")

    url = os.environ.get("NQT_MONGO_URL")
    if args.db and not url:
        parser.error("--db needs NQT_MONGO_URL (a server that outlives the run)")
    db_name = args.db or f"nqt_bench{secrets.token_hex(3)}_reports"
    workdir, server = None, None
    try:
        if not url:
            workdir = Path(tempfile.mkdtemp(prefix="nqt-bench-reports-"))
            server = infra.start_ferretdb(workdir / "ferretdb", infra.free_port())
            url = f"mongodb://127.0.0.1:{server.port}"
            print(f"FerretDB on 127.0.0.1:{server.port} (data in {workdir})", flush=True)
        else:
            print(f"using NQT_MONGO_URL, database {db_name} "
                  f"({'kept for the next runs' if args.db else 'dropped at the end'})", flush=True)
        loader_rss = None
        if args.db and asyncio.run(_loaded(url, db_name)):
            print(f"reusing database {db_name}, loaded by an earlier run (its --scale and --seed)", flush=True)
        elif not _load_in_child(url, db_name, args):
            return 1
        else:
            loader_rss = _rss_mb(resource.RUSAGE_CHILDREN)
        result = asyncio.run(measure(url, db_name, args.repeat))
        if args.profile:
            asyncio.run(profile(url, db_name, args))
        print_results(result, args, loader_rss, _ferret_rss(server))
        merged = results(result, loader_rss, server, args)
        path = harness.write_results(merged["figures"], script="reports", rss=merged["rss"])
        print(f"results merged into {path}")
        return 0
    finally:
        if server is not None:
            server.stop()
        elif url and not args.db:
            asyncio.run(_drop(url, db_name))
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)


def _load_in_child(url: str, db_name: str, args) -> bool:
    """Load the term in a child process (so that the peak RSS printed is the reports' alone)."""
    loader = multiprocessing.get_context("spawn").Process(
        target=_loader_main, args=(url, db_name, args.scale, args.seed), name="bench-reports-loader")
    loader.start()
    try:
        loader.join()
    finally:
        if loader.is_alive():
            loader.terminate()
            loader.join()
    if loader.exitcode != 0:
        print(f"loading failed (exit code {loader.exitcode})", file=sys.stderr)
    return loader.exitcode == 0


async def _loaded(url: str, db_name: str) -> bool:
    """A database a finished load left: the consistency check runs after the last write."""
    client = mongo.connect(url)
    try:
        return await client[db_name].tasks.estimated_document_count() > 0
    finally:
        await client.close()


async def profile(url: str, db_name: str, args) -> None:
    """py-spy on this process while it makes the current report again and again in one format."""
    client = mongo.connect(url)
    try:
        service = ReportsService(ReportsStore(client[db_name]), Clock(fixed=NOW))
        tag = f"scale{args.scale:g}".replace(".", "p")
        for fmt in ("json", "html", "pdf"):
            stem = harness.PROFILES / f"report-current-{fmt}-{tag}"
            with profiles.recording(os.getpid(), stem, duration=args.profile_duration):
                deadline, runs = time.monotonic() + args.profile_duration + 1, 0
                while time.monotonic() < deadline:
                    handlers.rendered(await service.report(cycle_code=CURRENT_CYCLE), fmt)
                    runs += 1
            print(f"profile of the current report as {fmt} ({runs} runs): {stem.with_suffix('.txt')}", flush=True)
    finally:
        await client.close()


async def _drop(url: str, db_name: str) -> None:
    client = mongo.connect(url)
    try:
        await client.drop_database(db_name)
        await client.drop_database(f"{db_name}_check")
    finally:
        await client.close()


if __name__ == "__main__":
    sys.exit(main())
