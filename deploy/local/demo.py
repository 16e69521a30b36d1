"""A realistic first quarter of 2021 in Hanoi, driven through the public HTTP API of
the running stack (`make up`, with the services' clock at 19 March 2021, after the
last unit's report arrived): the Office issues 8 of the 10 programmes, departments and
districts submit plans and report progress, one district (Hoàn Kiếm) works in Excel and
uploads its plan and quarterly report as filled-in templates, one plan breaks the rules,
the Front records a finding, units send their quarterly reports (some late). The demo
waits for the outcome of each of its own events (the stack may hold others), prints the
live status and writes it to out/; then the Office approves the 2021-Q1 report to the
Standing Committee (`nqt reports approve`), and the issued report, numbered, is written
to out/ in JSON, HTML, PDF and DOCX.

Task titles, people (fictional names) and dates are illustrative sample data."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import httpx
import openpyxl
import yaml

from deploy.local.stack import LOCAL, REGISTRY, ROOT, read_env
from shared import kafka
from services.reports.settings import ReportsSettings

OUT = Path(os.environ.get("NQT_OUT_DIR", ROOT / "out"))

# (unit, programme, plan title, [(task title, due date, person, position)])
PLANS = [
    ("SO-KHDT", "02", "Kế hoạch thực hiện Chương trình 02-CTr/TU năm 2021", [
        ("Xây dựng Kế hoạch phát triển kinh tế - xã hội 5 năm 2021-2025", "2021-03-31", "Nguyễn Văn An", "Giám đốc Sở"),
        ("Đề án thu hút đầu tư vào các khu công nghiệp", "2021-09-30", "Trần Thị Bình", "Phó Giám đốc Sở"),
        ("Cải thiện chỉ số năng lực cạnh tranh cấp tỉnh (PCI)", "2021-12-31", "Trần Thị Bình", "Phó Giám đốc Sở"),
    ]),
    ("SO-XD", "03", "Kế hoạch chỉnh trang đô thị năm 2021", [
        ("Cải tạo, xây dựng lại các chung cư cũ", "2021-12-31", "Lê Văn Cường", "Giám đốc Sở"),
        ("Rà soát quy chế quản lý kiến trúc đô thị", "2021-02-28", "Phạm Thị Dung", "Phó Giám đốc Sở"),
        ("Chỉnh trang hè phố các tuyến trung tâm", "2021-06-30", "Phạm Thị Dung", "Phó Giám đốc Sở"),
    ]),
    ("SO-NNPTNT", "04", "Kế hoạch xây dựng nông thôn mới năm 2021", [
        ("Hoàn thành tiêu chí nông thôn mới nâng cao tại 30 xã", "2021-12-31", "Hoàng Văn Đức", "Giám đốc Sở"),
        ("Chương trình mỗi xã một sản phẩm (OCOP)", "2021-10-31", "Vũ Thị Giang", "Phó Giám đốc Sở"),
    ]),
    ("SO-TNMT", "05", "Kế hoạch bảo vệ môi trường, ứng phó biến đổi khí hậu năm 2021", [
        ("Xử lý ô nhiễm các sông Tô Lịch, Kim Ngưu, Lừ, Sét", "2021-12-31", "Đỗ Văn Hùng", "Giám đốc Sở"),
        ("Kiểm kê khí thải các cơ sở sản xuất", "2021-03-15", "Bùi Thị Lan", "Phó Giám đốc Sở"),
    ]),
    ("SO-KHCN", "07", "Kế hoạch phát triển khoa học, công nghệ và đổi mới sáng tạo năm 2021", [
        ("Xây dựng Trung tâm hỗ trợ khởi nghiệp sáng tạo", "2021-09-30", "Đặng Văn Minh", "Giám đốc Sở"),
        ("Chương trình phát triển tài sản trí tuệ", "2021-06-30", "Đặng Văn Minh", "Giám đốc Sở"),
    ]),
    ("SO-LDTBXH", "08", "Kế hoạch bảo đảm an sinh xã hội năm 2021", [
        ("Hỗ trợ người lao động gặp khó khăn do đại dịch COVID-19", "2021-03-31", "Ngô Thị Nga", "Giám đốc Sở"),
        ("Giảm tỷ lệ hộ nghèo theo chuẩn mới", "2021-12-31", "Dương Văn Phúc", "Phó Giám đốc Sở"),
    ]),
    ("Q-BADINH", "01", "Kế hoạch xây dựng, chỉnh đốn Đảng và cải cách hành chính năm 2021", [
        ("Nâng cao chỉ số cải cách hành chính cấp quận", "2021-12-31", "Lý Văn Quang", "Chủ tịch UBND quận"),
        ("Triển khai dịch vụ công trực tuyến mức độ 3, 4", "2021-03-10", "Trịnh Thị Quỳnh", "Phó Chủ tịch UBND quận"),
    ]),
    ("H-SOCSON", "04", "Kế hoạch xây dựng huyện nông thôn mới năm 2021", [
        ("Hoàn thiện hạ tầng giao thông nông thôn", "2021-11-30", "Mai Văn Sơn", "Chủ tịch UBND huyện"),
        ("Phát triển vùng sản xuất nông nghiệp tập trung", "2021-06-30", "Tô Thị Trang", "Phó Chủ tịch UBND huyện"),
    ]),
]

# (unit, task index in its plan, status, progress, as of)
UPDATES = [
    ("SO-KHDT", 0, "completed", 100, "2021-03-09"),
    ("SO-KHDT", 1, "in_progress", 35, "2021-03-10"),
    ("SO-XD", 0, "in_progress", 15, "2021-03-05"),
    ("SO-XD", 2, "blocked", 10, "2021-03-06"),
    ("SO-NNPTNT", 0, "in_progress", 30, "2021-03-08"),
    ("SO-TNMT", 1, "completed", 100, "2021-03-12"),
    ("SO-KHCN", 1, "in_progress", 50, "2021-03-11"),
    ("SO-LDTBXH", 0, "completed", 100, "2021-03-02"),
    ("Q-BADINH", 1, "in_progress", 80, "2021-03-09"),
    ("H-SOCSON", 0, "in_progress", 20, "2021-03-07"),
]

# Units' reports for the first quarter (due 16 March 2021): (unit, day sent).
UNIT_REPORTS = [("SO-KHDT", "2021-03-15"), ("SO-TC", "2021-03-15"), ("SO-XD", "2021-03-16"),
                ("SO-NNPTNT", "2021-03-16"), ("SO-TNMT", "2021-03-15"), ("SO-KHCN", "2021-03-17"),
                ("SO-LDTBXH", "2021-03-16"), ("Q-BADINH", "2021-03-15"), ("H-SOCSON", "2021-03-18"),
                ("HDND", "2021-03-16"), ("UBND", "2021-03-16"), ("MTTQ", "2021-03-15")]

INDICATORS_REPORTED = 8  # sample 2020 figures for the first indicators

ISSUED = {f"{n:02d}": date(2021, 3, 5) for n in range(1, 9)}  # 09 and 10 are not issued by the cut-off


def envelope(source: str, event_id: str, event_type: str, data: dict, when: str) -> dict:
    return {"specversion": "1.0", "id": event_id, "source": source, "type": event_type,
            "time": f"{when}T09:00:00+07:00", "datacontenttype": "application/json", "data": data}


def task_id(unit: str, programme: str, index: int) -> str:
    return f"{unit}-{programme}-{index + 1:03d}"


def scenario() -> list[tuple[str, list[dict]]]:
    """(unit, events) in the order they happen."""
    batches = [("VPTU", [
        envelope("VPTU", f"VPTU-2021-CTR-{code}", "programme.issued", {
            "programme": code, "document_no": f"{code}-CTr/TU", "issued_on": issued.isoformat(),
            "steering_committee": {"decision_no": f"{100 + int(code)}-QĐ/TU",
                                   "established_on": (issued + timedelta(days=3)).isoformat(),
                                   "head": {"name": "(mẫu) Thường trực Thành ủy", "position": "Trưởng Ban chỉ đạo"}},
        }, issued.isoformat())
        for code, issued in ISSUED.items()])]
    for n, (unit, programme, title, tasks) in enumerate(PLANS):
        issued_on = f"2021-01-{10 + n:02d}"
        data = {"plan_id": f"KH-{programme}-{unit}", "programme": programme, "title": title,
                "document_no": f"{20 + n}/KH-{unit}", "issued_on": issued_on, "tasks": [
                    {"task_id": task_id(unit, programme, i), "title": t, "lead_unit": unit,
                     "lead_person": {"name": person, "position": position}, "due_date": due,
                     "milestones": [{"title": "Xây dựng kế hoạch chi tiết", "due_date": min(due, "2021-02-28")},
                                    {"title": "Hoàn thành, báo cáo kết quả", "due_date": due}]}
                    for i, (t, due, person, position) in enumerate(tasks)]}
        batches.append((unit, [envelope(unit, f"{unit}-2021-KH-{programme}", "plan.submitted", data, issued_on)]))
    by_unit = {unit: programme for unit, programme, _, _ in PLANS}
    for n, (unit, index, status, progress, as_of) in enumerate(UPDATES):
        batches.append((unit, [envelope(unit, f"{unit}-2021-TD-{n:04d}", "task.updated", {
            "task_id": task_id(unit, by_unit[unit], index), "programme": by_unit[unit], "status": status,
            "progress": progress, "as_of": as_of,
            "reported_by": {"name": "Văn thư đơn vị", "position": "Chuyên viên tổng hợp"}}, as_of)]))
    batches.append(("MTTQ", [envelope("MTTQ", "MTTQ-2021-GS-0001", "supervision.recorded", {
        "programme": "03", "kind": "giam_sat", "unit": "SO-XD",
        "finding": "Việc chỉnh trang hè phố các tuyến trung tâm còn chậm, chưa công khai tiến độ cho người dân.",
        "recommendation": "Sở Xây dựng công bố lộ trình và kết quả từng tháng."}, "2021-03-10")]))
    for n, (unit, day) in enumerate(UNIT_REPORTS):
        batches.append((unit, [envelope(unit, f"{unit}-2021-BC-Q1", "unit-report.submitted", {
            "cycle": "2021-Q1", "document_no": f"{30 + n}/BC-{unit}",
            "summary": "Đơn vị đã ban hành kế hoạch, phân công nhiệm vụ và triển khai theo lộ trình.",
            "shortcomings": "Một số nhiệm vụ chậm so với kế hoạch."}, day)]))
    for n, indicator in enumerate(registry_indicators()[:INDICATORS_REPORTED]):
        value = indicator["baseline"]["value"] * (1.03 if n % 3 else 0.97)  # sample figures for 2020
        unit = indicator["responsible_unit"]
        batches.append((unit, [envelope(unit, f"{unit}-2021-CT-{indicator['code']}", "indicator.reported", {
            "indicator": indicator["code"], "period": "2020", "value": round(value, 2),
            "note": "Số liệu mẫu"}, "2021-03-01")]))
    # A plan whose tasks name no roadmap: rejected whole, and the district is told by e-mail.
    batches.append(("H-DONGANH", [envelope("H-DONGANH", "H-DONGANH-2021-KH-03", "plan.submitted", {
        "plan_id": "KH-03-H-DONGANH", "programme": "03", "title": "Kế hoạch phát triển đô thị Đông Anh",
        "document_no": "45/KH-UBND", "issued_on": "2021-02-25", "tasks": [
            {"task_id": "H-DONGANH-03-001", "title": "Quy hoạch phân khu đô thị", "lead_unit": "H-DONGANH",
             "lead_person": {"name": "Cao Văn Tuấn", "position": "Chủ tịch UBND huyện"},
             "due_date": "2021-12-31", "milestones": []}]}, "2021-02-25")]))
    return batches


SPREADSHEET_UNIT = "Q-HOANKIEM"  # a district with no system of its own: it fills in templates
SPREADSHEET_TASKS = [("Chỉnh trang không gian đi bộ quanh hồ Hoàn Kiếm", "2021-09-30"),
                     ("Số hóa hồ sơ thủ tục hành chính cấp phường", "2021-06-30")]


def spreadsheet_district(env: dict[str, str], key: str) -> int:
    """Hoàn Kiếm downloads the plan template, fills it in and uploads it with `nqt import`; then
    its quarterly report the same way. 0 when both were applied."""
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=env["NQT_INGEST_URL"], timeout=30, headers=headers) as ingest:
        plan = _template(ingest, "plan")
        plan["Kế hoạch"].append(["KH-03-QHK", "03", "Kế hoạch chỉnh trang đô thị quận Hoàn Kiếm năm 2021",
                                 "18/KH-UBND", date(2021, 1, 25)])
        for n, (title, due) in enumerate(SPREADSHEET_TASKS, 1):
            plan["Nhiệm vụ"].append(["KH-03-QHK", f"Q-HOANKIEM-03-{n:03d}", title, SPREADSHEET_UNIT,
                                     "Đinh Văn Hải", "Phó Chủ tịch UBND quận", None, date.fromisoformat(due)])
            plan["Lộ trình"].append([f"Q-HOANKIEM-03-{n:03d}", "Khảo sát, lập phương án", date(2021, 3, 31)])
            plan["Lộ trình"].append([f"Q-HOANKIEM-03-{n:03d}", "Hoàn thành, báo cáo kết quả", date.fromisoformat(due)])
        report = _template(ingest, "unit-report")
        report["Báo cáo"]["A2"] = "2021-Q1"  # the cycle is opened once the stack's clock reaches it
        for ref, value in {"B2": "27/BC-UBND", "C2": date(2021, 3, 15),
                           "D2": "Quận đã ban hành kế hoạch, phân công nhiệm vụ, khảo sát hiện trạng."}.items():
            report["Báo cáo"][ref] = value
    OUT.mkdir(parents=True, exist_ok=True)
    for name, workbook in (("ke-hoach", plan), ("bao-cao-quy", report)):
        path = OUT / f"{SPREADSHEET_UNIT}-{name}.xlsx"
        workbook.save(path)
        print(f"demo: {SPREADSHEET_UNIT} uploads {path.name} (nqt import)", flush=True)
        done = subprocess.run([sys.executable, "-m", "nqt.cli", "import", str(path), "--unit", SPREADSHEET_UNIT,
                               "--key", key, "--url", env["NQT_INGEST_URL"]], cwd=ROOT)
        if done.returncode:
            return done.returncode
    return 0


def _template(ingest: httpx.Client, kind: str) -> openpyxl.Workbook:
    response = ingest.get(f"/v1/templates/{kind}.xlsx")
    response.raise_for_status()
    return openpyxl.load_workbook(io.BytesIO(response.content))


def registry_indicators() -> list[dict]:
    return yaml.safe_load(REGISTRY.read_text(encoding="utf-8"))["indicators"]


def load_env() -> dict[str, str]:
    path = LOCAL / "stack.env"
    if not path.exists():
        sys.exit("demo: the stack is not up (no .local/stack.env); run `make up` first")
    return read_env(path)


def main() -> int:
    env = load_env()
    keys = {unit: key for key, unit in json.loads(Path(env["NQT_DEV_KEYS_FILE"]).read_text()).items()}
    print("demo: loading the Hanoi registry (units, 10 programmes, sample indicators) ...", flush=True)
    loaded = subprocess.run([sys.executable, "-m", "nqt.cli", "registry", "load", str(REGISTRY)],
                            cwd=ROOT, env={**os.environ, "NQT_KAFKA_BOOTSTRAP": env["NQT_KAFKA_BOOTSTRAP"]})
    if loaded.returncode:
        return loaded.returncode
    batches = scenario()
    with httpx.Client(base_url=env["NQT_INGEST_URL"], timeout=30) as ingest:
        for n, (unit, events) in enumerate(batches, 1):
            response = ingest.post("/v1/events", json=events, headers={"Authorization": f"Bearer {keys[unit]}"})
            if response.status_code != 202:
                print(f"demo: {unit} got {response.status_code}: {response.text}", file=sys.stderr)
                return 1
            progress(f"demo: published {n}/{len(batches)} requests", done=n == len(batches))
    if (failed := spreadsheet_district(env, keys[SPREADSHEET_UNIT])):
        return failed
    wait_for_outcomes(env["NQT_INGEST_URL"], keys, batches)
    wait_for_reports(env)
    with httpx.Client(base_url=env["NQT_REPORTS_URL"], timeout=30) as reports:
        status = reports.get("/v1/status").json()
    OUT.mkdir(parents=True, exist_ok=True)
    table = render(status)
    print(table)
    (OUT / "status.txt").write_text(table + "\n", encoding="utf-8")
    (OUT / "status.json").write_text(json.dumps(status, ensure_ascii=False, indent=1), encoding="utf-8")
    check_clock(status)
    print(f"demo: {approve_report(env, '2021-Q1')}", flush=True)
    written = write_report(env["NQT_REPORTS_URL"], "2021-Q1")
    notices = wait_for_notices(env["NQT_NOTIFY_URL"], keys["VPTU"], status["reports_summary"]["expected"])
    mails = sorted(Path(env["NQT_MAIL_DIR"]).glob("*.eml"))
    print(f"demo: status written to {OUT / 'status.txt'} and status.json; the approved report to the Standing "
          f"Committee to {', '.join(str(p) for p in written)}")
    print(f"demo: notify has sent {', '.join(f'{n} {kind}' for kind, n in sorted(notices.items()))} so far "
          f"(more follow); {len(mails)} e-mail(s) are in the local mail catcher ({env['NQT_MAIL_DIR']})")
    web_users(env)
    return 0


# One user of each role of the web view: (name, role, unit, approver).
WEB_USERS = [("vanphong", "office", None, True), ("lanhdao", "leader", None, False), ("so-khdt", "unit", "SO-KHDT", False)]


def web_users(env: dict[str, str]) -> None:
    """Add a user of each role to the web view and print its address and their one-time passwords
    (a user kept from an earlier run keeps the password it was given then)."""
    print(f"demo: the web view is at {env['NQT_UI_URL']}; its users (password changed at the first login):")
    for name, role, unit, approver in WEB_USERS:
        added = subprocess.run([sys.executable, "-m", "nqt.cli", "users", "add", name, "--role", role,
                                *(["--unit", unit] if unit else []), *(["--approver"] if approver else [])],
                               cwd=ROOT, env={**os.environ, "NQT_MONGO_URL": env["NQT_MONGO_URL"]},
                               capture_output=True, text=True)
        password = next((line.split()[-1] for line in added.stdout.splitlines() if line.startswith("password:")), None)
        print(f"  {name:9} {role:6} {unit or '':8} " + (f"password {password}" if password else added.stderr.strip()))


def wait_for_outcomes(url: str, keys: dict[str, str], batches: list[tuple[str, list[dict]]],
                      timeout: float = 120.0) -> None:
    """Wait until ingest knows the outcome of every event the demo sent: its own events only, so
    that whatever else the stack holds (an earlier run's events, another's) does not count."""
    pending = [(unit, event["id"]) for unit, events in batches for event in events]
    total, outcomes = len(pending), Counter()
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=url, timeout=10) as ingest:
        while True:
            waiting = []
            for unit, event_id in pending:
                answer = ingest.get(f"/v1/events/{event_id}", headers={"Authorization": f"Bearer {keys[unit]}"})
                outcome = answer.json().get("status") if answer.status_code == 200 else None
                if outcome in ("applied", "rejected", "duplicate"):
                    outcomes[outcome] += 1
                else:
                    waiting.append((unit, event_id))
            pending = waiting
            progress(f"demo: {total - len(pending)}/{total} events decided ("
                     + ", ".join(f"{n} {o}" for o, n in sorted(outcomes.items())) + ")", done=not pending)
            if not pending:
                return
            if time.monotonic() > deadline:
                print()
                raise SystemExit(f"demo: {len(pending)} events had no outcome within {timeout:.0f}s, e.g. "
                                 f"{pending[0][1]}; is the programs service running?")
            time.sleep(0.5)


def wait_for_reports(env: dict[str, str], timeout: float = 90.0) -> None:
    """Wait until the reports service applied every change the programs service published so far
    (its consumer group committed the end of programs.changes), the demo's among them."""
    settings = ReportsSettings(kafka_bootstrap=env["NQT_KAFKA_BOOTSTRAP"])
    options, groups = kafka.client_options(settings), {settings.reports_group: settings.topics.changes}
    deadline = time.monotonic() + timeout
    while not asyncio.run(kafka.drained(options, groups)):
        if time.monotonic() > deadline:
            raise SystemExit(f"demo: the reports service did not catch up with the changes within {timeout:.0f}s")
        time.sleep(0.5)


