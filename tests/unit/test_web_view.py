"""The web view's pure parts: filters from a query string, where a login may lead, who may be
added as a user, how a task's reports are filed, the indicator's trajectory."""

from __future__ import annotations

import pytest

from services.reports import tasklog
from services.reports.web.auth import PageError, safe_next
from services.reports.web.users import BadInput, User, check_new_user
from services.reports.web.views import TaskFilter, task_filter, trajectory

UNITS = {"SO-KHDT": {"name": "Sở Kế hoạch và Đầu tư"}, "SO-TC": {"name": "Sở Tài chính"}}


def test_a_filter_is_read_from_the_query_and_written_back_for_the_pager():
    flt = task_filter({"unit": "SO-TC", "status": "blocked", "overdue": "1", "page": "3"}, units=UNITS)
    assert flt == TaskFilter(unit="SO-TC", status="blocked", overdue=True, page=3)
    assert flt.query(page=4) == "unit=SO-TC&status=blocked&overdue=1&page=4"
    assert TaskFilter().query() == ""


def test_a_bad_filter_names_every_bad_parameter():
    with pytest.raises(PageError) as refused:
        task_filter({"unit": "SO-XX", "status": "done", "overdue": "yes", "page": "0"}, units=UNITS)
    assert refused.value.status == 400
    for part in ("không có đơn vị 'SO-XX'", "tình trạng 'done' không có", "overdue chỉ nhận 0 hoặc 1",
                 "trang '0' phải là số nguyên dương"):
        assert part in refused.value.message


@pytest.mark.parametrize("asked, goes", [("/ui/tasks/T-1?x=1", "/ui/tasks/T-1?x=1"), ("https://evil.example/", "/ui/"),
                                         ("//evil.example/ui/", "/ui/"), ("/v1/status", "/ui/"), (None, "/ui/")])
def test_after_login_only_a_page_of_the_web_view(asked, goes):
    assert safe_next(asked) == goes


def test_a_user_that_could_not_work_is_refused_with_every_reason():
    with pytest.raises(BadInput) as refused:
        check_new_user(name="Nguyễn", role="leader", unit="SO-KHDT", approver=True, units=set(UNITS))
    message = str(refused.value)
    assert "tên đăng nhập 'Nguyễn'" in message and "--unit chỉ dùng với vai trò unit" in message
    assert "chỉ người dùng vai trò office mới được --approver" in message
    with pytest.raises(BadInput, match="không có đơn vị 'SO-XD' trong danh mục"):
        check_new_user(name="so-xd", role="unit", unit="SO-XD", approver=False, units=set(UNITS))
    check_new_user(name="van.phong", role="office", unit=None, approver=True, units=set(UNITS))


def test_what_each_role_may_see_and_do():
    unit = User(name="so-tc", role="unit", unit="SO-TC", approver=False, must_change=False, session=0)
    office = User(name="vp", role="office", unit=None, approver=True, must_change=False, session=0)
    leader = User(name="ld", role="leader", unit=None, approver=True, must_change=False, session=0)
    assert unit.sees_unit("SO-TC") and not unit.sees_unit("SO-KHDT") and office.sees_unit("SO-KHDT")
    assert office.may_approve and not leader.may_approve and not unit.may_approve


def _report(key: str, seq: int) -> dict:
    return {"id": "T-1", "seq": seq, "event_key": key, "event_time": "2021-03-01T00:00:00Z",
            "accepted_at": "2021-03-02T00:00:00Z", "version": f"v|{key}",
            "fact": {"status": "in_progress", "progress": 10.0, "reported_by": {"name": "A", "position": "B"}}}


def test_a_report_that_made_a_state_is_inserted_and_a_late_one_added_to_the_state_it_met():
    fresh, updates = tasklog.writes([(_report("SO-KHDT:1", 2), True), (_report("SO-KHDT:0", 2), False)])
    assert [d["_id"] for d in fresh] == ["T-1|2"] and tasklog.unpacked(fresh[0]["entries"][0])["source"] == "SO-KHDT"
    assert len(updates) == 1 and updates[0]._filter == {"_id": "T-1|2"}
    assert tasklog.unpacked(updates[0]._doc["$addToSet"]["entries"]["$each"][0])["event_key"] == "SO-KHDT:0"


def test_an_indicator_trajectory_runs_from_its_baseline_to_its_target():
    chart = trajectory({"baseline": {"value": 10, "year": 2020}, "target_2025": 20},
                       [{"period": "2021", "value": 12}, {"period": "2022-Q2", "value": 15}])
    x0, y0, x1, y1 = chart["line"]
    assert x0 < x1 and y0 > y1                       # to the right and up: an increase
    assert [d[0] for d in chart["dots"]] == sorted(d[0] for d in chart["dots"])
    assert chart["target"] == (x1, y1)
    assert trajectory({"baseline": None, "target_2025": None}, []) is None
