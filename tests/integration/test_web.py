"""The web view (/ui/) of the reports service on the real Kafka and FerretDB: sign-in and roles,
the pages' numbers against GET /v1/status, a task's history, and bad input refused."""

from __future__ import annotations

import html
import re

import httpx

from shared import kafka
from tests import kafkatools
from tests.integration.conftest import running

from services.reports.app import build
from services.reports.settings import ReportsSettings
from services.reports.web.users import UsersStore, add_user

PERSON = {"name": "Nguyễn Văn An", "position": "Phó Giám đốc Sở"}


def change(kind: str, id: str, state: dict, *, programme: str | None = None, seq: int = 0, key: str | None = None,
           time: str = "2021-03-01T01:00:00.000000Z", accepted: str = "2021-03-01T02:00:00.000000Z",
           fact: dict | None = None) -> bytes:
    key = key or f"X:{id}:{seq}"
    return kafka.dumps({"kind": kind, "id": id, "programme": programme, "seq": seq, "state": state, "event_key": key,
                        "event_time": time, "accepted_at": accepted, "version": f"{time}|{key}",
                        **({"fact": fact} if fact else {})})


def task(task_id: str, lead: str, status: str, progress: float, due: str) -> dict:
    return {"task_id": task_id, "programme": "02", "plan": f"{lead}|KH-1", "lead_unit": lead, "lead_person": PERSON,
            "due_date": due, "status": status, "progress": progress, "title": f"Nhiệm vụ {task_id}"}


def report(status: str, progress: float, note: str) -> dict:
    return {"status": status, "progress": progress, "as_of": "2021-03-20", "note": note, "reported_by": PERSON}


RECORDS = [
    change("programme", "02", {"code": "02", "title": "Đẩy mạnh đổi mới mô hình tăng trưởng", "lead_unit": "SO-KHDT"}),
    *[change("unit", code, {"code": code, "name": name, "kind": "department"}) for code, name in
      (("SO-KHDT", "Sở Kế hoạch và Đầu tư"), ("SO-TC", "Sở Tài chính"), ("VPTU", "Văn phòng Thành ủy"))],
    change("plan", "SO-KHDT|KH-1", {"status": "submitted"}, programme="02"),
    change("task", "SO-KHDT-02-001", task("SO-KHDT-02-001", "SO-KHDT", "not_started", 0, "2021-06-30"),
           programme="02", seq=1),
    change("task", "SO-KHDT-02-002", task("SO-KHDT-02-002", "SO-KHDT", "not_started", 0, "2021-03-31"),
           programme="02", seq=1),
    change("task", "SO-TC-02-001", task("SO-TC-02-001", "SO-TC", "not_started", 0, "2021-12-31"), programme="02", seq=1),
    change("task", "SO-KHDT-02-001", task("SO-KHDT-02-001", "SO-KHDT", "in_progress", 40, "2021-06-30"),
           programme="02", seq=2, key="SO-KHDT:U-1", time="2021-03-20T01:00:00.000000Z",
           accepted="2021-03-20T01:00:05.000000Z", fact=report("in_progress", 40, "Đã trình đề án")),
    change("task", "SO-KHDT-02-001", task("SO-KHDT-02-001", "SO-KHDT", "in_progress", 60, "2021-06-30"),
           programme="02", seq=3, key="VPTU:U-2", time="2021-03-25T01:00:00.000000Z",
           accepted="2021-03-25T01:00:05.000000Z", fact=report("in_progress", 60, "Văn phòng cập nhật")),
    # an older report arriving late: kept in the history, no new state
    change("task", "SO-KHDT-02-001", task("SO-KHDT-02-001", "SO-KHDT", "in_progress", 60, "2021-06-30"),
           programme="02", seq=3, key="SO-KHDT:U-0", time="2021-03-10T01:00:00.000000Z",
           accepted="2021-03-26T08:00:00.000000Z", fact=report("in_progress", 20, "Gửi muộn")),
]


