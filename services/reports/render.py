"""Render the report to the Standing Committee (contract section 4) as HTML, PDF or DOCX.

`_view` turns the report dict into one list of blocks (headings, sentences in
Vietnamese, tables, charts) plus the header, signature and annex tables; the
Jinja2 template and the python-docx builder only lay those blocks out, so the
three formats carry the same content in the same order. Layout follows the
Party document format (Hướng dẫn 36-HD/VPTW). Pure functions of the report:
nothing is read but the template, nothing is written.
"""

from __future__ import annotations

import base64
import json
from functools import lru_cache
from pathlib import Path

import jinja2

from services.reports.charts import indicator_chart, progress_chart
from services.reports.words import (INDICATOR_STATUS, REPORT_STATUS, SUPERVISION_KIND, TASK_STATUS,  # noqa: F401
                                    achievement_pct, fmt_date, fmt_datetime, fmt_day, fmt_num)

CHARTS = {"progress": ("programmes", progress_chart, "Biểu đồ 1. Tiến độ thực hiện các chương trình (%)"),
          "indicators": ("indicators", indicator_chart,
                         "Biểu đồ 2. Mức đạt các chỉ tiêu so với mục tiêu năm 2025 (%)")}
FONT = "Times New Roman"
# A leader reads the body: its lists show the first rows and say where the rest is. The annexes
# carry more, within a bound too; the full lists are in the JSON (and the spreadsheet export).
BODY_ROWS = 10
ANNEX_ROWS = 50
_TEMPLATES = Path(__file__).parent / "templates"


def _pct(value: float | None) -> str:
    return fmt_num(value, 1, fixed=True)


def _table(headers, rows, widths, empty, num=()) -> tuple:
    """A table block, or the sentence standing in for it when there are no rows."""
    return ("table", {"headers": headers, "rows": rows, "widths": widths, "num": set(num)}) if rows else ("p", empty)


def _issuance(r: dict) -> list[tuple]:
    """I.1: programmes issued, steering committees, and the Q1/2021 deadline met or missed."""
    progs, dl = r["programmes"], r.get("deadline_q1_2021")
    issued, steered = sum(1 for p in progs if p["issued"]), sum(1 for p in progs if p["steering_committee"])
    blocks = [("p", f"Đã ban hành {issued}/{len(progs)} chương trình; "
                    f"thành lập {steered}/{len(progs)} Ban Chỉ đạo thực hiện chương trình.")]
    if not dl:
        return blocks

    def when(day: str | None, done: str) -> str:
        return f"{done}{' muộn,' if day > dl['deadline'] else ''} {fmt_day(day)}" if day else f"chưa {done}"
    missed = "; ".join(f"Chương trình {m['code']} ({when(m.get('issued_on'), 'ban hành')}; "
                       f"{when(m.get('steering_established_on'), 'thành lập Ban Chỉ đạo')})" for m in dl["missed"])
    return blocks + [("p", f"Theo yêu cầu ban hành chương trình và thành lập Ban Chỉ đạo trong quý I/2021 "
                           f"(chậm nhất {fmt_day(dl['deadline'])}): {dl['issued_on_time']}/{dl['total']} "
                           f"chương trình được ban hành đúng hạn, {dl['steering_on_time']}/{dl['total']} chương "
                           f"trình thành lập Ban Chỉ đạo đúng hạn; chưa đạt: {missed or 'không có'}.")]


def _progress(r: dict) -> list[tuple]:
    """I.2 plans and I.3 tasks."""
    plans, tasks, pct = r["totals"]["plans"], r["totals"]["tasks"], r["totals"]["progress_pct"]
    of = f" (trên tổng số {plans['expected']} kế hoạch phải xây dựng)" if plans.get("expected") else ""
    counts = ", ".join(f"{word.lower()} {tasks[key]}" for key, word in TASK_STATUS.items())
    overall = f"đạt {_pct(pct)}%" if pct is not None else "chưa có số liệu"
    blocks = [("h2", "2. Xây dựng kế hoạch thực hiện"),
              ("p", f"Các cơ quan, đơn vị đã gửi {plans['submitted']} kế hoạch thực hiện chương trình{of}; "
                    f"{plans['rejected']} kế hoạch bị trả lại, yêu cầu hoàn thiện."),
              ("h2", "3. Tiến độ thực hiện nhiệm vụ"),
              ("p", f"Tổng số {tasks['total']} nhiệm vụ: {counts}; có {tasks['overdue']} nhiệm vụ "
                    f"quá hạn. Tiến độ chung {overall}.")]
    return blocks + ([("chart", "progress")] if r["programmes"] else [])


