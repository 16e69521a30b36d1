"""The report as a Word document (python-docx): the same view as the HTML and PDF,
with real tables and the charts as PNG pictures."""

from __future__ import annotations

import io

from docx import Document
from docx.enum.section import WD_ORIENT, WD_SECTION
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Mm, Pt, RGBColor

from services.reports.render import CHARTS, FONT, _chart, _view

_CENTER, _RIGHT, _JUSTIFY = WD_ALIGN_PARAGRAPH.CENTER, WD_ALIGN_PARAGRAPH.RIGHT, WD_ALIGN_PARAGRAPH.JUSTIFY


def render_docx(report: dict) -> bytes:
    """The report as a Word document: same blocks, real tables, charts as PNG pictures."""
    view, doc = _view(report), Document()
    _docx_setup(doc)
    _docx_header(doc, view["document"])
    for kind, value in view["body"]:
        if kind == "chart":
            doc.add_picture(io.BytesIO(_chart(report, value, "png")), width=Mm(150))
            doc.paragraphs[-1].alignment = _CENTER
            _para(doc, CHARTS[value][2], italic=True, size=12, align=_CENTER)
        elif kind == "table":
            _docx_table(doc, value, 165, size=11)  # A4 portrait text width: 210 - 30 - 15 mm
        elif kind in ("h1", "h2"):
            doc.add_heading(value, level=1 if kind == "h1" else 2)
        else:
            lead, text = value if kind == "item" else ("", value)
            paragraph = _para(doc, lead, bold=True, align=_JUSTIFY)
            paragraph.add_run(f"{' ' if lead else ''}{text}").italic = kind == "note"
            paragraph.paragraph_format.first_line_indent, paragraph.paragraph_format.space_after = Mm(10), Pt(6)
    _docx_signature(doc, view)
    _docx_annexes(doc, view)
    buffer = io.BytesIO()
    doc.save(buffer)
    return buffer.getvalue()


def _docx_page(section, landscape: bool) -> None:
    section.orientation = WD_ORIENT.LANDSCAPE if landscape else WD_ORIENT.PORTRAIT
    section.page_width, section.page_height = (Mm(297), Mm(210)) if landscape else (Mm(210), Mm(297))
    section.top_margin = section.bottom_margin = Mm(20)
    section.left_margin, section.right_margin = Mm(30), Mm(15)


def _docx_setup(doc) -> None:
    """A4 portrait; Normal and heading styles in black Times New Roman for every script."""
    _docx_page(doc.sections[0], landscape=False)
    for name, bold in (("Normal", None), ("Heading 1", True), ("Heading 2", True)):
        style = doc.styles[name]
        style.font.name, style.font.size, style.font.color.rgb = FONT, Pt(14), RGBColor(0, 0, 0)
        if bold:
            style.font.bold, style.font.italic = True, False
        style.paragraph_format.space_before = Pt(10 if bold else 0)
        style.paragraph_format.space_after = Pt(4 if bold else 0)
        fonts = style.element.rPr.rFonts  # theme fonts would win over the named one: drop them
        for theme in ("asciiTheme", "hAnsiTheme", "eastAsiaTheme", "cstheme"):
            fonts.attrib.pop(qn(f"w:{theme}"), None)
        fonts.set(qn("w:eastAsia"), FONT)
        fonts.set(qn("w:cs"), FONT)


def _para(where, text: str = "", *, bold=False, italic=False, underline=False, size=None, align=None):
    """A paragraph with one run, added to a document or a table cell."""
    paragraph = where.add_paragraph()
    run = paragraph.add_run(text)
    run.bold, run.italic, run.underline = bold, italic, underline
    run.font.size = Pt(size) if size else None
    paragraph.alignment = align
    return paragraph


def _cells(cell, lines: list[tuple], width_mm: float | None = None) -> None:
    """Lines (text, size, run options; centred unless told) replacing a cell's content."""
    cell.paragraphs[0]._element.getparent().remove(cell.paragraphs[0]._element)
    for text, size, options in lines:
        _para(cell, text, size=size, **{"align": _CENTER, **options})
    if width_mm:
        cell.width = Mm(width_mm)


def _docx_header(doc, d: dict) -> None:
    """Issuer and number on the left, the Party's name and the date on the right; title below."""
    if d.get("draft"):
        _para(doc, "DỰ THẢO", bold=True, align=_RIGHT)
    left, right = doc.add_table(rows=1, cols=2).rows[0].cells  # default table style: no borders
    _cells(left, [(d["party_committee"].upper(), 14, {}), (d["issuer"].upper(), 14, {"bold": True}),
                  ("*", 14, {}), (d["number_text"], 14, {})], 72)
    _cells(right, [("ĐẢNG CỘNG SẢN VIỆT NAM", 15, {"bold": True, "underline": True}), ("", 8, {}),
                   (d["date_text"], 14, {"italic": True})], 93)
    _para(doc)
    _para(doc, d["title"], bold=True, size=16, align=_CENTER)
    _para(doc, d["summary"], bold=True, align=_CENTER).paragraph_format.space_after = Pt(12)


def _docx_table(doc, spec: dict, text_mm: float, size: float) -> None:
    """A real Word table: grid style, bold header row repeated on each page."""
    table = doc.add_table(rows=1, cols=len(spec["headers"]))
    table.style = "Table Grid"
    repeat = OxmlElement("w:tblHeader")
    repeat.set(qn("w:val"), "true")
    table.rows[0]._tr.get_or_add_trPr().append(repeat)
    widths = [text_mm * w / sum(spec["widths"]) for w in spec["widths"]]
    for i, (cell, text) in enumerate(zip(table.rows[0].cells, spec["headers"])):
        _cells(cell, [(text, size, {"bold": True})], widths[i])
    for row in spec["rows"]:
        for i, (cell, text) in enumerate(zip(table.add_row().cells, row)):
            _cells(cell, [(text, size, {"align": _RIGHT if i in spec["num"] else None})], widths[i])


def _docx_signature(doc, view: dict) -> None:
    _para(doc)
    left, right = doc.add_table(rows=1, cols=2).rows[0].cells
    _cells(left, [("Nơi nhận:", 12, {"bold": True, "italic": True, "align": None}),
                  *((line, 11, {"align": None}) for line in view["recipients"])], 85)
    _cells(right, [(view["signer"], 14, {"bold": True})], 80)


def _docx_annexes(doc, view: dict) -> None:
    """The annexes on landscape pages, one page each."""
    _docx_page(doc.add_section(WD_SECTION.NEW_PAGE), landscape=True)
    for index, annex in enumerate(view["annexes"]):
        if index:
            doc.add_page_break()
        for text, options in ((annex["title"], {"bold": True}), (annex["subtitle"], {"bold": True}),
                              (view["attached"], {"italic": True}), ("", {})):
            _para(doc, text, align=_CENTER, **options)
        kind, value = annex["table"]
        if kind == "table":
            _docx_table(doc, value, 297 - 45, size=10)
        else:
            _para(doc, value)
        if annex.get("note"):
            _para(doc, annex["note"], italic=True)
