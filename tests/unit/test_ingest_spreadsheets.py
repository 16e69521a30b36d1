"""Templates and the row parser: what a unit sees in a template, and every bad cell named
by sheet and cell in Vietnamese and English."""

from __future__ import annotations

import io
import zipfile
from datetime import date, datetime, timezone

import openpyxl
import pytest

from services.ingest import domain, imports, spreadsheets, templates, uploads
from services.ingest.cells import CellErrors

NOW = datetime(2021, 3, 20, 3, 0, tzinfo=timezone.utc)
UNITS = frozenset({"SO-KHDT", "SO-TC"})
CONTEXT = templates.Context(
    unit="SO-KHDT", unit_name="Sở Kế hoạch và Đầu tư", today=date(2021, 3, 15), units=sorted(UNITS),
    programmes=[{"_id": "02", "title": "Chương trình 02"}],
    indicators=[{"_id": "CT-01", "name": "Tăng trưởng GRDP", "measure": "%", "responsible_unit": "SO-KHDT"},
                {"_id": "CT-02", "name": "GRDP bình quân", "measure": "triệu đồng", "responsible_unit": "SO-TC"}],
    tasks=[{"_id": "T-1", "programme": "02", "title": "Nhiệm vụ một", "due_date": "2021-06-30",
            "status": "in_progress", "progress": 10.0}],
    cycle={"_id": "2021-Q1", "due_date": "2021-03-16", "window": {"cut_off": "2021-03-14"},
           "expected_units": ["SO-KHDT"]},
    cycles=["2021-Q1"])


def book(kind: str) -> openpyxl.Workbook:
    return openpyxl.load_workbook(io.BytesIO(templates.write(kind, CONTEXT)))


def saved(workbook: openpyxl.Workbook) -> bytes:
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def parse(workbook: openpyxl.Workbook, unit: str = "SO-KHDT") -> list[imports.Draft]:
    rows, workbook_unit = uploads.read_rows(saved(workbook), max_rows=1000)
    return imports.drafts(rows, unit=unit, workbook_unit=workbook_unit, known_units=UNITS)


def bad_cells(workbook: openpyxl.Workbook, unit: str = "SO-KHDT") -> list[tuple[str, str, str]]:
    with pytest.raises(CellErrors) as caught:
        parse(workbook, unit)
    return [(e["detail_vi"], e["detail"], e["code"]) for e in caught.value.errors]


def a_plan(milestones: bool = True) -> openpyxl.Workbook:
    workbook = book("plan")
    workbook["Kế hoạch"].append(["KH-02", "2", "Kế hoạch thực hiện Chương trình 02", "12/KH-SKHDT", date(2021, 1, 5)])
    workbook["Nhiệm vụ"].append(["KH-02", "T-1", "Nhiệm vụ một", "SO-KHDT", "Nguyễn Văn An", "Giám đốc Sở",
                                 "SO-TC", "30/06/2021"])
    if milestones:
        workbook["Lộ trình"].append(["T-1", "Xây dựng kế hoạch chi tiết", date(2021, 2, 28)])
        workbook["Lộ trình"].append(["T-1", "Hoàn thành", date(2021, 6, 30)])
    return workbook


def progress_filled(**cells) -> openpyxl.Workbook:
    workbook = book("progress")
    sheet = workbook["Tiến độ"]
    values = {"G2": "Hoàn thành", "H2": 100, "I2": date(2021, 3, 10), "K2": "Trần Thị Bình", "L2": "Chuyên viên"}
    for ref, value in (values | cells).items():
        sheet[ref] = value
    return workbook


# --- templates ------------------------------------------------------------------------

def test_the_progress_template_is_the_units_own_tasks_to_fill_in():
    workbook = book("progress")
    sheet = workbook["Tiến độ"]
    assert [c.value for c in sheet[1]][:3] == ["Mã nhiệm vụ", "Chương trình", "Tên nhiệm vụ"]
    assert [c.value for c in sheet[2]][:6] == ["T-1", "02", "Nhiệm vụ một", datetime(2021, 6, 30),
                                                "Đang thực hiện", 10]
    assert sheet.freeze_panes == "B2"
    assert workbook["Hướng dẫn"]["B3"].value == "SO-KHDT"
    lists = {str(v.sqref): v.formula1 for v in sheet.data_validations.dataValidation}
    assert lists["G2:G302"] == "='Danh mục'!$C$2:$C$6"  # the five statuses, by their Vietnamese names
    assert workbook["Danh mục"].sheet_state == "hidden"


def test_each_template_has_its_sheets_and_the_unit_report_names_the_open_cycle():
    sheets_of = {kind: book(kind).sheetnames for kind in templates.KINDS}
    assert sheets_of["plan"] == ["Hướng dẫn", "Kế hoạch", "Nhiệm vụ", "Lộ trình", "Danh mục"]
    assert sheets_of["indicators"] == ["Hướng dẫn", "Chỉ tiêu", "Danh mục"]
    assert book("unit-report")["Báo cáo"]["A2"].value == "2021-Q1"
    assert [r[0].value for r in book("indicators")["Chỉ tiêu"].iter_rows(min_row=2)] == ["CT-01"]  # its own