def _indicators(r: dict) -> list[tuple]:
    """I.4: indicators against their 2025 targets."""
    ind = r["indicators"]
    rows = [[i["code"], i["name"], i["measure"],
             f"{fmt_num(i['baseline']['value'])} ({i['baseline']['year']})" if i.get("baseline") else "–",
             f"{fmt_num(i['latest']['value'])} ({i['latest']['period']})" if i.get("latest") else "–",
             fmt_num(i["target_2025"]), _pct(achievement_pct(i)),
             INDICATOR_STATUS.get(i["status"], (i["status"],))[0]] for i in ind]
    blocks = [("h2", "4. Thực hiện các chỉ tiêu so với mục tiêu năm 2025")]
    if any(i.get("sample") for i in ind):
        blocks.append(("note", "Ghi chú: Số liệu chỉ tiêu là dữ liệu mẫu, chưa phải số liệu chính thức."))
    blocks.append(_table(["Mã", "Chỉ tiêu", "Đơn vị tính", "Năm gốc", "Kết quả mới nhất",
                          "Mục tiêu 2025", "Mức đạt (%)", "Đánh giá"], rows,
                         [8, 26, 9, 13, 13, 9, 9, 13], "Chưa có chỉ tiêu được theo dõi.", (3, 4, 5, 6)))
    return blocks + ([("chart", "indicators")] if ind else [])


def _person(person: dict | None) -> str:
    return ", ".join(filter(None, map((person or {}).get, ("name", "position"))))


def _received(unit: dict) -> str:
    """When the unit's report arrived (the sender's own date may be earlier than that)."""
    return fmt_date((unit.get("report") or {}).get("received_at")) or "–"


def _listed(total: int, shown: int, what: str, annex: str) -> str:
    return f"{total} {what}" + (f"; {shown} đầu tiên nêu dưới đây, danh sách tại {annex}." if total > shown else ":")


def _overdue_rows(tasks: list[dict]) -> list[list[str]]:
    return [[t["programme"], t["title"], t["lead_unit_name"], _person(t.get("lead_person")),
             fmt_date(t["due_date"]), TASK_STATUS.get(t["status"], t["status"]), _pct(t.get("progress"))]
            for t in tasks]


OVERDUE = (["CT", "Nhiệm vụ", "Tập thể chịu trách nhiệm", "Cá nhân chịu trách nhiệm", "Hạn", "Tình trạng",
            "Tiến độ (%)"], [5, 25, 16, 19, 13, 12, 10])


def _laggards(r: dict) -> list[dict]:
    """Units late or missing, the missing first."""
    return sorted((u for u in r["units"] if (u.get("report") or {}).get("status") in ("late", "missing")),
                  key=lambda u: u["report"]["status"] != "missing")


def _shortcomings(r: dict) -> list[tuple]:
    """II: overdue tasks, units late or missing, supervision findings."""
    overdue, s, laggards = r["overdue_tasks"], r["reports_summary"], _laggards(r)
    units = [[u["name"], REPORT_STATUS[u["report"]["status"]], _received(u), u["report"].get("document_no") or "–",
              str(u["tasks_overdue"])] for u in laggards[:BODY_ROWS]]
    return [("h1", "II. HẠN CHẾ, TỒN TẠI"), ("h2", "1. Nhiệm vụ quá hạn"),
            *([("p", "Có " + _listed(len(overdue), BODY_ROWS, "nhiệm vụ quá hạn", "Phụ lục 3"))] if overdue else []),
            _table(OVERDUE[0], _overdue_rows(overdue[:BODY_ROWS]), OVERDUE[1], "Không có nhiệm vụ quá hạn.", (6,)),
            ("h2", "2. Cơ quan, đơn vị báo cáo muộn, chưa báo cáo"),
            ("p", f"Tổng số {s['expected']} báo cáo phải gửi: {s['on_time']} đúng hạn, {s['late']} muộn, "
                  f"{s['missing']} chưa báo cáo."
                  + (f" Nêu dưới đây {BODY_ROWS} cơ quan, đơn vị đầu tiên; danh sách tại Phụ lục 2."
                     if len(laggards) > BODY_ROWS else "")),
            _table(["Cơ quan, đơn vị", "Tình trạng", "Ngày gửi", "Số văn bản", "Nhiệm vụ quá hạn"], units,
                   [38, 16, 14, 18, 14], "Các cơ quan, đơn vị đều báo cáo đúng hạn.", (4,)),
            ("h2", "3. Kết quả giám sát, phản biện xã hội của Mặt trận Tổ quốc và các tổ chức "
                   "chính trị - xã hội"),
            *(_supervisions(r) or [("p", "Trong kỳ chưa nhận được kết quả giám sát, phản biện xã hội.")])]


