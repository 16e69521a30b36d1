"""An uploaded spreadsheet, read safely: the `file` part of a multipart body, then the
workbook's cell values on the sheets of the templates.

What is refused, and why: a file that is not an Office Open XML workbook (415); a
macro-enabled one (.xlsm, 415: macros are never run, so it is not taken at all); one
that unpacks to far more than it weighs (a zip bomb, 422); more rows than allowed (413,
counted while reading, so reading stops there). Formulas are never evaluated: a formula
cell gives the value the spreadsheet program saved with it, and one saved without a value
(written by a program that does not calculate) reads as empty. External links are not
followed, and nothing outside the cells is read."""

from __future__ import annotations

import io
import zipfile
from typing import AsyncIterator

import openpyxl
from starlette.datastructures import Headers, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from services.ingest import domain, sheets
from services.ingest.cells import Rows

MACRO_PARTS = ("xl/vbaProject.bin",)
MACRO_CONTENT_TYPE = b"macroEnabled"
MAX_RATIO = 100  # uncompressed to compressed: real workbooks stay far below it


async def file_field(body: bytes, content_type: str | None, *, limit: int) -> bytes:
    """The `file` part of a multipart/form-data body; 415 when the body is not one, 400 without the part."""
    if not (content_type or "").lower().startswith("multipart/form-data"):
        raise domain.Unsupported("send the spreadsheet as multipart/form-data, in the field 'file'")

    async def stream() -> AsyncIterator[bytes]:
        yield body

    parser = MultiPartParser(Headers({"content-type": content_type}), stream(), max_files=1, max_fields=10,
                             max_part_size=limit)
    try:
        form = await parser.parse()
    except MultiPartException as err:
        raise domain.Malformed(f"the multipart body cannot be read: {err.message}") from err
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise domain.Malformed("no file in the field 'file' of the form")
    try:
        return await upload.read()
    finally:
        await upload.close()


def read_rows(data: bytes, *, max_rows: int) -> tuple[Rows, str | None]:
    """The rows of every template sheet the workbook has (row number, cell values), and the unit
    its instructions sheet names; refused as the module says when the file cannot be taken."""
    _check_package(data)
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True, keep_links=False,
                                      keep_vba=False)
    except Exception as err:  # openpyxl raises many kinds for a damaged package
        raise domain.InvalidEvents(f"the workbook cannot be read: {type(err).__name__}: {err}"[:500]) from err
    try:
        rows: Rows = {}
        count = 0
        for sheet in book.worksheets:
            if sheet.title not in sheets.SHEETS:
                continue
            rows[sheet.title] = []
            for number, values in enumerate(sheet.iter_rows(min_row=sheets.HEADER_ROW + 1, values_only=True),
                                            sheets.HEADER_ROW + 1):
                count += 1
                if count > max_rows:
                    raise domain.TooLarge(f"the workbook has more than {max_rows} rows; at most {max_rows} "
                                          "(split it into several files)")
                rows[sheet.title].append((number, values))
        if not rows:
            raise domain.InvalidEvents("the workbook has none of the templates' sheets (" +
                                       ", ".join(sheets.SHEETS) + "): download a template from /v1/templates")
        return rows, _unit_of(book)
    finally:
        book.close()


def _check_package(data: bytes) -> None:
    try:
        package = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise domain.Unsupported("the file is not an .xlsx spreadsheet (save it from Excel or LibreOffice as "
                                 "'Excel Workbook (.xlsx)')") from None
    names = set(package.namelist())
    if "[Content_Types].xml" not in names or "xl/workbook.xml" not in names:
        raise domain.Unsupported("the file is a zip archive but not an .xlsx workbook")
    if names & set(MACRO_PARTS) or MACRO_CONTENT_TYPE in package.read("[Content_Types].xml"):
        raise domain.Unsupported("the workbook has macros (.xlsm); macros are not accepted: save it as "
                                 "'Excel Workbook (.xlsx)'")
    unpacked = sum(info.file_size for info in package.infolist())
    if unpacked > MAX_RATIO * max(len(data), 64 * 1024):
        raise domain.InvalidEvents(f"the workbook unpacks to {unpacked} bytes from {len(data)}: refused as a "
                                   "zip bomb")


def _unit_of(book) -> str | None:
    if sheets.INSTRUCTIONS not in book.sheetnames:
        return None
    value = book[sheets.INSTRUCTIONS][sheets.UNIT_CELL].value
    return str(value).strip().upper() if value not in (None, "") else None