def test_the_open_cycle_is_the_latest_that_expects_the_unit():
    cycles = [{"_id": "2021-Q1", "window": {"cut_off": "2021-03-14"}, "expected_units": ["SO-KHDT"]},
              {"_id": "2021-Q2", "window": {"cut_off": "2021-06-14"}, "expected_units": ["SO-TC"]}]
    assert templates.open_cycle(cycles, "SO-KHDT")["_id"] == "2021-Q1"
    assert templates.open_cycle(cycles, "HDND") is None


# --- rows into events -------------------------------------------------------------------

def test_a_plan_is_its_row_with_its_tasks_and_their_milestones():
    [draft] = parse(a_plan())
    event = draft.envelope(unit="SO-KHDT", tz="Asia/Ho_Chi_Minh", now=NOW)
    assert event["type"] == "plan.submitted" and event["time"] == "2021-01-05T23:59:59+07:00"
    assert event["data"]["programme"] == "02" and event["data"]["issued_on"] == "2021-01-05"
    assert event["data"]["tasks"] == [{
        "task_id": "T-1", "title": "Nhiệm vụ một", "lead_unit": "SO-KHDT",
        "lead_person": {"name": "Nguyễn Văn An", "position": "Giám đốc Sở"}, "coordinating_units": ["SO-TC"],
        "due_date": "2021-06-30", "milestones": [{"title": "Xây dựng kế hoạch chi tiết", "due_date": "2021-02-28"},
                                                 {"title": "Hoàn thành", "due_date": "2021-06-30"}]}]


def test_a_row_uploaded_again_is_the_same_event_and_a_changed_row_a_new_one():
    def ids(workbook):
        return [d.envelope(unit="SO-KHDT", tz="Asia/Ho_Chi_Minh", now=NOW)["id"] for d in parse(workbook)]
    first, again, changed = ids(progress_filled()), ids(progress_filled()), ids(progress_filled(H2=90))
    assert first == again and first[0].startswith("xlsx-progress-2-")
    assert changed != first


def test_a_progress_row_reads_labels_decimal_commas_and_typed_dates():
    [draft] = parse(progress_filled(G2="đang thực hiện", H2="45,5", I2="09/03/2021", J2="Ghi chú"))
    assert draft.data == {"task_id": "T-1", "programme": "02", "status": "in_progress", "progress": 45.5,
                          "as_of": "2021-03-09", "note": "Ghi chú",
                          "reported_by": {"name": "Trần Thị Bình", "position": "Chuyên viên"}}


def test_rows_with_only_what_the_template_wrote_are_skipped():
    assert parse(book("progress")) == [] and parse(book("indicators")) == []


def test_every_bad_cell_is_named_by_sheet_and_cell_in_both_languages():
    assert bad_cells(progress_filled(G2="xong rồi", H2=150, I2="hôm qua", K2=None)) == [
        ("Tiến độ!G2: trạng thái phải là một trong: Chưa triển khai, Đang thực hiện, Hoàn thành, Vướng mắc, "
         "Dừng thực hiện", "Tiến độ!G2: the status is one of: not_started, in_progress, completed, blocked, "
         "cancelled", "invalid_status"),
        ("Tiến độ!H2: tiến độ phải từ 0 đến 100", "Tiến độ!H2: progress lies in 0..100", "out_of_range"),
        ("Tiến độ!I2: không phải ngày (dd/mm/yyyy)", "Tiến độ!I2: not a date (dd/mm/yyyy)", "invalid_date"),
        ("Tiến độ!K2: thiếu người báo cáo", "Tiến độ!K2: reported by missing", "missing"),
    ]


def test_a_task_without_a_roadmap_is_named_at_its_row():
    assert bad_cells(a_plan(milestones=False)) == [
        ("Nhiệm vụ!B2: thiếu lộ trình: trang Lộ trình chưa có mốc nào của nhiệm vụ này",
         "Nhiệm vụ!B2: roadmap missing: no milestone of this task on sheet Lộ trình", "roadmap_missing")]


def test_codes_that_point_nowhere_or_twice_are_named():
    workbook = a_plan()
    workbook["Nhiệm vụ"].append(["KH-09", "T-2", "Nhiệm vụ hai", "SO-XYZ", "A", "B", None, date(2021, 5, 1)])
    workbook["Nhiệm vụ"].append(["KH-02", "T-1", "Nhiệm vụ trùng", "SO-KHDT", "A", "B", None, date(2021, 5, 1)])
    workbook["Lộ trình"].append(["T-9", "Mốc", date(2021, 4, 1)])
    workbook["Kế hoạch"].append(["KH-03", "11", "Kế hoạch thiếu nhiệm vụ", "13/KH", date(2021, 1, 6)])
    found = {detail for _, detail, _ in bad_cells(workbook)}
    assert found == {
        "Kế hoạch!B3: not a valid code (e.g. 01..10)",
        "Nhiệm vụ!D3: unit SO-XYZ is not in the registry",
        "Nhiệm vụ!B4: code T-1 is also on row 2",
        "Nhiệm vụ!A3: no plan KH-09 on sheet Kế hoạch",
        "Lộ trình!A4: no task T-9 on sheet Nhiệm vụ",
        "Kế hoạch!A3: the plan has no task on sheet Nhiệm vụ",
        "Nhiệm vụ!B3: roadmap missing: no milestone of this task on sheet Lộ trình",
    }