def _supervisions(r: dict) -> list[tuple]:
    names = {u["code"]: u["name"] for u in r["units"]}
    items = []
    for s in r["supervisions"]:
        about = "; ".join(x for x in (f"Chương trình {s['programme']}" if s.get("programme") else "",
                                      names.get(s.get("unit"), s.get("unit") or "")) if x)
        lead = f"{s['source_name']} ({SUPERVISION_KIND.get(s['kind'], s['kind'])}, {fmt_day(s['time'])}" \
               f"{'; ' + about if about else ''}):"
        advice = f" Kiến nghị: {s['recommendation']}" if s.get("recommendation") else ""
        items.append(("item", (lead, f"{s['finding']}{advice}")))
    return items


def _due_rows(tasks: list[dict]) -> list[list[str]]:
    return [[t["programme"], t["title"], t["lead_unit_name"], fmt_date(t["due_date"]),
             TASK_STATUS.get(t["status"], t["status"]), _pct(t.get("progress"))] for t in tasks]


DUE = (["CT", "Nhiệm vụ", "Cơ quan chủ trì", "Hạn", "Tình trạng", "Tiến độ (%)"], [5, 37, 22, 13, 13, 10])


def _next(r: dict) -> list[tuple]:
    """III: the next reporting period and the tasks falling due in it."""
    n = r.get("next_period")
    if not n:
        return [("h1", "III. NHIỆM VỤ KỲ TỚI"), ("p", "Không có kỳ báo cáo tiếp theo.")]
    due = n["tasks_due"]
    return [("h1", "III. NHIỆM VỤ KỲ TỚI"),
            ("p", f"Báo cáo {n['cycle_label']}: số liệu tính đến {fmt_day(n['cut_off'])}; các cơ quan, "
                  f"đơn vị gửi báo cáo chậm nhất {fmt_day(n['due_date'])}."),
            ("p", "Có " + _listed(len(due), BODY_ROWS, "nhiệm vụ đến hạn hoàn thành trong kỳ tới", "Phụ lục 4")
             if due else "Không có nhiệm vụ đến hạn hoàn thành trong kỳ tới."),
            *([_table(DUE[0], _due_rows(due[:BODY_ROWS]), DUE[1], "", (5,))] if due else [])]


def _annex_list(title: str, subtitle: str, spec: tuple, items: list, to_rows, what: str, key: str, empty: str,
                num) -> dict:
    """An annex of one of the long lists: its first ANNEX_ROWS items as rows (the others are not
    formatted: a term has thousands), saying where the others are."""
    rows = to_rows(items[:ANNEX_ROWS])
    annex = {"title": title, "subtitle": subtitle, "table": _table(spec[0], rows, spec[1], empty, num)}
    if len(items) > ANNEX_ROWS:
        annex["note"] = (f"Phụ lục nêu {ANNEX_ROWS}/{len(items)} {what}; {len(items) - ANNEX_ROWS} {what} còn lại "
                         f"có trong bản JSON của báo cáo (mục {key}) và bản xuất bảng tính.")
    return annex


def _unit_rows(units: list[dict]) -> list[list[str]]:
    return [[u["code"], u["name"], REPORT_STATUS.get((u.get("report") or {}).get("status"), "–"), _received(u),
             *(str(u["reports"][k]) for k in ("expected", "on_time", "late", "missing")), str(u["tasks_overdue"])]
            for u in units]


