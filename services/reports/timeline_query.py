"""Each task's latest status report as of a cut-off, as known at an instant, read from the
timeline's documents (`timeline`: what they hold and why) a round of `_id` reads at a time."""

from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase

from services.reports.timeline import (LATE_FIELDS, TIMELINE, Entry, cut_off_after, open_state, previous_cut_off,
                                       state_ids, unpack)


async def task_reports(db: AsyncDatabase, *, plans: list[dict], cut_off: str, known_at: str) -> list[dict]:
    """The latest status report of each task of `plans` (their history rows) dated on or before
    `cut_off` among those arrived by `known_at`, as history rows."""
    async def read(ids: list[str]) -> dict[str, dict]:
        return {d["_id"]: d async for d in db[TIMELINE].find({"_id": {"$in": ids}})} if ids else {}

    query = Query(plans, cut_off, known_at)
    docs = await read(query.first_ids())
    while ids := query.step(docs):
        docs = await read(ids)
    return query.rows()


class Query:
    """The reads of `task_reports`, one round at a time (pure: the documents come in). For each
    programme: the late reports, then the level the cut-off falls in (the open state, or the
    seal at the cut-off) and, for the tasks whose entry there is dated after the cut-off or
    arrived after `known_at`, the reports applied while that level was open and the level
    below, down to where every task's entry is known by then."""

    def __init__(self, plans: list[dict], cut_off: str, known_at: str):
        self.programmes = sorted({plan["programme"] for plan in plans})
        self.tasks = {task["task_id"] for plan in plans for task in plan["data"].get("tasks", [])}
        self.cut_off, self.known_at, self.cut = cut_off, known_at, cut_off_after(cut_off)
        self.latest: dict[str, Entry] = {}
        self.walks: dict[str, tuple[str, set[str]]] = {}  # programme -> (level whose period is next, tasks open)
        self.first: dict[str, dict] | None = None  # the documents of the first round
        self.started = False

    def first_ids(self) -> list[str]:
        return [f"{kind}|{p}" + ("" if kind == "open" else f"|{self.cut}")
                for p in self.programmes for kind in ("open", "seal", "late")]

    def step(self, docs: dict[str, dict]) -> list[str]:
        """Take the documents read; the ids to read next ([] when done)."""
        if self.first is None:  # the open documents needed name the documents of their state
            self.first = docs
            if ids := [i for p in self.programmes if (opened := docs.get(f"open|{p}")) and opened["cut"] <= self.cut
                       for i in state_ids(opened)]:
                return ids
            docs = {}
        walks, self.walks = self.walks, {}
        if not self.started:
            self.started = True
            docs = {**self.first, **docs}
            for p in self.programmes:
                self._start(p, docs)
        for p, (level, tasks) in walks.items():
            self._period(unpack(docs.get(f"period|{p}|{level}"), []), tasks)
            below = previous_cut_off(level)
            self._level(p, below, unpack(docs.get(f"seal|{p}|{below}"), {}), tasks)
        return [f"{kind}|{p}|{cut}" for p, (level, _) in self.walks.items()
                for kind, cut in (("period", level), ("seal", previous_cut_off(level)))]

    def _start(self, programme: str, docs: dict[str, dict]) -> None:
        opened = docs.get(f"open|{programme}")
        if opened is None:
            return
        if opened["cut"] <= self.cut:  # nothing of it is dated after the cut-off's quarter end
            state = open_state(opened, docs)
            if tasks := self._resolve(state["best"], self.tasks):
                self._period(state["period"], tasks)
                self.walks[programme] = (opened["cut"], tasks)  # its period is read: the seal below next
            return
        for row in (docs.get(f"late|{programme}|{self.cut}") or {}).get("entries", []):
            self._offer(row["task"], [row[f] for f in LATE_FIELDS[1:]])
        self._level(programme, self.cut, unpack(docs.get(f"seal|{programme}|{self.cut}"), {}), self.tasks)

    def _period(self, period: list[list], tasks: set[str]) -> None:
        for task, *entry in period:
            if task in tasks:
                self._offer(task, entry)

    def _level(self, programme: str, level: str, best: dict[str, Entry], tasks: set[str]) -> None:
        if tasks := self._resolve(best, tasks):
            self.walks[programme] = (level, tasks)

    def _resolve(self, best: dict[str, Entry], tasks: set[str]) -> set[str]:
        """Take the entries known by then; the tasks whose entry is not, to look further for."""
        left = set()
        for task in tasks & best.keys():
            if best[task][0] <= self.cut_off and best[task][1] <= self.known_at:
                self._offer(task, best[task])
            else:
                left.add(task)
        return left

    def _offer(self, task: str, entry: Entry) -> None:
        if entry[0] <= self.cut_off and entry[1] <= self.known_at and task in self.tasks \
                and (task not in self.latest or entry[2] > self.latest[task][2]):
            self.latest[task] = entry

    def rows(self) -> list[dict]:
        return [{"subject": task, "version": e[2], "event_time": e[0], "accepted_at": e[1],
                 "data": {"status": e[3], "progress": e[4]}} for task, e in self.latest.items()]