def test_indicator_and_report_rows_check_their_codes_and_numbers():
    indicators = book("indicators")
    indicators["Chỉ tiêu"].append(["CT-1", None, None, "2021-Q5", "nhiều", None, date(2021, 3, 1)])
    assert [d for _, d, _ in bad_cells(indicators)] == [
        "Chỉ tiêu!A3: not a valid code (e.g. CT-01)", "Chỉ tiêu!D3: not a valid code (e.g. 2021, 2021-H1, 2021-Q2)",
        "Chỉ tiêu!E3: not a number"]
    report = book("unit-report")
    report["Báo cáo"]["A2"] = "Q1/2021"
    assert [d for _, d, _ in bad_cells(report)] == [
        "Báo cáo!A2: not a valid code (e.g. 2021-Q1, 2021-H1, 2021, 2021-2025)", "Báo cáo!B2: document number missing",
        "Báo cáo!C2: date sent missing", "Báo cáo!D2: summary missing"]


def test_a_workbook_made_for_another_unit_is_refused():
    assert bad_cells(progress_filled(), unit="SO-TC")[0][1] == \
        "Hướng dẫn!B3: this file was made for unit SO-KHDT, not SO-TC"


def test_a_formula_without_a_saved_value_reads_as_empty_and_is_never_evaluated():
    # openpyxl saves formulas without their values, as a program that does not calculate does
    assert bad_cells(progress_filled(H2="=40+5"))[0][1] == "Tiến độ!H2: progress missing"


def test_what_the_event_schema_refuses_is_named_by_cell_too():
    workbook = progress_filled(J2="x" * 20_001)  # a note longer than the contract allows
    drafts = parse(workbook)
    items = [d.envelope(unit="SO-KHDT", tz="Asia/Ho_Chi_Minh", now=NOW) for d in drafts]
    bounds = domain.Bounds(max_batch=10, max_event_bytes=512 * 1024, margin=NOW - NOW, floor=NOW.replace(year=2000),
                           skew=NOW - NOW, timezone="Asia/Ho_Chi_Minh")
    with pytest.raises(domain.InvalidEvents) as caught:
        spreadsheets._admitted(items, drafts, unit="SO-KHDT", bounds=bounds, window=(NOW.replace(year=2000), NOW))
    [error] = caught.value.errors
    assert error["sheet"] == "Tiến độ" and error["cell"] == "J2" and error["detail"].startswith("Tiến độ!J2: ")


# --- files that are not taken ------------------------------------------------------------

def test_files_that_are_not_workbooks_macro_enabled_or_bombs_are_refused_with_the_reason():
    with pytest.raises(domain.Unsupported, match="not an .xlsx"):
        uploads.read_rows(b"Ma;Ten\n1;2\n", max_rows=10)
    macro = io.BytesIO()
    with zipfile.ZipFile(macro, "w") as package, zipfile.ZipFile(io.BytesIO(saved(progress_filled()))) as real:
        for name in real.namelist():
            package.writestr(name, real.read(name))
        package.writestr("xl/vbaProject.bin", b"\0" * 10)
    with pytest.raises(domain.Unsupported, match="macros"):
        uploads.read_rows(macro.getvalue(), max_rows=10)
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as package:
        package.writestr("[Content_Types].xml", b"<Types/>")
        package.writestr("xl/workbook.xml", b" " * (50 * 1024 * 1024))
    with pytest.raises(domain.InvalidEvents, match="zip bomb"):
        uploads.read_rows(bomb.getvalue(), max_rows=10)


def test_rows_past_the_limit_are_refused_while_reading():
    workbook = book("indicators")
    for n in range(30):
        workbook["Chỉ tiêu"].append(["CT-01", None, None, "2021", n, None, date(2021, 3, 1)])
    with pytest.raises(domain.TooLarge, match="more than 20 rows"):
        uploads.read_rows(saved(workbook), max_rows=20)


def test_a_binary_upload_is_signed_over_its_bytes_as_a_text_body_is():
    from standardwebhooks import Webhook

    secret = domain.new_signing_secret()
    text = b'{"id": "E-1"}'
    assert domain.signature(secret, "id-1", NOW, text) == Webhook(secret).sign("id-1", NOW, text.decode())
    body = saved(progress_filled())
    signed = {"webhook-id": "id-2", "webhook-timestamp": str(int(NOW.timestamp())),
              "webhook-signature": domain.signature(secret, "id-2", NOW, body)}
    assert domain.signed_id(signed, body, [secret], at=NOW) == "id-2"
    with pytest.raises(domain.Unauthenticated, match="no matching signature"):
        domain.signed_id(signed, body + b"\0", [secret], at=NOW)
