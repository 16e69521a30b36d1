"""The Standing Committee report rendered as HTML, PDF and DOCX, and its charts."""

from __future__ import annotations

import base64
import copy
import io
import subprocess
import sys
import unicodedata

import pytest
from docx import Document

from services.reports import charts, render
from services.reports.render import render_html, render_pdf
from services.reports.word import render_docx

SECTIONS = ("I. KẾT QUẢ THỰC HIỆN", "II. HẠN CHẾ, TỒN TẠI", "III. NHIỆM VỤ KỲ TỚI")

TITLES = {  # verbatim from the article (seed/action-programme-article.vi.txt)
    "01": "Tăng cường công tác xây dựng, chỉnh đốn Đảng, xây dựng Đảng bộ và hệ thống chính trị thành phố "
          "trong sạch, vững mạnh, đẩy mạnh cải cách hành chính giai đoạn 2021-2025",
    "02": "Đẩy mạnh đổi mới mô hình tăng trưởng, cơ cấu lại nền kinh tế và hội nhập quốc tế, nâng cao năng "
          "suất, chất lượng, hiệu quả, sức cạnh tranh, phát triển kinh tế Thủ đô nhanh và bền vững giai đoạn "
          "2021-2025",
    "03": "Chỉnh trang đô thị, phát triển đô thị và kinh tế đô thị giai đoạn 2021-2025",
    "04": "Đẩy mạnh thực hiện hiệu quả Chương trình mục tiêu quốc gia xây dựng nông thôn mới gắn với cơ cấu "
          "lại ngành nông nghiệp và phát triển kinh tế nông thôn, nâng cao đời sống vật chất, tinh thần của "
          "nông dân giai đoạn 2021-2025",
    "05": "Đẩy mạnh công tác quy hoạch, quản lý quy hoạch; nâng cao hiệu lực, hiệu quả quản lý, sử dụng tài "
          "nguyên, bảo vệ môi trường; chủ động phòng, chống thiên tai, cứu hộ, cứu nạn, ứng phó với biến đổi "
          "khí hậu giai đoạn 2021-2025",
    "06": "Phát triển văn hóa, nâng cao chất lượng nguồn nhân lực, xây dựng người Hà Nội thanh lịch, văn minh "
          "giai đoạn 2021-2025",
    "07": "Đẩy mạnh phát triển khoa học, công nghệ và đổi mới sáng tạo giai đoạn 2021-2025",
    "08": "Phát triển hệ thống an sinh xã hội, nâng cao phúc lợi xã hội, chất lượng cuộc sống của nhân dân "
          "Thủ đô giai đoạn 2021-2025",
    "09": "Tăng cường tiềm lực quốc phòng, an ninh, giữ vững ổn định an ninh chính trị, trật tự an toàn xã "
          "hội trên địa bàn thành phố giai đoạn 2021-2025",
    "10": "Nâng cao hiệu quả công tác phòng, chống tham nhũng; thực hành tiết kiệm, chống lãng phí giai đoạn "
          "2021-2025",
}
LEADS = {"BTC-TU": "Ban Tổ chức Thành ủy", "UBND": "Ban Cán sự đảng Ủy ban nhân dân thành phố",
         "BTG-TU": "Ban Tuyên giáo Thành ủy", "BNC-TU": "Ban Nội chính Thành ủy"}
LEAD_OF = {"01": "BTC-TU", "06": "BTG-TU", "09": "BNC-TU", "10": "BNC-TU"}
# code: (issued_on, steering established_on, submitted, rejected, tasks by status, overdue, progress)
PROGRAMMES = {
    "01": ("2021-03-17", "2021-03-24", 2, 0, (1, 2, 1, 0, 0), 1, 45.0),
    "02": ("2021-03-05", "2021-03-12", 3, 1, (1, 3, 1, 1, 0), 2, 38.5),
    "03": ("2021-03-10", "2021-03-20", 1, 0, (2, 2, 0, 1, 0), 1, 12.4),
    "04": ("2021-02-26", "2021-03-08", 2, 0, (0, 2, 2, 0, 0), 0, 62.5),
    "05": ("2021-03-19", "2021-03-29", 1, 0, (1, 1, 0, 0, 1), 0, 20.0),
    "06": ("2021-03-12", "2021-03-26", 1, 0, (0, 2, 1, 0, 0), 0, 55.0),
    "07": ("2021-03-24", "2021-03-31", 0, 0, (2, 1, 0, 0, 0), 0, 8.3),
    "08": ("2021-03-15", "2021-04-06", 1, 0, (1, 1, 1, 0, 0), 0, 41.7),
    "09": ("2021-04-02", None, 0, 0, (0, 0, 0, 0, 0), 0, None),
    "10": ("2021-03-30", "2021-03-31", 1, 0, (0, 0, 2, 0, 0), 0, 100.0),
}


