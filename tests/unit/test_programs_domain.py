"""The programme's rules for plans (contract section 2): every task names its
collective, its individual, a roadmap and a completion date; a plan that breaks
this is rejected whole, one finding per offending task."""

from __future__ import annotations

import copy

import pytest

from services.programs.domain import (
    Rejection,
    check_plan,
    may_update_task,
    offending_tasks,
    version_of,
)
from shared.events import PlanSubmitted, parse_event

KNOWN = {"VPTU", "UBND", "SO-KHDT", "SO-TC", "SO-CT", "SO-XD", "Q-HOANKIEM"}
PLAN_KEY = "SO-KHDT:KH-SOKHDT-02-2021"


def task(task_id: str, **over) -> dict:
    base = {
        "task_id": task_id,
        "title": f"Nhiệm vụ {task_id}",
        "lead_unit": "SO-KHDT",
        "lead_person": {"name": "Trần Thị Bình", "position": "Phó Giám đốc Sở"},
        "coordinating_units": ["SO-TC"],
        "due_date": "2021-12-31",
        "milestones": [{"title": "Trình dự thảo", "due_date": "2021-09-30"},
                       {"title": "Hoàn thành", "due_date": "2021-12-31"}],
    }
    base.update(over)
    return base


def plan(*tasks: dict) -> PlanSubmitted:
    return PlanSubmitted.model_validate({
        "plan_id": "KH-SOKHDT-02-2021", "programme": "02",
        "title": "Kế hoạch thực hiện Chương trình 02-CTr/TU", "document_no": "215/KH-SKHĐT",
        "issued_on": "2021-04-05", "tasks": list(tasks),
    })


def check(p: PlanSubmitted, owners: dict[str, str] | None = None):
    return check_plan(p, known_units=KNOWN, owners=owners or {}, plan_key=PLAN_KEY)


def test_a_complete_plan_has_no_findings():
    assert check(plan(task("T1"), task("T2", lead_unit="SO-CT", coordinating_units=[]))) == []


def test_a_milestone_on_the_due_date_is_fine():
    assert check(plan(task("T1", milestones=[{"title": "Xong", "due_date": "2021-12-31"}]))) == []


def test_a_task_without_milestones_has_no_roadmap():
    findings = check(plan(task("T1"), task("T2", milestones=[])))
    assert [(f.pointer, f.code) for f in findings] == [("/data/tasks/1/milestones", "missing_roadmap")]
    assert "lộ trình" in findings[0].message_vi
    assert "roadmap" in findings[0].message_en


def test_an_unknown_lead_unit_is_a_finding():
    findings = check(plan(task("T1", lead_unit="SO-KHONGCO")))
    assert [(f.pointer, f.code) for f in findings] == [("/data/tasks/0/lead_unit", "unknown_lead_unit")]
    assert "SO-KHONGCO" in findings[0].message_vi and "SO-KHONGCO" in findings[0].message_en


def test_an_unknown_coordinating_unit_is_a_finding():
    findings = check(plan(task("T1", coordinating_units=["SO-TC", "SO-ABC"])))
    assert [(f.pointer, f.code) for f in findings] == [
        ("/data/tasks/0/coordinating_units/1", "unknown_coordinating_unit")]


def test_a_milestone_after_the_due_date_is_a_finding():
    findings = check(plan(task("T1", due_date="2021-06-30",
                               milestones=[{"title": "Sơ kết", "due_date": "2021-06-15"},
                                           {"title": "Tổng kết", "due_date": "2021-07-15"}])))
    assert [(f.pointer, f.code) for f in findings] == [
        ("/data/tasks/0/milestones/1/due_date", "milestone_after_due_date")]
    assert "Tổng kết" in findings[0].message_vi
    assert "2021-07-15" in findings[0].message_en and "2021-06-30" in findings[0].message_en


def test_a_duplicate_task_id_is_a_finding_on_the_second_occurrence():
    findings = check(plan(task("T1"), task("T2"), task("T1")))
    assert [(f.pointer, f.code) for f in findings] == [("/data/tasks/2/task_id", "duplicate_task_id")]


def test_a_task_owned_by_another_plan_is_a_finding():
    owners = {"T1": PLAN_KEY, "T2": "SO-TC:KH-SOTC-02-2021"}
    findings = check(plan(task("T1"), task("T2")), owners)
    assert [(f.pointer, f.code) for f in findings] == [("/data/tasks/1/task_id", "task_in_other_plan")]
    assert "SO-TC:KH-SOTC-02-2021" in findings[0].message_en


