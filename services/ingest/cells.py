"""The cells of an uploaded spreadsheet read as their columns ask (pure: no I/O): dates as
typed or as Excel keeps them, numbers with a decimal comma, statuses by their Vietnamese
label, codes checked. Every bad cell is named, in Vietnamese and English, with its sheet
and cell (`Kế hoạch!E12: thiếu ngày ban hành` / `Kế hoạch!E12: issue date missing`)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from shared.events import CYCLE, INDICATOR_CODE, PERIOD, PROGRAMME_CODE, UNIT_CODE

from services.ingest import sheets
from services.ingest.sheets import Column, Sheet

Rows = dict[str, list[tuple[int, tuple]]]  # sheet title -> (row number, cell values)

PATTERNS = {"programme": (PROGRAMME_CODE, "01..10"), "indicator": (INDICATOR_CODE, "CT-01"),
            "period": (PERIOD, "2021, 2021-H1, 2021-Q2"), "cycle": (CYCLE, "2021-Q1, 2021-H1, 2021, 2021-2025")}


class Bad(ValueError):
    """A cell that cannot be read as its column asks."""

    def __init__(self, code: str, vi: str, en: str):
        super().__init__(en)
        self.code, self.vi, self.en = code, vi, en


class CellErrors(ValueError):
    def __init__(self, errors: list[dict]):
        super().__init__(f"{len(errors)} bad cell(s)")
        self.errors = errors


def cell_error(where: str, code: str, vi: str, en: str) -> dict:
    """One bad cell as the answer names it: `Kế hoạch!F12: thiếu lộ trình` / `... roadmap missing`."""
    sheet, _, ref = where.rpartition("!")
    return {"sheet": sheet, "cell": ref, "code": code, "detail": f"{where}: {en}", "detail_vi": f"{where}: {vi}"}


# --- one cell -----------------------------------------------------------------------

def read(column: Column, raw: Any, known_units: frozenset[str]) -> Any:
    """The value of a non-empty cell as its column reads it; Bad when it cannot be."""
    kind = column.value
    if kind in ("text", "long"):
        return _text(raw)
    if kind == "date":
        return _date(raw)
    if kind in ("number", "progress"):
        number = _number(raw)
        if kind == "progress" and not 0 <= number <= 100:
            raise Bad("out_of_range", "tiến độ phải từ 0 đến 100", "progress lies in 0..100")
        return number
    if kind == "status":
        return _status(raw)
    if kind == "unit":
        return _unit(raw, known_units)
    if kind == "units":
        return [_unit(code, known_units) for code in re.split(r"[,;\s]+", _text(raw)) if code]
    text = _text(raw).upper() if kind == "indicator" else _text(raw)
    if kind == "programme" and text.isdigit() and len(text) == 1:
        text = text.zfill(2)  # typed as 2, or a number cell: programme 02
    pattern, example = PATTERNS[kind]
    if not re.match(pattern, text):
        raise Bad("invalid_code", f"mã không hợp lệ (ví dụ: {example})", f"not a valid code (e.g. {example})")
    return text


def _text(raw: Any) -> str:
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))  # a document number typed as a number
    if isinstance(raw, datetime):
        return raw.date().isoformat()
    return str(raw).strip()


def _date(raw: Any) -> date:
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    text = _text(raw)
    for form in ("%d/%m/%Y", "%Y-%m-%d", "%d-%m-%Y"):
        try:
            return datetime.strptime(text, form).date()
        except ValueError:
            continue
    raise Bad("invalid_date", "không phải ngày (dd/mm/yyyy)", "not a date (dd/mm/yyyy)")


def _number(raw: Any) -> float:
    if isinstance(raw, bool):
        raise Bad("invalid_number", "không phải số", "not a number")
    if isinstance(raw, (int, float)):
        number = float(raw)
    else:
        text = _text(raw).replace(" ", "")
        text = text.replace(",", ".") if "." not in text else text  # a decimal comma, as typed in Vietnam
        try:
            number = float(text)
        except ValueError:
            raise Bad("invalid_number", "không phải số", "not a number") from None
    if not math.isfinite(number) or abs(number) > 1e15:
        raise Bad("invalid_number", "số không hợp lệ", "not a usable number")
    return number


def _status(raw: Any) -> str:
    text = _text(raw)
    for code, label in sheets.STATUSES.items():
        if text.casefold() in (code, label.casefold()):
            return code
    raise Bad("invalid_status", "trạng thái phải là một trong: " + ", ".join(sheets.STATUSES.values()),
              "the status is one of: " + ", ".join(sheets.STATUSES))


def _unit(raw: Any, known_units: frozenset[str]) -> str:
    code = _text(raw).upper()
    if not re.match(UNIT_CODE, code):
        raise Bad("invalid_code", "mã đơn vị không hợp lệ (ví dụ: SO-KHDT)", "not a unit code (e.g. SO-KHDT)")
    if known_units and code not in known_units:
        raise Bad("unknown_unit", f"đơn vị {code} không có trong danh mục", f"unit {code} is not in the registry")
    return code


# --- one row ------------------------------------------------------------------------

@dataclass
class Row:
    sheet: Sheet
    number: int
    values: dict[str, Any]

    def cell(self, key: str) -> str:
        return sheets.cell(self.sheet, key, self.number)

    def pointers(self, **fields: str) -> dict[str, str]:
        """JSON pointer -> the cell of the row's field it came from."""
        return {pointer: self.cell(key) for pointer, key in fields.items()}


def rows_of(sheet: Sheet, raw_rows: list[tuple[int, tuple]], known_units: frozenset[str],
            errors: list[dict]) -> list[Row]:
    """The rows a unit filled in (a row with only what the template gave is skipped), read cell by cell."""
    read_rows = []
    for number, cells in raw_rows:
        raw = {c.key: (cells[i] if i < len(cells) else None) for i, c in enumerate(sheet.columns)}
        raw = {k: (None if isinstance(v, str) and not v.strip() else v) for k, v in raw.items()}
        if all(raw[c.key] is None for c in sheet.columns if not c.given):
            continue
        values = {}
        for column in sheet.columns:
            where = sheets.cell(sheet, column.key, number)
            if raw[column.key] is None:
                if column.required:
                    errors.append(cell_error(where, "missing", f"thiếu {column.header.lower()}",
                                             f"{column.english} missing"))
                continue
            try:
                values[column.key] = read(column, raw[column.key], known_units)
            except Bad as bad:
                errors.append(cell_error(where, bad.code, bad.vi, bad.en))
        read_rows.append(Row(sheet, number, values))
    return read_rows


def complete(row: Row, sheet: Sheet) -> bool:
    """Every required field of the row was read (its errors are already named)."""
    return all(c.key in row.values for c in sheet.columns if c.required)


def optional(values: dict, *keys: str) -> dict:
    return {k: values[k] for k in keys if values.get(k) not in (None, "")}