def _programme(code: str, row: tuple) -> dict:
    issued_on, steering_on, submitted, rejected, counts, overdue, progress = row
    lead = LEAD_OF.get(code, "UBND")
    tasks = dict(zip(("not_started", "in_progress", "completed", "blocked", "cancelled"), counts))
    return {"code": code, "title": TITLES[code], "lead_unit": lead, "lead_unit_name": LEADS[lead],
            "issued": True, "document_no": f"{code}-CTr/TU", "issued_on": issued_on,
            "steering_committee": steering_on and {
                "decision_no": f"1{code}-QĐ/TU", "established_on": steering_on,
                "head": {"name": "Nguyễn Văn Thành", "position": "Phó Bí thư Thành ủy"}},
            "plans": {"expected": 0, "submitted": submitted, "rejected": rejected},
            "tasks": {"total": sum(counts), **tasks, "overdue": overdue}, "progress_pct": progress}


def _unit(code, name, status, time=None, number=None, overdue=0) -> dict:
    return {"code": code, "name": name,
            "reports": {"expected": 1, **{key: int(status == key) for key in ("on_time", "late", "missing")}},
            "report": {"status": status, "time": time, "document_no": number}, "tasks_overdue": overdue}


def _task(task_id, title, programme, unit, unit_name, due, status, progress, person=None) -> dict:
    task = {"task_id": task_id, "title": title, "programme": programme, "lead_unit": unit,
            "lead_unit_name": unit_name, "due_date": due, "status": status, "progress": progress}
    return task | ({"lead_person": person} if person else {})