def _annexes(r: dict) -> list[dict]:
    """Phụ lục 1 (programmes), 2 (units), 3 (overdue tasks), 4 (tasks due next period)."""
    def done(flag, no, day):
        return f"{no or 'Có'}, {fmt_date(day)}".strip(", ") if flag else "Chưa"
    progs = [[p["code"], p["title"], p["lead_unit_name"], done(p["issued"], p["document_no"], p["issued_on"]),
              done(p["steering_committee"], *((p["steering_committee"] or {}).get(k) for k in
                                              ("decision_no", "established_on"))),
              *(str(p["plans"][k]) for k in ("submitted", "rejected")),
              *(str(p["tasks"][k]) for k in ("total", "not_started", "in_progress", "completed", "blocked",
                                             "cancelled", "overdue")), _pct(p["progress_pct"])]
             for p in r["programmes"]]
    unit_spec = (["Mã", "Cơ quan, đơn vị", "Báo cáo kỳ này", "Ngày gửi", "Phải gửi", "Đúng hạn", "Muộn",
                  "Chưa báo cáo", "Nhiệm vụ quá hạn"], [12, 34, 12, 10, 6, 6, 6, 7, 7])
    due = (r.get("next_period") or {}).get("tasks_due", [])
    return [{"title": "PHỤ LỤC 1", "subtitle": "TÌNH HÌNH THỰC HIỆN CÁC CHƯƠNG TRÌNH", "table": _table(
                ["Mã", "Tên chương trình", "Cơ quan chủ trì", "Ban hành", "Ban Chỉ đạo", "KH đã gửi",
                 "KH trả lại", "Tổng số NV", "Chưa triển khai", "Đang thực hiện", "Hoàn thành", "Vướng mắc",
                 "Hủy", "Quá hạn", "Tiến độ (%)"], progs, [3.5, 25, 10, 9, 8.5, *[4.4] * 10],
                "Chưa có chương trình.", range(5, 15))},
            _annex_list("PHỤ LỤC 2", "TÌNH HÌNH BÁO CÁO CỦA CÁC CƠ QUAN, ĐƠN VỊ", unit_spec, r["units"], _unit_rows,
                        "cơ quan, đơn vị", "units", "Chưa có cơ quan, đơn vị phải báo cáo.", range(4, 9)),
            _annex_list("PHỤ LỤC 3", "CÁC NHIỆM VỤ QUÁ HẠN", OVERDUE, r["overdue_tasks"], _overdue_rows,
                        "nhiệm vụ", "overdue_tasks", "Không có nhiệm vụ quá hạn.", (6,)),
            _annex_list("PHỤ LỤC 4", "CÁC NHIỆM VỤ ĐẾN HẠN TRONG KỲ TỚI", DUE, due, _due_rows, "nhiệm vụ",
                        "next_period.tasks_due", "Không có nhiệm vụ đến hạn hoàn thành trong kỳ tới.", (5,))]


def _view(r: dict) -> dict:
    """Everything the three formats print, in order."""
    d = r["document"]
    received = f", theo thông tin nhận được đến {fmt_day(r['known_on'])}" if r.get("known_on") else ""
    intro = (f"Số liệu tính từ {fmt_day(r['window']['start'])} đến {fmt_day(r['window']['cut_off'])} "
             f"(kỳ báo cáo {r['cycle_label']}){received}.")
    body = [("p", intro), ("h1", "I. KẾT QUẢ THỰC HIỆN"),
            ("h2", "1. Ban hành chương trình, thành lập Ban Chỉ đạo"), *_issuance(r), *_progress(r),
            *_indicators(r), *_shortcomings(r), *_next(r)]
    attached = d["number_text"].replace("Số", "số", 1)
    return {"document": d, "body": body, "annexes": _annexes(r), "attached": f"(Kèm theo Báo cáo {attached})",
            "recipients": [f"- {name}," for name in d["recipients"]] + ["- Lưu VP."],
            "signer": "CHÁNH VĂN PHÒNG" if "VĂN PHÒNG" in d["issuer"].upper() else "T/M BAN THƯỜNG VỤ"}


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(_TEMPLATES), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    return env.get_template("standing_committee.html.j2")


def _chart(r: dict, name: str, fmt: str) -> str | bytes:
    """A chart of the report, drawn once for what it shows (a tenth of a second to half a second
    each): the HTML, the PDF and the Word document of one report, and the reports of a state no
    change has touched since, share it."""
    return _drawn(name, fmt, json.dumps(r[CHARTS[name][0]], sort_keys=True, default=str))


@lru_cache(maxsize=8)  # two charts, SVG and PNG, of the current and of a past report
def _drawn(name: str, fmt: str, data: str) -> str | bytes:
    """The chart drawn from what it shows, as the report's JSON carries it (numbers and codes)."""
    _, draw, _ = CHARTS[name]
    return draw(json.loads(data), fmt)


def render_html(report: dict) -> str:
    """The report as one self-contained HTML page (charts inlined as SVG data URIs)."""
    view = _view(report)
    charts = {name: "data:image/svg+xml;base64," + base64.b64encode(
        _chart(report, name, "svg").encode()).decode() for kind, name in view["body"] if kind == "chart"}
    captions = {name: caption for name, (_, _, caption) in CHARTS.items()}
    return _template().render(view=view, charts=charts, captions=captions, report=report)


def render_pdf(report: dict) -> bytes:
    """The report as A4 PDF, printed by WeasyPrint from the same HTML."""
    import weasyprint  # heavy import, only needed here

    return weasyprint.HTML(string=render_html(report)).write_pdf()
