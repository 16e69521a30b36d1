"""Reporting cycles and their data windows (Decree 09/2019/NĐ-CP art. 12).

- quarterly `2021-Q1`: 15th of the month before the quarter .. 14th of its last month;
- six-monthly `2021-H1` (sơ kết): 15 Dec of the previous year .. 14 Jun;
- annual `2021`: 15 Dec of the previous year .. 14 Dec;
- whole term `2021-2025` (tổng kết): 15 Dec before the first year .. 14 Dec of the last.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

import holidays

_CODE = re.compile(r"^(?P<year>\d{4})(?:-(?:Q(?P<q>[1-4])|H(?P<h>1)|(?P<end>\d{4})))?$")
KINDS = ("quarterly", "six_monthly", "annual", "term")
FIRST_YEAR, LAST_YEAR = 1900, 2999  # a cycle's window starts in the previous year


class UnknownCycle(ValueError):
    pass


@dataclass(frozen=True)
class Cycle:
    code: str
    kind: str
    start: date      # first day of the data window
    cut_off: date    # last day of the data window ("as of" for reports)


def parse_cycle(code: str) -> Cycle:
    """The cycle named by `code`; UnknownCycle if there is no such cycle."""
    match = _CODE.match(code or "")
    if not match:
        raise UnknownCycle(f"{code!r} is not a cycle code (2021-Q1, 2021-H1, 2021, 2021-2025)")
    if not all(FIRST_YEAR <= int(y) <= LAST_YEAR for y in (match["year"], match["end"]) if y):
        raise UnknownCycle(f"{code!r}: years run from {FIRST_YEAR} to {LAST_YEAR}")
    year = int(match["year"])
    if match["q"]:
        quarter = int(match["q"])
        last_month = quarter * 3
        first = date(year - 1, 12, 15) if quarter == 1 else date(year, last_month - 3, 15)
        return Cycle(code, "quarterly", first, date(year, last_month, 14))
    if match["h"]:
        return Cycle(code, "six_monthly", date(year - 1, 12, 15), date(year, 6, 14))
    if match["end"]:
        end = int(match["end"])
        if end <= year:
            raise UnknownCycle(f"{code!r}: a term ends after it starts")
        return Cycle(code, "term", date(year - 1, 12, 15), date(end, 12, 14))
    return Cycle(code, "annual", date(year - 1, 12, 15), date(year, 12, 14))


def term_cycles(first_year: int, last_year: int) -> list[Cycle]:
    """Every cycle of a term, in the order their cut-offs fall."""
    cycles = [parse_cycle(f"{first_year}-{last_year}")]
    for year in range(first_year, last_year + 1):
        cycles += [parse_cycle(f"{year}-Q{q}") for q in range(1, 5)]
        cycles += [parse_cycle(f"{year}-H1"), parse_cycle(str(year))]
    return sorted(cycles, key=lambda c: (c.cut_off, KINDS.index(c.kind)))


_QUARTER_LABEL = {"1": "I", "2": "II", "3": "III", "4": "IV"}


def label(cycle: Cycle) -> str:
    """The cycle as a Vietnamese report names it: 'quý I/2021', '6 tháng đầu năm 2021', ..."""
    year = cycle.code[:4]
    if cycle.kind == "quarterly":
        return f"quý {_QUARTER_LABEL[cycle.code[-1]]}/{year}"
    if cycle.kind == "six_monthly":
        return f"6 tháng đầu năm {year}"
    if cycle.kind == "annual":
        return f"năm {year}"
    return f"nhiệm kỳ {cycle.code}"


# Building a year's holiday calendar imports and runs the `holidays` package's country code
# (milliseconds): the live status and the gauges ask for a few due dates over and over.
@lru_cache(maxsize=512)
def due_date(cycle: Cycle, working_days: int = 2) -> date:
    """The date units' reports are due: `working_days` after the cut-off, skipping
    weekends and Vietnamese public holidays."""
    days = holidays.country_holidays("VN", years=range(cycle.cut_off.year, cycle.cut_off.year + 2))
    day, left = cycle.cut_off, working_days
    while left > 0:
        day += timedelta(days=1)
        if day.weekday() < 5 and day not in days:
            left -= 1
    return day


def next_quarter(cycle: Cycle) -> Cycle:
    """The quarterly cycle whose window follows this cycle's cut-off."""
    return parse_cycle(_quarter_of(cycle.cut_off + timedelta(days=1)))


def _quarter_of(day: date) -> str:
    """The quarter whose data window holds `day`: from the 15th on, a day counts for the next month."""
    month, year = (day.month, day.year) if day.day < 15 else (day.month % 12 + 1, day.year + (day.month == 12))
    return f"{year}-Q{(month - 1) // 3 + 1}"


def current_quarter(today: date) -> Cycle:
    """The quarterly cycle whose data window holds `today`."""
    return parse_cycle(_quarter_of(today))