def check_clock(status: dict) -> None:
    """A stack started earlier on another clock keeps it: say so, since the dates then disagree."""
    pinned = os.environ.get("NQT_CLOCK_FIXED", "")[:10]
    if pinned and status["as_of"] != pinned:
        print(f"demo: note: the running stack's clock says {status['as_of']}, not {pinned}; `make down` and "
              f"run `make demo` again for the scenario's dates", file=sys.stderr)


def approve_report(env: dict[str, str], cycle: str, timeout: float = 90.0) -> str:
    """The Office approves the cycle's report with `nqt reports approve`, once the reports service
    has drafted it; what the command said. Approving it again (a second run) changes nothing."""
    office = next(u for u in yaml.safe_load(REGISTRY.read_text(encoding="utf-8"))["units"] if u["code"] == "VPTU")
    command = [sys.executable, "-m", "nqt.cli", "reports", "approve", cycle, "--by",
               office["person_in_charge"]["name"]]
    run_env = {**os.environ, "NQT_KAFKA_BOOTSTRAP": env["NQT_KAFKA_BOOTSTRAP"], "NQT_MONGO_URL": env["NQT_MONGO_URL"],
               "NQT_REPORTS_PUBLIC_URL": env["NQT_REPORTS_URL"]}
    deadline = time.monotonic() + timeout
    while True:
        done = subprocess.run(command, cwd=ROOT, env=run_env, capture_output=True, text=True)
        if done.returncode == 0:
            return done.stdout.strip()
        if "no draft yet" not in done.stderr or time.monotonic() > deadline:
            raise SystemExit(f"demo: {' '.join(command[1:])} failed: {done.stderr.strip()[-2000:]}")
        time.sleep(2)


