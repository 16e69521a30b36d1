"""Excel workbooks written the same way by every service (openpyxl): a sheet is a table with
one bold header row kept in view while scrolling, columns wide enough to read."""

from __future__ import annotations

import io
from typing import Any, Iterable

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

HEADER_FONT = Font(bold=True)
HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
GIVEN_FILL = PatternFill("solid", fgColor="EDEDED")  # cells written for information, not to be filled in
WRAP = Alignment(wrap_text=True, vertical="top")
DATE_FORMAT = "DD/MM/YYYY"


def new_book() -> Workbook:
    """An empty workbook (its default sheet removed: each caller names its own)."""
    book = Workbook()
    book.remove(book.active)
    return book


def table(book: Workbook, title: str, columns: list[tuple[str, int]], rows: Iterable[list[Any]] = (),
          *, frozen: str = "A2") -> Worksheet:
    """A sheet `title`: a header row of (header, width) columns, frozen with the rows above and
    the columns left of `frozen`, then `rows`; dates shown day first, as read in Vietnam."""
    sheet = book.create_sheet(title)
    sheet.append([header for header, _ in columns])
    for n, (_, width) in enumerate(columns, 1):
        sheet.column_dimensions[get_column_letter(n)].width = width
        cell = sheet.cell(row=1, column=n)
        cell.font, cell.fill, cell.alignment = HEADER_FONT, HEADER_FILL, WRAP
    sheet.freeze_panes = frozen
    for row in rows:
        sheet.append(row)
    for row in sheet.iter_rows(min_row=2):
        for cell in row:
            if cell.is_date:
                cell.number_format = DATE_FORMAT
    return sheet


def to_bytes(book: Workbook) -> bytes:
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
