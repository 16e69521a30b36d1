"""A realistic first quarter of 2021 in Hanoi, driven through the public HTTP API of
the running stack (`make up`, with the reports clock at 15 March 2021, the day after
the quarter's cut-off): the Office issues 8 of the 10 programmes, departments and
districts submit plans and report progress, one plan breaks the rules, the Front
records a finding, units send their quarterly reports (some late). Then the live
status is printed and written to out/, with the report to the Standing Committee
for 2021-Q1 in JSON, HTML, PDF and DOCX.

Task titles, people (fictional names) and dates are illustrative sample data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import httpx
import yaml

from deploy.local.stack import LOCAL, REGISTRY, ROOT

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


def registry_indicators() -> list[dict]:
    return yaml.safe_load(REGISTRY.read_text(encoding="utf-8"))["indicators"]


def load_env() -> dict[str, str]:
    path = LOCAL / "stack.env"
    if not path.exists():
        sys.exit("demo: the stack is not up (no .local/stack.env); run `make up` first")
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def main() -> int:
    env = load_env()
    keys = {unit: key for key, unit in json.loads(Path(env["NQT_DEV_KEYS_FILE"]).read_text()).items()}
    print("demo: loading the Hanoi registry (units, 10 programmes, sample indicators) ...", flush=True)
    loaded = subprocess.run([sys.executable, "-m", "nqt.cli", "registry", "load", str(REGISTRY)],
                            cwd=ROOT, env={**os.environ, "NQT_KAFKA_BOOTSTRAP": env["NQT_KAFKA_BOOTSTRAP"]})
    if loaded.returncode:
        return loaded.returncode
    batches = scenario()
    expected_tasks = sum(len(tasks) for *_, tasks in PLANS)
    with httpx.Client(base_url=env["NQT_INGEST_URL"], timeout=30) as ingest:
        for n, (unit, events) in enumerate(batches, 1):
            response = ingest.post("/v1/events", json=events, headers={"Authorization": f"Bearer {keys[unit]}"})
            if response.status_code != 202:
                print(f"demo: {unit} got {response.status_code}: {response.text}", file=sys.stderr)
                return 1
            progress(f"demo: published {n}/{len(batches)} requests", done=n == len(batches))
    status = wait_for_status(env["NQT_REPORTS_URL"], expected_tasks, len(UPDATES))
    OUT.mkdir(parents=True, exist_ok=True)
    written = write_report(env["NQT_REPORTS_URL"], "2021-Q1")
    table = render(status)
    print(table)
    (OUT / "status.txt").write_text(table + "\n", encoding="utf-8")
    (OUT / "status.json").write_text(json.dumps(status, ensure_ascii=False, indent=1), encoding="utf-8")
    notices = wait_for_notices(env["NQT_NOTIFY_URL"], keys["VPTU"], status["reports_summary"]["expected"])
    mails = sorted((LOCAL / "mail").glob("*.eml"))
    print(f"demo: status written to {OUT / 'status.txt'} and status.json; the report to the Standing Committee "
          f"to {', '.join(p.name for p in written)}")
    print(f"demo: notify has sent {', '.join(f'{n} {kind}' for kind, n in sorted(notices.items()))} so far "
          f"(more follow); {len(mails)} e-mail(s) are in the local mail catcher ({LOCAL / 'mail'})")
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


def wait_for_status(url: str, tasks: int, updates: int, timeout: float = 90.0) -> dict:
    """Poll /v1/status until every plan, update and the rejection are reflected."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=url, timeout=10) as reports:
        while True:
            status = reports.get("/v1/status").json()
            progs = status["programmes"]
            total = sum(p["tasks"]["total"] for p in progs)
            touched = sum(p["tasks"]["total"] - p["tasks"]["not_started"] for p in progs)
            rejected = sum(p["plans"]["rejected"] for p in progs)
            issued = sum(p["issued"] for p in progs)
            reported = status["reports_summary"]["on_time"] + status["reports_summary"]["late"]
            measured = sum(i["latest"] is not None for i in status["indicators"])
            done = (total >= tasks and touched >= updates and rejected >= 1 and issued == len(ISSUED)
                    and reported >= len(UNIT_REPORTS) and measured >= INDICATORS_REPORTED)
            progress(f"demo: status shows {total}/{tasks} tasks, {touched}/{updates} updated, "
                     f"{issued}/{len(ISSUED)} programmes issued, {rejected}/1 rejected plan, "
                     f"{reported}/{len(UNIT_REPORTS)} unit reports", done=done)
            if done:
                return status
            if time.monotonic() > deadline:
                print()
                raise SystemExit(f"demo: /v1/status did not reflect the scenario within {timeout:.0f}s")
            time.sleep(0.5)


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
    """The report to the Standing Committee for `cycle`, in every format, into out/."""
    paths = []
    with httpx.Client(base_url=url, timeout=120) as reports:
        for fmt in ("json", "html", "pdf", "docx"):
            response = reports.get("/v1/reports/standing-committee", params={"cycle": cycle, "format": fmt})
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