def wait_for_notices(url: str, office_key: str, expected_units: int, timeout: float = 30.0) -> dict[str, int]:
    """Wait until the cycle has opened (one notice per expected unit) and the day's digests went out;
    the Office's key reads every unit's notices."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=url, timeout=10, headers={"Authorization": f"Bearer {office_key}"}) as notify:
        while True:
            kinds: dict[str, int] = {}
            log = notify.get("/v1/notifications", params={"limit": 1000})
            if log.status_code != 200:
                raise SystemExit(f"demo: notify's delivery log answered {log.status_code}: {log.text}")
            for delivery in log.json():
                if delivery["status"] == "sent":
                    kinds[delivery["kind"]] = kinds.get(delivery["kind"], 0) + 1
            if (kinds.get("cycle_opened", 0) >= expected_units and kinds.get("digest")) or time.monotonic() > deadline:
                return kinds
            time.sleep(1)


def write_report(url: str, cycle: str) -> list[Path]:
    """The issued report to the Standing Committee for `cycle`, as archived, in every format, into out/."""
    paths = []
    with httpx.Client(base_url=url, timeout=120) as reports:
        for fmt in ("json", "html", "pdf", "docx"):
            response = reports.get(f"/v1/reports/archive/{cycle}/{fmt}")
            response.raise_for_status()
            path = OUT / f"bao-cao-{cycle}.{fmt}"
            path.write_bytes(response.content)
            paths.append(path)
    return paths


def progress(line: str, *, done: bool) -> None:
    """One line updated in place on a terminal; only the final state in a log."""
    if sys.stdout.isatty():
        print("\r" + line, end="\n" if done else "", flush=True)
    elif done:
        print(line, flush=True)


def render(status: dict) -> str:
    head = (f"{'CT':3} {'Chương trình (tên rút gọn)':44} {'Ban hành':>8} {'KH nộp':>6} {'KH trả':>6} "
            f"{'NV':>3} {'Xong':>4} {'Đang':>4} {'Vướng':>5} {'Quá hạn':>7} {'Tiến độ':>7}")
    lines = [f"Tình hình thực hiện Chương trình hành động — số liệu đến ngày {status['as_of']}"
             f" (kỳ báo cáo {status['cycle']})", "", head, "-" * len(head)]
    for p in status["programmes"]:
        t = p["tasks"]
        title = p["title"] if len(p["title"]) <= 44 else p["title"][:43] + "…"
        progress = "-" if p["progress_pct"] is None else f"{p['progress_pct']:.1f}%"
        lines.append(f"{p['code']:3} {title:44} {'có' if p['issued'] else 'chưa':>8} {p['plans']['submitted']:>6} "
                     f"{p['plans']['rejected']:>6} {t['total']:>3} {t['completed']:>4} {t['in_progress']:>4} "
                     f"{t['blocked']:>5} {t['overdue']:>7} {progress:>7}")
    summary = status["reports_summary"]
    lines += ["", f"Báo cáo {status['cycle']} của các đơn vị (hạn {status['due_date']}): {summary['expected']} phải nộp, "
                  f"{summary['on_time']} đúng hạn, {summary['late']} muộn, {summary['missing']} chưa nộp."]
    overdue = [u for u in status["units"] if u["tasks_overdue"]]
    if overdue:
        lines += ["", "Đơn vị có nhiệm vụ quá hạn: " + ", ".join(f"{u['code']} ({u['tasks_overdue']})" for u in overdue)]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