def sample_report() -> dict:
    """A realistic 2021-Q1 report as the reports service would produce it."""
    programmes = [_programme(code, row) for code, row in PROGRAMMES.items()]
    units = [_unit("SO-KHDT", "Sở Kế hoạch và Đầu tư", "on_time", "2021-03-15T09:00:00+07:00", "12/BC-SKHĐT", 1),
             _unit("SO-XD", "Sở Xây dựng", "late", "2021-03-22T16:30:00+07:00", "45/BC-SXD", 1),
             _unit("SO-TNMT", "Sở Tài nguyên và Môi trường", "on_time", "2021-03-16T08:15:00+07:00",
                   "31/BC-STNMT"),
             _unit("SO-YT", "Sở Y tế", "missing"),
             _unit("HDND", "Đảng đoàn Hội đồng nhân dân thành phố", "on_time", "2021-03-16T10:00:00+07:00",
                   "08-BC/ĐĐ"),
             _unit("UBND", "Ban Cán sự đảng Ủy ban nhân dân thành phố", "on_time",
                   "2021-03-16T14:00:00+07:00", "25-BC/BCSĐ", 2),
             _unit("Q-HOANKIEM", "Quận Hoàn Kiếm", "late", "2021-03-18T11:00:00+07:00", "19/BC-UBND"),
             _unit("H-UNGHOA", "Huyện Ứng Hòa", "missing", overdue=1),
             _unit("MTTQ", "Ủy ban Mặt trận Tổ quốc Việt Nam thành phố Hà Nội", "on_time",
                   "2021-03-15T15:45:00+07:00", "05/BC-MTTQ")]
    overdue = [
        _task("t-0301", "Rà soát, điều chỉnh quy hoạch chi tiết các khu đô thị cũ cần cải tạo", "03", "SO-XD",
              "Sở Xây dựng", "2021-02-28", "in_progress", 15.0,
              {"name": "Võ Nguyên Phong", "position": "Giám đốc Sở Xây dựng"}),
        _task("t-0207", "Xây dựng đề án phát triển kinh tế số thành phố", "02", "SO-KHDT",
              "Sở Kế hoạch và Đầu tư", "2021-03-10", "blocked", 40.0,
              {"name": "Nguyễn Mạnh Quyền", "position": "Giám đốc Sở Kế hoạch và Đầu tư"}),
        _task("t-0104", "Xây dựng kế hoạch sắp xếp đơn vị hành chính cấp xã", "01", "SO-NV", "Sở Nội vụ",
              "2021-03-01", "not_started", 0.0, {"name": "Trần Đình Cảnh", "position": "Giám đốc Sở Nội vụ"})]
    supervisions = [
        {"programme": "02", "kind": "giam_sat", "source": "MTTQ",
         "source_name": "Ủy ban MTTQ Việt Nam thành phố Hà Nội",
         "finding": "Việc giải ngân vốn đầu tư công tại một số dự án còn chậm so với kế hoạch.",
         "recommendation": "Đề nghị Sở Kế hoạch và Đầu tư công khai tiến độ giải ngân hằng tháng.",
         "unit": "SO-KHDT", "time": "2021-03-10T09:00:00+07:00"},
        {"programme": "08", "kind": "phan_bien", "source": "HLHPN", "source_name": "Hội Liên hiệp Phụ nữ thành phố Hà Nội",
         "finding": "Dự thảo kế hoạch chưa nêu rõ chính sách hỗ trợ lao động nữ ở khu công nghiệp.",
         "recommendation": None, "unit": None, "time": "2021-03-05T14:00:00+07:00"}]
    return {
        "cycle": "2021-Q1", "kind": "quarterly", "cycle_label": "quý I/2021",
        "window": {"start": "2020-12-15", "cut_off": "2021-03-14"}, "due_date": "2021-03-16",
        "as_of": "2021-03-14", "known_at": "2021-04-05T02:00:00.000000Z", "known_on": "2021-04-05",
        "document": {"party_committee": "ĐẢNG BỘ THÀNH PHỐ HÀ NỘI", "issuer": "VĂN PHÒNG THÀNH ỦY",
                     "number_text": "Số 12-BC/VPTU", "date_text": "Hà Nội, ngày 05 tháng 4 năm 2021",
                     "title": "BÁO CÁO",
                     "summary": "Tình hình thực hiện Chương trình hành động thực hiện Nghị quyết Đại hội XVII "
                                "Đảng bộ thành phố, quý I/2021",
                     "recipients": ["Ban Thường vụ Thành ủy"], "draft": False},
        "programmes": programmes,
        "deadline_q1_2021": {"deadline": "2021-03-31", "issued_on_time": 9, "steering_on_time": 8, "total": 10,
                             "missed": [{"code": "08", "issued_on": "2021-03-15",
                                         "steering_established_on": "2021-04-06"},
                                        {"code": "09", "issued_on": "2021-04-02",
                                         "steering_established_on": None}]},
        "indicators": [
            {"code": "CT-01", "group": 1, "name": "Tốc độ tăng trưởng GRDP bình quân", "measure": "%",
             "direction": "increase", "baseline": {"year": 2020, "value": 3.94},
             "latest": {"period": "2021", "value": 2.92}, "target_2025": 7.5, "target_2030": 8.0,
             "target_2045": None, "status": "off_track", "sample": True},
            {"code": "CT-02", "group": 1, "name": "GRDP bình quân đầu người", "measure": "USD/người",
             "direction": "increase", "baseline": {"year": 2020, "value": 5400},
             "latest": {"period": "2021", "value": 5750}, "target_2025": 8300, "target_2030": 12000,
             "target_2045": 36000, "status": "at_risk", "sample": True},
            {"code": "CT-06", "group": 2, "name": "Tỷ lệ hộ nghèo (chuẩn đa chiều)", "measure": "%",
             "direction": "decrease", "baseline": {"year": 2020, "value": 0.7},
             "latest": {"period": "2021", "value": 0.3}, "target_2025": 0.3, "target_2030": 0.1,
             "target_2045": None, "status": "achieved", "sample": True},
            {"code": "CT-12", "group": 3, "name": "Tỷ lệ xã đạt chuẩn nông thôn mới", "measure": "%",
             "direction": "increase", "baseline": {"year": 2020, "value": 94.8},
             "latest": {"period": "2021", "value": 97.0}, "target_2025": 100.0, "target_2030": 100.0,
             "target_2045": None, "status": "on_track", "sample": True},
            {"code": "CT-20", "group": 4, "name": "Tỷ lệ thủ tục hành chính được cung cấp dịch vụ công trực "
             "tuyến toàn trình", "measure": "%", "direction": "increase", "baseline": {"year": 2020, "value": 30.0},
             "latest": None, "target_2025": 80.0, "target_2030": 100.0, "target_2045": None, "status": "no_data",
             "sample": True}],
        "units": units,
        "reports_summary": {"expected": 9, "on_time": 5, "late": 2, "missing": 2},
        "overdue_tasks": overdue,
        "supervisions": supervisions,
        "next_period": {"cycle": "2021-Q2", "cycle_label": "quý II/2021", "cut_off": "2021-06-14",
                        "due_date": "2021-06-16", "tasks_due": [
                            _task("t-0210", "Ban hành cơ chế thu hút đầu tư vào khu công nghệ cao", "02", "SO-KHDT",
                                  "Sở Kế hoạch và Đầu tư", "2021-06-30", "in_progress", 35.0),
                            _task("t-0702", "Thành lập Quỹ đổi mới sáng tạo thành phố", "07", "SO-KHCN",
                                  "Sở Khoa học và Công nghệ", "2021-06-15", "not_started", 0.0)]},
        "totals": {"tasks": {"total": 33, "not_started": 8, "in_progress": 14, "completed": 8, "blocked": 2,
                             "cancelled": 1, "overdue": 4},
                   "progress_pct": 31.4, "plans": {"expected": 0, "submitted": 12, "rejected": 1}},
    }


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


