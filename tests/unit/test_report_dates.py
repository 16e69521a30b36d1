"""The report's dates: each fact counts from its own effective date, and every date is written
the Party's way (Hướng dẫn 36-HD/VPTW)."""

from __future__ import annotations

from datetime import date

import pytest

from shared.cycles import parse_cycle

from services.reports import document, rollup
from services.reports.snapshot import Snapshot

AS_OF = date(2021, 3, 14)


@pytest.mark.parametrize(("day", "long", "short"), [
    (date(2021, 1, 5), "ngày 05 tháng 01 năm 2021", "05/01/2021"),
    (date(2021, 2, 15), "ngày 15 tháng 02 năm 2021", "15/02/2021"),
    (date(2021, 3, 15), "ngày 15 tháng 3 năm 2021", "15/3/2021"),
    (date(2021, 4, 5), "ngày 05 tháng 4 năm 2021", "05/4/2021"),
    (date(2021, 10, 10), "ngày 10 tháng 10 năm 2021", "10/10/2021"),
    (date(2020, 12, 9), "ngày 09 tháng 12 năm 2020", "09/12/2020"),
])
def test_a_leading_zero_only_for_days_below_10_and_for_january_and_february(day, long, short):
    assert document.party_date(day) == long
    assert document.short_date(day) == short
    assert document.date_text("Hà Nội", day) == f"Hà Nội, {long}"


def snapshot(*, issued_on: str, established_on: str, plan_issued_on: str) -> Snapshot:
    return Snapshot(
        programmes=[{"_id": "01", "code": "01", "title": "Chương trình 01", "issue_by": "2021-03-31"}],
        units={}, indicators=[], settings={},
        issued={"01": {"programme": "01", "issued_on": issued_on, "document_no": "01-CTr/TU",
                       "steering_committee": {"decision_no": "101-QĐ/TU", "established_on": established_on}}},
        plans=[{"programme": "01", "submitted": True, "issued_on": plan_issued_on},
               {"programme": "01", "submitted": False}],
        tasks=[])


def built(**dates) -> dict:
    cycle = parse_cycle("2021-Q1")
    moment = rollup.Moment(cycle=cycle, as_of=AS_OF, due_date=date(2021, 3, 16),
                           due_instant="2021-03-16T16:59:59.999999Z", known_at="2021-04-05T02:00:00.000000Z")
    return rollup.build(snapshot(**dates), moment)


def test_facts_dated_on_the_as_of_day_count():
    r = built(issued_on="2021-03-14", established_on="2021-03-14", plan_issued_on="2021-03-14")
    programme = r["programmes"][0]
    assert programme["issued"] and programme["steering_committee"]["decision_no"] == "101-QĐ/TU"
    assert programme["plans"] == {"expected": 0, "submitted": 1, "rejected": 1}
    assert (r["deadline_q1_2021"]["issued_on_time"], r["deadline_q1_2021"]["steering_on_time"]) == (1, 1)


def test_a_steering_committee_established_after_the_as_of_day_is_not_established_yet():
    r = built(issued_on="2021-03-05", established_on="2021-03-15", plan_issued_on="2021-01-10")
    programme = r["programmes"][0]
    assert programme["issued"] and programme["steering_committee"] is None
    assert r["deadline_q1_2021"]["missed"] == [{"code": "01", "issued_on": "2021-03-05",
                                               "steering_established_on": None}]


def test_a_programme_or_plan_issued_after_the_as_of_day_does_not_count_yet():
    r = built(issued_on="2021-03-15", established_on="2021-03-15", plan_issued_on="2021-03-15")
    programme = r["programmes"][0]
    assert (programme["issued"], programme["document_no"], programme["steering_committee"]) == (False, None, None)
    assert programme["plans"] == {"expected": 0, "submitted": 0, "rejected": 1}
    assert r["deadline_q1_2021"]["issued_on_time"] == 0