async def _users(app, units: set[str]) -> dict[str, str]:
    store = UsersStore(app.state.runtime.db)
    return {name: await add_user(users=store, name=name, role=role, unit=unit, approver=approver, units=units)
            for name, role, unit, approver in (("lanh.dao", "leader", None, False), ("van.phong", "office", None, True),
                                               ("so.khdt", "unit", "SO-KHDT", False))}


async def _sign_in(client: httpx.AsyncClient, name: str, password: str, new: str = "mat-khau-moi-2021") -> None:
    await _post(client, "/ui/login", name=name, password=password)
    changed = await _post(client, "/ui/password", current=password, new=new, repeat=new)
    assert changed.status_code == 303 and changed.headers["location"] == "/ui/", changed.text


async def _post(client: httpx.AsyncClient, path: str, **fields) -> httpx.Response:
    page = await client.get("/ui/login" if path == "/ui/login" else "/ui/password")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)[1]
    return await client.post(path, data={"csrf": token, **fields})


def _numbers(html: str, key: str) -> str:
    return re.search(rf'data-key="{re.escape(key)}"[^>]*>([^<]+)<', html)[1]


async def test_roles_see_the_numbers_of_the_status_and_a_task_history(isolated):
    settings = isolated.settings(ReportsSettings, clock_fixed="2021-04-05T09:00:00+07:00", reports_scheduler=False,
                                 topic_partitions=1)
    app = build(settings)
    async with running(app) as service:
        await kafkatools.produce(settings.kafka_bootstrap, settings.topics.changes, RECORDS, key=b"02")
        status = await kafkatools.eventually(lambda: _json(service, "/v1/status"),
                                             lambda s: s["totals"]["tasks"]["in_progress"] == 1, timeout=60)
        passwords = await _users(app, {"SO-KHDT", "SO-TC", "VPTU"})
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as leader, \
                httpx.AsyncClient(transport=transport, base_url="http://service") as unit:
            anonymous = await leader.get("/ui/programmes/02?status=in_progress")
            assert anonymous.status_code == 303
            assert anonymous.headers["location"] == "/ui/login?next=%2Fui%2Fprogrammes%2F02%3Fstatus%3Din_progress"

            await _sign_in(leader, "lanh.dao", passwords["lanh.dao"])
            overview = await leader.get("/ui/")
            assert overview.status_code == 200
            t = status["totals"]["tasks"]
            assert [_numbers(overview.text, f"tasks.{k}") for k in ("total", "in_progress", "overdue")] == \
                [str(t["total"]), str(t["in_progress"]), str(t["overdue"])] == ["3", "1", "1"]
            assert 'href="/ui/programmes/02?overdue=1#tasks"' in overview.text

            filtered = await leader.get("/ui/programmes/02?overdue=1")
            assert "SO-KHDT-02-002" in filtered.text and "SO-KHDT-02-001" not in filtered.text
            assert "Hiển thị 1–1 / 1 nhiệm vụ" in filtered.text

            history = (await leader.get("/ui/tasks/SO-KHDT-02-001")).text
            rows = re.findall(r"<tr><td>(\d\d/\d\d/\d{4} \d\d:\d\d)</td><td>(\d\d/\d\d/\d{4} \d\d:\d\d)</td>"
                              r"<td><a href=\"/ui/units/([A-Z-]+)\">", history)
            assert rows == [("10/03/2021 08:00", "26/03/2021 15:00", "SO-KHDT"),   # by event time: the late one first
                            ("20/03/2021 08:00", "20/03/2021 08:00", "SO-KHDT"),
                            ("25/03/2021 08:00", "25/03/2021 08:00", "VPTU")]
            assert "Nguyễn Văn An, Phó Giám đốc Sở" in history and "Gửi muộn" in history

            await _sign_in(unit, "so.khdt", passwords["so.khdt"])
            assert (await unit.get("/ui/")).headers["location"] == "/ui/units/SO-KHDT"
            own = await unit.get("/ui/units/SO-KHDT")
            assert own.status_code == 200 and "SO-KHDT-02-001" in own.text
            for other in ("/ui/units/SO-TC", "/ui/tasks/SO-TC-02-001", "/ui/indicators", "/ui/reports"):
                assert (await unit.get(other)).status_code == 403, other
            programme = (await unit.get("/ui/programmes/02")).text
            assert "SO-KHDT-02-001" in programme and "SO-TC-02-001" not in programme

            # the same records read again (a replay after a crash) add nothing to the history
            await kafkatools.produce(settings.kafka_bootstrap, settings.topics.changes, RECORDS[-3:], key=b"02")
            await kafkatools.produce(settings.kafka_bootstrap, settings.topics.changes,
                                     [change("unit", "SO-XD", {"code": "SO-XD", "name": "Sở Xây dựng"})], key=b"02")
            # applied in order: once the unit after them is there, so are they
            await kafkatools.eventually(lambda: leader.get("/ui/units/SO-XD"), lambda r: r.status_code == 200)
            assert (await leader.get("/ui/tasks/SO-KHDT-02-001")).text.count("Gửi muộn") == 1


