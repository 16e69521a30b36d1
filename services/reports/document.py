"""The Party-document frame of the report (Hướng dẫn 36-HD/VPTW): issuing body,
number, place and date, title and summary line. Issuer and numbering come from
the registry header, so another committee or office can issue it."""

from __future__ import annotations

from datetime import date

DEFAULT_ISSUER = {"party_committee": "ĐẢNG BỘ THÀNH PHỐ HÀ NỘI", "office": "VĂN PHÒNG THÀNH ỦY",
                  "office_symbol": "VPTU", "place": "Hà Nội"}


def number_text(number: int | None, symbol: str) -> str:
    """'Số 12-BC/VPTU'; a draft (not yet issued) leaves the number blank to be filled by hand."""
    return f"Số {number}-BC/{symbol}" if number else f"Số     -BC/{symbol}"


def date_text(place: str, day: date) -> str:
    """'Hà Nội, ngày 05 tháng 4 năm 2021' (see `party_date`)."""
    return f"{place}, {party_date(day)}"


def party_date(day: date) -> str:
    """'ngày 15 tháng 3 năm 2021', 'ngày 05 tháng 01 năm 2021': a leading zero only for days below
    10 and for months 1 and 2 (Hướng dẫn 36-HD/VPTW), so no one can write a digit before them."""
    return f"ngày {day.day:02d} tháng {_month(day.month)} năm {day.year}"


def short_date(day: date) -> str:
    """The same date in a table's cell: '15/3/2021', '05/01/2021', '15/02/2021'."""
    return f"{day.day:02d}/{_month(day.month)}/{day.year}"


def _month(month: int) -> str:
    return f"{month:02d}" if month <= 2 else str(month)


def frame(*, settings: dict, recipients: list[str], cycle_label: str, issued_on: date,
          number: int | None) -> dict:
    issuer = {**DEFAULT_ISSUER, **(settings.get("issuer") or {})}
    return {
        "party_committee": issuer["party_committee"],
        "issuer": issuer["office"],
        "number": number,
        "number_text": number_text(number, issuer["office_symbol"]),
        "date_text": date_text(issuer["place"], issued_on),
        "title": "BÁO CÁO",
        "summary": summary(settings, cycle_label),
        "recipients": recipients,
        "draft": number is None,
    }


def summary(settings: dict, cycle_label: str) -> str:
    """The summary line under BÁO CÁO: what is reported on, for which period."""
    title = settings.get("title") or "Chương trình hành động"
    return f"Tình hình thực hiện {_lower_first(title)}, {cycle_label}"


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]
