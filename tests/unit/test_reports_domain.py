"""The roll-up numbers exactly as contract section 4 defines them."""

from __future__ import annotations

from datetime import date

import pytest

from services.reports.domain import is_overdue, programme_status, progress_pct, report_status, task_counts
from services.reports.snapshot import unit_reports_from_history

AS_OF = date(2021, 3, 14)  # cut-off of 2021-Q1


def t(status: str, due: str = "2021-06-30", progress: float = 0) -> dict:
    return {"status": status, "due_date": due, "progress": progress}


@pytest.mark.parametrize("status", ["not_started", "in_progress", "blocked"])
def test_an_open_task_past_its_due_date_is_overdue(status):
    assert is_overdue(t(status, "2021-03-13"), AS_OF)


def test_due_on_the_as_of_date_is_not_overdue():
    assert not is_overdue(t("in_progress", "2021-03-14"), AS_OF)


def test_due_after_the_as_of_date_is_not_overdue():
    assert not is_overdue(t("not_started", "2021-03-15"), AS_OF)


@pytest.mark.parametrize("status", ["completed", "cancelled"])
def test_closed_tasks_past_due_are_not_overdue(status):
    assert not is_overdue(t(status, "2020-12-31"), AS_OF)


def test_task_counts_by_status_and_overdue():
    tasks = [
        t("not_started", "2021-03-01"),  # overdue
        t("not_started", "2021-03-14"),
        t("in_progress", "2021-02-28"),  # overdue
        t("in_progress", "2021-12-31"),
        t("blocked", "2021-01-15"),  # overdue
        t("completed", "2021-01-15"),
        t("cancelled", "2021-01-15"),
    ]
    assert task_counts(tasks, AS_OF) == {
        "total": 7, "not_started": 2, "in_progress": 2, "completed": 1, "blocked": 1, "cancelled": 1,
        "overdue": 3,
    }


def test_task_counts_of_nothing_are_all_zero():
    assert task_counts([], AS_OF) == {
        "total": 0, "not_started": 0, "in_progress": 0, "completed": 0, "blocked": 0, "cancelled": 0,
        "overdue": 0,
    }


def test_task_counts_accept_a_generator():
    assert task_counts((t("blocked", "2021-01-01") for _ in range(3)), AS_OF)["overdue"] == 3


def test_progress_is_the_mean_of_non_cancelled_tasks():
    tasks = [t("in_progress", progress=20), t("in_progress", progress=60), t("cancelled", progress=0)]
    assert progress_pct(tasks) == 40.0


def test_a_completed_task_counts_100_whatever_its_progress_says():
    tasks = [t("completed", progress=40), t("not_started", progress=0)]
    assert progress_pct(tasks) == 50.0


def test_progress_has_one_decimal():
    assert progress_pct([t("in_progress", progress=p) for p in (10, 20, 20)]) == 16.7
    assert progress_pct([t("in_progress", progress=p) for p in (0, 0, 100)]) == 33.3


@pytest.mark.parametrize(("values", "expected"), [
    ((33.3, 33.4), 33.4),  # mean 33.35 -> 33.4
    ((0.05, 0.1), 0.1),  # mean 0.075 -> 0.1
    ((10.25, 10.2, 10.4, 10.5), 10.3),  # mean 10.3375 -> 10.3
    ((12.25, 12.25), 12.3),  # mean 12.25 -> 12.3 (half up, not half even)
    ((0.45,), 0.5),
])
def test_progress_rounds_half_up(values, expected):
    assert progress_pct([t("in_progress", progress=v) for v in values]) == expected


def test_progress_of_no_tasks_is_none():
    assert progress_pct([]) is None


def test_progress_of_only_cancelled_tasks_is_none():
    assert progress_pct([t("cancelled", progress=80)]) is None


PROGRAMME = {"code": "02", "title": "Đẩy mạnh đổi mới mô hình tăng trưởng ... giai đoạn 2021-2025",
             "lead_unit": "UBND", "plans_expected": 5}
ISSUED = {"document_no": "02-CTr/TU",
          "steering_committee": {"decision_no": "126-QĐ/TU", "established_on": "2021-03-25",
                                 "head": {"name": "Nguyễn Văn A", "position": "Chủ tịch UBND thành phố"}}}


def test_programme_status_counts_plans_and_tasks():
    plans = [{"submitted": True}, {"submitted": True}, {"submitted": False}]
    tasks = [t("completed", "2021-02-01", 100), t("in_progress", "2021-03-01", 50), t("cancelled")]
    status = programme_status(PROGRAMME, issued=ISSUED, tasks=tasks, plans=plans, as_of=AS_OF)
    assert status["code"] == "02"
    assert status["title"] == PROGRAMME["title"]
    assert status["issued"] is True
    assert status["document_no"] == "02-CTr/TU"
    assert status["steering_committee"]["decision_no"] == "126-QĐ/TU"
    assert status["plans"] == {"expected": 5, "submitted": 2, "rejected": 1}
    assert status["tasks"]["total"] == 3
    assert status["tasks"]["overdue"] == 1
    assert status["progress_pct"] == 75.0


def test_a_programme_not_yet_issued():
    status = programme_status({"code": "10", "title": "Phòng, chống tham nhũng"}, issued=None, tasks=[],
                              plans=[], as_of=AS_OF)
    assert status["issued"] is False
    assert status["steering_committee"] is None
    assert status["plans"] == {"expected": 0, "submitted": 0, "rejected": 0}
    assert status["tasks"]["total"] == 0
    assert status["progress_pct"] is None


DUE = "2021-03-16T16:59:59.999999Z"  # the end of 16 March in Hanoi


def test_a_report_is_late_when_received_after_the_due_date_whatever_date_its_sender_wrote():
    back_dated = {"time": "2021-03-15T02:00:00.000000Z", "received_at": "2021-03-19T02:00:00.000000Z"}
    assert report_status(back_dated, DUE) == "late"
    assert report_status(back_dated, DUE, by_event_time=True) == "on_time"     # replaying history
    assert report_status({**back_dated, "received_at": "2021-03-16T09:00:00.000000Z"}, DUE) == "on_time"
    assert report_status(None, DUE) == "missing"


def test_a_units_report_counts_as_received_when_its_first_version_was():
    def fact(key: str, time: str, accepted_at: str) -> dict:
        return {"subject": "SO-KHDT|2021-Q1", "version": f"{time}|{key}", "accepted_at": accepted_at,
                "data": {"unit": "SO-KHDT", "time": time, "document_no": key}}
    reports = unit_reports_from_history([fact("2/BC", "2021-03-20T00:00:00Z", "2021-03-20T00:00:01Z"),
                                         fact("1/BC", "2021-03-15T00:00:00Z", "2021-03-15T00:00:01Z")])
    assert reports == {"SO-KHDT": {"unit": "SO-KHDT", "time": "2021-03-20T00:00:00Z", "document_no": "2/BC",
                                   "received_at": "2021-03-15T00:00:01Z"}}