@pytest.fixture(scope="module")
def report() -> dict:
    return sample_report()


@pytest.fixture(scope="module")
def html(report) -> str:
    return render_html(report)


@pytest.fixture(scope="module")
def pdf(report, tmp_path_factory):
    path = tmp_path_factory.mktemp("pdf") / "report.pdf"
    path.write_bytes(render_pdf(report))
    return path


@pytest.fixture(scope="module")
def docx(report):
    return Document(io.BytesIO(render_docx(report)))


def test_html_has_the_party_document_header_and_title(html, report):
    doc = report["document"]
    for text in (doc["party_committee"], doc["issuer"], "ĐẢNG CỘNG SẢN VIỆT NAM", doc["number_text"],
                 doc["date_text"], "BÁO CÁO", doc["summary"], *SECTIONS):
        assert text in html
    assert ("Số liệu tính từ ngày 15 tháng 12 năm 2020 đến ngày 14 tháng 3 năm 2021 (kỳ báo cáo quý I/2021), "
            "theo thông tin nhận được đến ngày 05 tháng 4 năm 2021.") in html


def test_html_covers_programmes_overdue_tasks_and_sample_note(html, report):
    for programme in report["programmes"]:
        assert f"<td>{programme['code']}</td>" in html
    assert "Võ Nguyên Phong" in html and "Sở Xây dựng" in html
    assert "Số liệu chỉ tiêu là dữ liệu mẫu" in html
    assert "8/10 chương trình thành lập Ban Chỉ đạo đúng hạn" in html
    assert "Chương trình 09 (ban hành muộn, ngày 02 tháng 4 năm 2021; chưa thành lập Ban Chỉ đạo)" in html
    for word in ("Vướng mắc", "Chưa báo cáo", "Muộn", "Chậm", "Phản biện xã hội", "Lưu VP", "CHÁNH VĂN PHÒNG"):
        assert word in html
    assert "DỰ THẢO" not in html


def test_html_escapes_what_the_data_says(report):
    hostile = copy.deepcopy(report)
    hostile["supervisions"][0]["finding"] = "Phát hiện <script>alert('x')</script> & tồn tại"
    html = render_html(hostile)
    assert "<script>" not in html
    assert "&lt;script&gt;" in html and "&amp; tồn tại" in html


def test_empty_lists_become_sentences_and_a_draft_is_marked(report):
    quiet = copy.deepcopy(report)
    quiet.update(overdue_tasks=[], supervisions=[])
    quiet["next_period"]["tasks_due"] = []
    quiet["document"]["draft"] = True
    html = render_html(quiet)
    assert "Không có nhiệm vụ quá hạn." in html
    assert "Không có nhiệm vụ đến hạn hoàn thành trong kỳ tới." in html
    assert "chưa nhận được kết quả giám sát" in html
    assert "DỰ THẢO" in html


def test_without_a_day_information_was_received_by_the_line_leaves_it_out(report):
    unknown = copy.deepcopy(report)
    unknown["known_on"] = None
    html = render_html(unknown)
    assert "(kỳ báo cáo quý I/2021)." in html and "thông tin nhận được" not in html