def test_a_revision_keeps_its_own_tasks():
    assert check(plan(task("T1"), task("T2")), {"T1": PLAN_KEY, "T2": PLAN_KEY}) == []


def test_offending_tasks_counts_tasks_not_findings():
    findings = check(plan(
        task("T1", lead_unit="SO-KHONGCO", milestones=[]),  # two findings, one task
        task("T2"),
        task("T3", coordinating_units=["X-1", "X-2"]),  # two findings, one task
        task("T4", due_date="2021-01-31"),  # both milestones late: two findings, one task
    ))
    assert len(findings) == 6
    assert offending_tasks(findings) == 3


def test_offending_tasks_distinguishes_task_10_from_task_1():
    tasks = [task(f"T{i}") for i in range(12)]
    tasks[1] = task("T1", milestones=[])
    tasks[10] = task("T10", milestones=[])
    assert offending_tasks(check(plan(*tasks))) == 2


@pytest.mark.parametrize("n", [1, 7])
def test_invalid_plan_rejection_says_how_many_tasks_in_both_languages(n):
    rejection = Rejection.of("invalid_plan", n, findings=[])
    assert rejection.code == "invalid_plan"
    assert f"({n} nhiệm vụ chưa đạt)" in rejection.message_vi
    assert f"({n} task(s) do not)" in rejection.message_en


def test_rejection_keeps_its_findings():
    findings = check(plan(task("T1", milestones=[])))
    rejection = Rejection.of("invalid_plan", offending_tasks(findings), findings=findings)
    assert rejection.findings == tuple(findings)


def test_lead_unit_and_office_may_update_a_task_others_may_not():
    assert may_update_task("SO-KHDT", "SO-KHDT")
    assert may_update_task("VPTU", "SO-KHDT")
    assert not may_update_task("SO-TC", "SO-KHDT")
    assert not may_update_task("BTV", "SO-KHDT")
    assert not may_update_task("UBND", "SO-KHDT")


def update(source: str, event_id: str, time: str):
    return parse_event({
        "specversion": "1.0", "id": event_id, "source": source, "type": "task.updated", "time": time,
        "data": {"task_id": "T1", "programme": "02", "status": "in_progress", "progress": 50,
                 "as_of": "2021-06-14", "reported_by": {"name": "Trần Thị Bình", "position": "Phó Giám đốc"}},
    })


def test_version_orders_by_event_time_before_id():
    earlier = update("VPTU", "zzz-9", "2021-06-14T08:00:00+07:00")
    later = update("SO-KHDT", "aaa-1", "2021-06-14T09:00:00+07:00")
    assert version_of(earlier) < version_of(later)


def test_version_compares_instants_across_utc_offsets():
    # 09:00 in Hanoi is 02:00 UTC, i.e. before 03:00 UTC written as 03:00Z.
    hanoi = update("SO-KHDT", "zzz", "2021-06-14T09:00:00+07:00")
    utc = update("SO-KHDT", "aaa", "2021-06-14T03:00:00Z")
    assert version_of(hanoi) < version_of(utc)
    # and 23:30 on 13 June in UTC-05:00 is 04:30Z on 14 June, after both
    west = update("SO-KHDT", "000", "2021-06-13T23:30:00-05:00")
    assert sorted([west, utc, hanoi], key=version_of) == [hanoi, utc, west]


def test_version_of_sub_second_times():
    a = update("SO-KHDT", "zzz", "2021-06-14T09:00:00.100+07:00")
    b = update("SO-KHDT", "aaa", "2021-06-14T09:00:00.900+07:00")
    c = update("SO-KHDT", "mmm", "2021-06-14T09:00:01+07:00")
    assert sorted([c, b, a], key=version_of) == [a, b, c]


def test_same_time_ties_break_on_event_key_deterministically():
    a = update("SO-KHDT", "001", "2021-06-14T09:00:00+07:00")
    b = update("SO-KHDT", "002", "2021-06-14T02:00:00Z")
    assert version_of(a) != version_of(b)
    assert version_of(a) < version_of(b)
    assert version_of(copy.deepcopy(a)) == version_of(a)
