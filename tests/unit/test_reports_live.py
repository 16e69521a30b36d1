"""The live status kept as changes arrive says exactly what the roll-up computed from the whole
state says: any sequence of changes (plan revisions dropping tasks, task states out of order,
registry changes, unit reports), on any day."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.cycles import due_date, next_quarter

from services.reports import live, rollup
from services.reports.service import reporting_cycle
from services.reports.snapshot import Snapshot

PROGRAMMES, UNITS, TASKS = ["01", "02", "03"], ["SO-KHDT", "SO-TC", "Q-BADINH", "BTV"], [f"T-{n}" for n in range(8)]
PROGRESS = [0, 0.1, 10, 12.5, 33.3, 100 / 3, 50, 66.7, 99.95, 100]
DUE = ["2020-12-31", "2021-01-14", "2021-03-14", "2021-03-15", "2021-04-01", "2021-06-14", "2021-06-30", "2022-01-01"]
TIMES = ["2021-03-01T00:00:00.000000Z", "2021-03-16T02:00:00.000000Z", "2021-03-17T17:00:00.000000Z",
         "2021-06-20T01:00:00.000000Z", "2021-12-20T01:00:00.000000Z"]
PERSON = {"name": "Nguyễn Văn An", "position": "Phó Giám đốc"}


def change(kind: str, key: str, state: dict, *, programme: str | None = None, seq: int = 0, version: str = "v",
           accepted_at: str = TIMES[0]) -> dict:
    return {"kind": kind, "id": key, "programme": programme, "seq": seq, "state": state, "version": version,
            "accepted_at": accepted_at, "event_time": accepted_at, "event_key": f"X:{key}:{seq}:{version}"}


registry = st.one_of(
    st.builds(lambda code, lead, expected: change("programme", code, {"code": code, "title": f"Chương trình {code}",
                                                                      "lead_unit": lead, "plans_expected": expected}),
              st.sampled_from(PROGRAMMES), st.sampled_from(UNITS), st.integers(0, 3)),
    st.builds(lambda code, kind: change("unit", code, {"code": code, "name": f"Đơn vị {code}", "kind": kind}),
              st.sampled_from(UNITS), st.sampled_from(["department", "district", "city_body"])),
    st.builds(lambda expected: change("settings", "settings", {"code": "settings", "reporting": {
        "expected_units": expected}}), st.one_of(st.just("default"), st.lists(st.sampled_from(UNITS), max_size=3))),
    st.builds(lambda code, target: change("indicator", code, {"code": code, "name": code, "direction": "increase",
                                                              "baseline": {"value": 1, "year": 2020},
                                                              "targets": {"2025": target}}),
              st.sampled_from(["CT-01", "CT-02"]), st.sampled_from([5, 10])),
)
task = st.builds(
    lambda n, seq, status, progress, due, lead, dropped: change(
        "task", TASKS[n], {"programme": PROGRAMMES[n % 3], "plan": f"P-{n % 3}", "lead_unit": lead, "title": "Việc",
                           "lead_person": PERSON, "due_date": due, "status": "cancelled" if dropped else status,
                           "progress": progress, "as_of": None, "dropped": dropped},
        programme=PROGRAMMES[n % 3], seq=seq),
    st.integers(0, len(TASKS) - 1), st.integers(1, 6),
    st.sampled_from(["not_started", "in_progress", "completed", "blocked", "cancelled"]), st.sampled_from(PROGRESS),
    st.sampled_from(DUE), st.sampled_from(UNITS[:3]), st.booleans())
version = st.sampled_from(TIMES).flatmap(lambda t: st.sampled_from([f"{t}|A", f"{t}|B"]))
facts = st.one_of(
    st.builds(lambda n, submitted, day: change("plan", f"P-{n}", {"status": "submitted", "issued_on": day}
                                               if submitted else {"status": "rejected"}, programme=PROGRAMMES[n]),
              st.integers(0, 2), st.booleans(), st.sampled_from(DUE)),
    st.builds(lambda code, v, day, steering: change("programme_issued", code, {
        "programme": code, "issued_on": day, "document_no": f"{code}-CTr/TU",
        "steering_committee": {"established_on": steering}}, programme=code, version=v),
              st.sampled_from(PROGRAMMES), version, st.sampled_from(DUE), st.sampled_from(DUE)),
    st.builds(lambda ind, period, value, v: change("indicator_value", f"{ind}|{period}", {
        "indicator": ind, "period": period, "value": value}, version=v),
              st.sampled_from(["CT-01", "CT-02"]), st.sampled_from(["2021", "2021-Q1", "2021-H1"]),
              st.sampled_from([1.0, 6.5, 12.0]), version),
    st.builds(lambda unit, cycle, time, v, accepted: change("unit_report", f"{unit}|{cycle}", {
        "unit": unit, "cycle": cycle, "time": time, "document_no": f"{unit}/BC"}, version=v, accepted_at=accepted),
              st.sampled_from(UNITS), st.sampled_from(["2021-Q1", "2021-Q2"]), st.sampled_from(TIMES), version,
              st.sampled_from(TIMES)),
    st.builds(lambda n, time, prog: change("supervision", f"S-{n}", {
        "programme": prog, "kind": "giam_sat", "source": "MTTQ", "finding": "Chậm", "time": time}),
              st.integers(0, 4), st.sampled_from(TIMES), st.sampled_from(PROGRAMMES)),
)
# any day, and often a due date or the day after one, where overdue begins
days = st.one_of(st.dates(date(2021, 1, 1), date(2022, 3, 31)),
                 st.tuples(st.sampled_from(DUE), st.integers(0, 1)).map(
                     lambda d: date.fromisoformat(d[0]) + timedelta(days=d[1])))


class Reference:
    """The read model as the database keeps it ($set upserts, version and seq guards), listed whole."""

    def __init__(self):
        self.c: dict[str, dict[str, dict]] = {}

    def apply(self, c: dict) -> None:
        col = lambda name: self.c.setdefault(name, {})
        kind, key, state = c["kind"], c["id"], c["state"]
        if kind in live.REGISTRY:
            col(live.REGISTRY[kind]).setdefault(key, {"_id": key}).update(state)
        elif kind == "plan":
            plan = col("plans").setdefault(key, {"_id": key, "programme": c["programme"], "submitted": False})
            if state["status"] == "submitted":
                plan.update(programme=c["programme"], submitted=True, issued_on=state.get("issued_on"))
        elif kind == "task":
            known = col("tasks").get(key)
            if known is None or known["seq"] < c["seq"]:
                col("tasks")[key] = live.task_doc(c)
        elif kind == "supervision":
            col("supervisions").setdefault(key, {"_id": key, **state})
        else:
            name = {"programme_issued": "issued", "indicator_value": "indicator_values"}.get(kind, "unit_reports")
            doc = col(name).get(key)
            if doc is None or doc["version"] < c["version"]:
                col(name)[key] = {**(doc or {"_id": key}), **state, "version": c["version"]}
            if kind == "unit_report":
                col(name)[key]["received_at"] = min(col(name)[key].get("received_at", "~"), c["accepted_at"])

    def snapshot(self, cycle: str, window_start: str) -> Snapshot:
        get = lambda name: self.c.get(name, {})
        values: dict[str, list] = {}
        for doc in get("indicator_values").values():
            values.setdefault(doc["indicator"], []).append(doc)
        return Snapshot(programmes=sorted(get("programmes").values(), key=lambda d: d["_id"]),
                        units=dict(get("units")), indicators=sorted(get("indicators").values(), key=lambda d: d["_id"]),
                        settings=get("settings").get("settings") or {}, issued=dict(get("issued")),
                        plans=list(get("plans").values()), tasks=list(get("tasks").values()), indicator_values=values,
                        unit_reports={d["unit"]: d for d in get("unit_reports").values() if d["cycle"] == cycle},
                        supervisions=[d for d in get("supervisions").values() if d["time"] >= window_start])


def moment(today: date) -> rollup.Moment:
    cycle = reporting_cycle(today)
    due = due_date(cycle, 2)
    return rollup.Moment(cycle=cycle, as_of=today, due_date=due, due_instant=f"{due.isoformat()}T16:59:59.999999Z",
                         known_at="2022-01-01T00:00:00.000000Z", next_due_date=due_date(next_quarter(cycle), 2))


def both(changes: list[dict]) -> tuple[live.Live, Reference]:
    state, reference = live.Live(), Reference()
    for c in changes:
        state.apply(c)
        reference.apply(c)
    return state, reference


def statuses(state: live.Live, reference: Reference, today: date) -> tuple[dict, dict]:
    when = moment(today)
    window_start = (when.cycle.start - timedelta(days=1)).isoformat() + "T16:59:59.999999Z"
    return (rollup.build(state.snapshot(cycle=when.cycle.code, window_start=window_start), when),
            rollup.build(reference.snapshot(when.cycle.code, window_start), when))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(registry, task, task, task, facts), max_size=60), days)
def test_the_status_kept_as_changes_arrive_is_the_roll_up_of_the_whole_state(changes, today):
    state, reference = both(changes)
    kept, computed = statuses(state, reference, today)
    assert kept == computed


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(registry, task, task, facts), max_size=50), days, st.sets(st.sampled_from(PROGRAMMES)))
def test_a_replica_that_drops_programmes_and_loads_them_again_says_the_same(changes, today, dropped):
    """Programmes handed to another replica and back: their tasks loaded from the read model anew."""
    state, reference = both(changes)
    stored = [t for t in reference.c.get("tasks", {}).values() if t["programme"] in dropped]
    state.drop_programmes(dropped)
    state.load_tasks(stored)
    kept, computed = statuses(state, reference, today)
    assert kept == computed


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(task, max_size=40), days)
def test_the_tally_documents_another_replica_reads_give_the_same_numbers(changes, today):
    state, _ = both(changes)
    copied = live.TallyView({p: live.Tally.from_doc(t.to_doc()) for p, t in state.tallies.items()}, state.open_tasks)
    as_of, view = today.isoformat(), state.view()
    for programme in [None, *PROGRAMMES]:
        assert copied.counts(programme, as_of) == view.counts(programme, as_of)
        assert copied.progress(programme) == view.progress(programme)
    assert copied.overdue_by_unit(as_of) == view.overdue_by_unit(as_of) and copied.leads() == view.leads()


def test_a_task_state_older_than_the_one_kept_changes_nothing():
    newer = change("task", "T-1", {"programme": "01", "lead_unit": "SO-KHDT", "title": "Việc", "due_date": DUE[0],
                                   "status": "completed", "progress": 100}, programme="01", seq=3)
    older = {**newer, "seq": 2, "state": {**newer["state"], "status": "in_progress", "progress": 40}}
    state, reference = both([newer, older])
    kept, computed = statuses(state, reference, date(2021, 4, 5))
    assert kept == computed and kept["programmes"] == [] and kept["totals"]["tasks"]["completed"] == 1
    assert kept["overdue_tasks"] == []


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(registry, task, task, task), max_size=60), days, st.integers(0, 4), st.integers(1, 3))
def test_a_bounded_status_lists_the_head_of_each_list_with_its_total_and_pages_give_the_rest(changes, today, limit,
                                                                                             page):
    """The status's lists hold their first `limit` tasks and how many there are; the pages, read one
    after another, give the whole list in its order, from memory as from the whole state."""
    state, reference = both(changes)
    when = moment(today)
    whole = rollup.build(reference.snapshot(when.cycle.code, ""), when)
    for snapshot in (state.snapshot(cycle=when.cycle.code, window_start=""), reference.snapshot(when.cycle.code, "")):
        bounded = rollup.build(snapshot, when, limit=limit)
        for key, listed in (("overdue_tasks", lambda s: s), ("tasks_due", lambda s: s["next_period"])):
            total = "overdue_tasks_total" if key == "overdue_tasks" else "tasks_due_total"
            assert listed(bounded)[key] == listed(whole)[key][:limit]
            assert listed(bounded)[total] == listed(whole)[total] == len(listed(whole)[key])
        assert bounded["overdue_tasks_total"] == whole["totals"]["tasks"]["overdue"]
        for which, key in ((rollup.OVERDUE, "overdue_tasks"), (rollup.DUE_NEXT, "tasks_due")):
            pages = [rollup.task_page(snapshot, when, which, offset=offset, limit=page)
                     for offset in range(0, len(TASKS) + page, page)]
            assert [t for p in pages for t in p["tasks"]] == (whole if key == "overdue_tasks"
                                                              else whole["next_period"])[key]
            assert {p["total"] for p in pages} == {len([t for p in pages for t in p["tasks"]])}
        assert _without_lists(bounded) == _without_lists(whole)  # every number the same


def _without_lists(status: dict) -> dict:
    return {**status, "overdue_tasks": None, "next_period": {**status["next_period"], "tasks_due": None}}


def test_a_task_keeps_what_its_new_state_says_where_it_differs_from_the_state_before():
    # A new state takes the values it shares with the one before from it (held once): only those.
    first = change("task", "T-1", {"programme": "01", "lead_unit": "SO-KHDT", "title": "Việc", "due_date": DUE[0],
                                   "status": "in_progress", "progress": 10, "lead_person": dict(PERSON),
                                   "milestones": [{"title": "Bước 1", "due_date": DUE[0]}],
                                   "coordinating_units": ["SO-TC"]}, programme="01", seq=1)
    same = {**first, "seq": 2, "state": {**first["state"], "progress": 20, "lead_person": dict(PERSON),
                                        "milestones": [{"title": "Bước 1", "due_date": DUE[0]}]}}
    moved = {**first, "seq": 3, "state": {**first["state"], "lead_unit": "SO-TC", "due_date": DUE[2],
                                         "lead_person": {**PERSON, "position": "Giám đốc"},
                                         "milestones": [{"title": "Bước 1", "due_date": DUE[2]}],
                                         "coordinating_units": ["Q-BADINH"]}}
    state = live.Live()
    state.apply(first)
    before = state.tasks["T-1"]
    state.apply(same)
    shared = state.tasks["T-1"]
    assert shared["progress"] == 20 and shared["milestones"] is before["milestones"]
    assert shared["lead_person"] is before["lead_person"]
    state.apply(moved)
    task = state.tasks["T-1"]
    assert (task["lead_unit"], task["due_date"], task["lead_person"]["position"], task["milestones"][0]["due_date"],
            task["coordinating_units"]) == ("SO-TC", DUE[2], "Giám đốc", DUE[2], ["Q-BADINH"])
    assert state.tallies["01"].leads == {"SO-TC": 1}
