"""Reporting cycles: Decree 09/2019/NĐ-CP art. 12 windows, due dates, labels."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from shared.cycles import UnknownCycle, current_quarter, due_date, label, next_quarter, parse_cycle, term_cycles


@pytest.mark.parametrize("code, start, cut_off", [
    ("2021-Q1", date(2020, 12, 15), date(2021, 3, 14)),
    ("2021-Q2", date(2021, 3, 15), date(2021, 6, 14)),
    ("2021-Q3", date(2021, 6, 15), date(2021, 9, 14)),
    ("2021-Q4", date(2021, 9, 15), date(2021, 12, 14)),
    ("2021-H1", date(2020, 12, 15), date(2021, 6, 14)),
    ("2021", date(2020, 12, 15), date(2021, 12, 14)),
    ("2021-2025", date(2020, 12, 15), date(2025, 12, 14)),
])
def test_data_windows(code, start, cut_off):
    cycle = parse_cycle(code)
    assert (cycle.start, cycle.cut_off) == (start, cut_off)


@pytest.mark.parametrize("code", ["2021-Q5", "2021-H2", "21-Q1", "2025-2021", "", "2021-q1"])
def test_codes_that_name_no_cycle(code):
    with pytest.raises(UnknownCycle):
        parse_cycle(code)


def test_quarters_tile_the_year_without_gaps_or_overlaps():
    day = date(2020, 12, 15)
    while day <= date(2022, 12, 14):
        cycle = current_quarter(day)
        assert cycle.start <= day <= cycle.cut_off
        day += timedelta(days=1)
    assert next_quarter(parse_cycle("2021-Q4")).code == "2022-Q1"


@pytest.mark.parametrize("code, due", [
    ("2021-Q1", date(2021, 3, 16)),   # cut-off Sunday 14 March: Monday, Tuesday
    ("2021-Q2", date(2021, 6, 16)),   # cut-off Monday 14 June: Tuesday, Wednesday
    ("2021-Q3", date(2021, 9, 16)),   # cut-off Tuesday 14 September: Wednesday, Thursday
    ("2023-Q1", date(2023, 3, 16)),   # cut-off Tuesday 14 March 2023: Wednesday, Thursday
    ("2024", date(2024, 12, 17)),     # cut-off Saturday 14 December: Monday 16, Tuesday 17
])
def test_due_two_working_days_after_the_cut_off(code, due):
    assert due_date(parse_cycle(code)) == due


def test_public_holidays_do_not_count_as_working_days():
    # A cut-off on Wednesday 1 September 2021: 2-3 September is National Day, 4-5 a weekend.
    cycle = replace(parse_cycle("2021-Q3"), cut_off=date(2021, 9, 1))
    assert due_date(cycle) == date(2021, 9, 7)


def test_labels_as_a_report_names_them():
    assert [label(parse_cycle(c)) for c in ("2021-Q1", "2021-Q4", "2021-H1", "2021", "2021-2025")] == [
        "quý I/2021", "quý IV/2021", "6 tháng đầu năm 2021", "năm 2021", "nhiệm kỳ 2021-2025"]


def test_a_term_has_its_cycles_in_cut_off_order():
    cycles = term_cycles(2021, 2022)
    assert [c.code for c in cycles][:6] == ["2021-Q1", "2021-Q2", "2021-H1", "2021-Q3", "2021-Q4", "2021"]
    assert cycles[-1].code == "2021-2022"
    assert [c.cut_off for c in cycles] == sorted(c.cut_off for c in cycles)
