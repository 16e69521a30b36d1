"""Reporting cycles and their data windows (Decree 09/2019/NĐ-CP art. 12).

- quarterly `2021-Q1`: 15th of the month before the quarter .. 14th of its last month;
- six-monthly `2021-H1` (sơ kết): 15 Dec of the previous year .. 14 Jun;
- annual `2021`: 15 Dec of the previous year .. 14 Dec;
- whole term `2021-2025` (tổng kết): 15 Dec before the first year .. 14 Dec of the last.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

_CODE = re.compile(r"^(?P<year>\d{4})(?:-(?:Q(?P<q>[1-4])|H(?P<h>1)|(?P<end>\d{4})))?$")
KINDS = ("quarterly", "six_monthly", "annual", "term")


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