async def _json(client: httpx.AsyncClient, path: str) -> dict:
    return (await client.get(path)).json()


async def test_bad_input_gets_a_precise_message_and_changes_nothing(isolated):
    settings = isolated.settings(ReportsSettings, clock_fixed="2021-04-05T09:00:00+07:00", reports_scheduler=False,
                                 topic_partitions=1, ui_login_rate_user="3/15 minutes")
    app = build(settings)
    async with running(app) as client:
        await kafkatools.produce(settings.kafka_bootstrap, settings.topics.changes, RECORDS[:4], key=b"02")
        await kafkatools.eventually(lambda: _json(client, "/v1/status"), lambda s: len(s["programmes"]) == 1,
                                    timeout=60)
        passwords = await _users(app, {"SO-KHDT", "SO-TC", "VPTU"})
        store = UsersStore(app.state.runtime.db)

        wrong = await _post(client, "/ui/login", name="van.phong", password="not-it")
        assert wrong.status_code == 401 and "Tên đăng nhập hoặc mật khẩu không đúng" in wrong.text
        forged = await client.post("/ui/login", data={"csrf": "forged", "name": "van.phong",
                                                      "password": passwords["van.phong"]})
        assert forged.status_code == 403 and "Biểu mẫu đã hết hiệu lực" in forged.text

        await _post(client, "/ui/login", name="van.phong", password=passwords["van.phong"])
        assert (await client.get("/ui/")).headers["location"] == "/ui/password"  # the one-time password first
        short = await _post(client, "/ui/password", current=passwords["van.phong"], new="ngan", repeat="khac")
        assert short.status_code == 400
        assert "mật khẩu mới cần ít nhất 12 ký tự; hai lần nhập mật khẩu mới không khớp" in short.text
        assert (await store.get("van.phong"))["must_change"] is True

        await _post(client, "/ui/password", current=passwords["van.phong"], new="mat-khau-moi-2021",
                    repeat="mat-khau-moi-2021")
        bad = await client.get("/ui/programmes/02?status=done&page=x")
        assert bad.status_code == 400
        assert "tình trạng 'done' không có" in html.unescape(bad.text)
        assert "trang 'x' phải là số nguyên dương" in html.unescape(bad.text)
        assert (await client.get("/ui/programmes/11")).status_code == 404
        assert (await client.get("/ui/reports/2021-Q1?known_at=05-04-2021")).status_code == 400

        # failed logins are limited per user name: the right password is not even tried then
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://service") as other:
            for _ in range(3):
                assert (await _post(other, "/ui/login", name="lanh.dao", password="sai")).status_code == 401
            limited = await _post(other, "/ui/login", name="lanh.dao", password=passwords["lanh.dao"])
            assert limited.status_code == 429 and "Retry-After" in limited.headers