def test_every_format_writes_its_dates_the_partys_way(html, pdf, docx):
    """No zero before months 3 to 12 (a date line of 05/04 once read 'tháng 04')."""
    pdf_text = _nfc(subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, check=True, text=True).stdout)
    cells = [cell.text for table in docx.tables for row in table.rows for cell in row.cells]
    docx_text = "\n".join([p.text for p in docx.paragraphs] + cells)
    for text in (html, pdf_text, docx_text):
        assert "Hà Nội, ngày 05 tháng 4 năm 2021" in text
        assert "tháng 04" not in text and "/03/2021" not in text
    assert "15 tháng 12 năm 2020" in docx_text and "thành lập Ban Chỉ đạo muộn, ngày 06 tháng 4 năm 2021" in docx_text


def test_pdf_text_has_the_header_cycle_and_sections(pdf):
    assert pdf.read_bytes().startswith(b"%PDF")
    text = _nfc(subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, check=True,
                               text=True).stdout)
    for expected in ("ĐẢNG CỘNG SẢN VIỆT NAM", "VĂN PHÒNG THÀNH ỦY", "BÁO CÁO", "quý I/2021", *SECTIONS):
        assert expected in text


def test_pdf_embeds_a_times_compatible_serif_font(pdf):
    listing = subprocess.run(["pdffonts", str(pdf)], capture_output=True, check=True, text=True).stdout
    embedded = [line for line in listing.splitlines()[2:]
                if any(name in line.replace("-", "") for name in ("LiberationSerif", "TimesNewRoman"))
                and line.split()[-5] == "yes"]  # the emb column
    assert embedded, listing


def test_docx_has_the_sections_and_the_annex_tables(docx, report):
    paragraphs = [p.text for p in docx.paragraphs]
    for title in SECTIONS:
        assert title in paragraphs
    programmes = next(t for t in docx.tables if t.rows[0].cells[0].text == "Mã" and len(t.columns) == 15)
    assert len(programmes.rows) == 1 + 10
    row = [c.text for c in programmes.rows[3].cells]  # programme 03
    p = report["programmes"][2]
    assert row[0] == "03" and row[1] == p["title"]
    assert row[5:14] == [str(p["plans"]["submitted"]), str(p["plans"]["rejected"]),
                         *(str(p["tasks"][k]) for k in ("total", "not_started", "in_progress", "completed",
                                                        "blocked", "cancelled", "overdue"))]
    assert row[14] == "12,4"
    units = next(t for t in docx.tables if t.rows[0].cells[1].text == "Cơ quan, đơn vị" and len(t.columns) == 9)
    assert [r.cells[0].text for r in units.rows[1:]] == [u["code"] for u in report["units"]]


def test_docx_has_the_overdue_table_indicators_and_two_charts(docx, report):
    texts = {cell.text for table in docx.tables for row in table.rows for cell in row.cells}
    assert "Võ Nguyên Phong, Giám đốc Sở Xây dựng" in texts
    assert "Tốc độ tăng trưởng GRDP bình quân" in texts
    assert len(docx.inline_shapes) == 2
    assert docx.styles["Normal"].font.name == "Times New Roman"


def test_charts_come_as_svg_text_and_png_bytes(report):
    svg = charts.progress_chart(report["programmes"], "svg")
    assert svg.lstrip().startswith(("<?xml", "<svg")) and "programme-03" in svg
    assert "CT-06" in charts.indicator_chart(report["indicators"], "svg")
    for png in (charts.progress_chart(report["programmes"], "png"),
                charts.indicator_chart(report["indicators"], "png")):
        assert png.startswith(b"\x89PNG\r\n\x1a\n")


def test_the_charts_labels_in_the_pdf_are_text_a_reader_can_search_and_copy(pdf):
    text = _nfc(subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, check=True, text=True).stdout)
    for label in ("Tiến độ thực hiện (%)", "Mức đạt so với mục tiêu năm 2025 (%)", "Mục tiêu 2025 (100 %)"):
        assert label in text


def test_a_chart_is_drawn_once_for_every_format_of_a_report_and_again_when_it_changes(report, monkeypatch):
    drawn = []

    def counting(programmes, fmt="svg"):
        drawn.append(fmt)
        return charts.progress_chart(programmes, fmt)
    monkeypatch.setitem(render.CHARTS, "progress", ("programmes", counting, render.CHARTS["progress"][2]))
    again = copy.deepcopy(report)
    again["programmes"][2]["progress_pct"] = 77.7
    for each in (again, copy.deepcopy(again)):
        render_html(each), render_pdf(each), render_docx(each)
    assert drawn == ["svg", "png"]
    assert "77,7 %" in charts.progress_chart(again["programmes"], "svg")
    again["programmes"][2]["progress_pct"] = 66.6
    assert "66,6 %" in _nfc(base64.b64decode(render_html(again).split("data:image/svg+xml;base64,")[1]
                                             .split('"')[0]).decode())
    assert drawn == ["svg", "png", "svg"]


def test_a_report_renders_to_the_same_html_every_time(report):
    def fresh() -> str:
        render._drawn.cache_clear()  # as another process would: charts drawn anew
        return render_html(report)
    assert fresh() == fresh()


def test_indicator_achievement_follows_the_direction(report):
    by_code = {i["code"]: i for i in report["indicators"]}
    assert charts.achievement_pct(by_code["CT-01"]) == pytest.approx(2.92 / 7.5 * 100)
    assert charts.achievement_pct(by_code["CT-06"]) == pytest.approx(100.0)
    assert charts.achievement_pct(by_code["CT-20"]) is None


def test_the_date_a_units_report_was_sent_is_the_day_it_arrived(report):
    late = copy.deepcopy(report)
    unit = next(u for u in late["units"] if u["code"] == "SO-XD")
    unit["report"].update(time="2021-03-15T09:00:00+07:00", received_at="2021-03-22T09:30:00.000000Z")
    html = render_html(late)
    row = html[html.index("<td>Sở Xây dựng</td><td>Muộn</td>"):].split("</tr>")[0]
    annex = html[html.index("<td>SO-XD</td>"):].split("</tr>")[0]
    for shown in (row, annex):
        assert "22/3/2021" in shown and "15/3/2021" not in shown


def large_report(overdue: int, due: int, units: int) -> dict:
    """The sample report with the long lists of a whole term at Hanoi's size."""
    big = sample_report()
    titles = [t["title"] for t in big["overdue_tasks"]]
    big["overdue_tasks"] = [_task(f"t-{i:05d}", f"{titles[i % 3]} (đợt {i})", "02", "SO-KHDT",
                                  "Sở Kế hoạch và Đầu tư", "2021-02-28", "in_progress", 15.0,
                                  {"name": "Nguyễn Mạnh Quyền", "position": "Giám đốc Sở Kế hoạch và Đầu tư"})
                            for i in range(overdue)]
    big["next_period"]["tasks_due"] = [_task(f"n-{i:05d}", f"Thành lập Quỹ đổi mới sáng tạo (đợt {i})", "07",
                                             "SO-KHCN", "Sở Khoa học và Công nghệ", "2021-06-15", "not_started",
                                             0.0) for i in range(due)]
    big["units"] = [_unit(f"U-{i:03d}", f"Ban Quản lý dự án số {i}", ("on_time", "late", "missing")[i % 3],
                          "2021-03-18T11:00:00+07:00", f"{i}/BC") for i in range(units)]
    return big


def test_a_term_sized_report_keeps_its_body_short_and_its_annexes_bounded(tmp_path):
    path = tmp_path / "large.pdf"
    path.write_bytes(render_pdf(large_report(overdue=3000, due=1500, units=150)))
    text = _nfc(subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True,
                               text=True).stdout)
    pages = text.split("\f")
    first_annex = next(i for i, page in enumerate(pages) if "PHỤ LỤC 1" in page)
    assert first_annex < 15
    assert len([p for p in pages if p.strip()]) <= 20
    flat = " ".join(text.split())
    assert "Có 3000 nhiệm vụ quá hạn; 10 đầu tiên nêu dưới đây, danh sách tại Phụ lục 3." in flat
    assert "Phụ lục nêu 50/3000 nhiệm vụ; 2950 nhiệm vụ còn lại có trong bản JSON của báo cáo" in flat
    assert "Phụ lục nêu 50/1500 nhiệm vụ; 1450 nhiệm vụ còn lại" in flat
    assert "Phụ lục nêu 50/150 cơ quan, đơn vị; 100 cơ quan, đơn vị còn lại" in flat


def test_a_reports_replica_that_rendered_nothing_keeps_the_rendering_libraries_out_of_memory():
    """Applying changes and answering the status need no PDF or Word library (tens of MB of a
    replica's memory); the first report rendered loads them."""
    code = ("import sys; from services.reports.app import build; from services.reports import handlers; build(); "
            "heavy = ('weasyprint', 'matplotlib', 'docx'); print(sorted(m for m in heavy if m in sys.modules)); "
            "handlers.rendered({}, 'json'); print(sorted(m for m in heavy if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:2] == ["[]", "[]"]
