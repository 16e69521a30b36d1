"""Notify against a real SMTP server, a real HTTP receiver, Kafka and FerretDB."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
from contextlib import ExitStack, asynccontextmanager
from datetime import datetime


from deploy.local import infra, mailsink
from shared import kafka
from tests import kafkatools
from tests.integration.conftest import running
from tests.receivers import KeyServer, Receiver

from services.notify.app import build
from services.notify.settings import NotifySettings

SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
KEYS = {unit: f"key-{unit.lower()}-{secrets.token_hex(8)}" for unit in ("VPTU", "SO-KHDT", "SO-TC")}
OFFICE = {"Authorization": f"Bearer {KEYS['VPTU']}"}


def unit(code: str, *, email: str | None = None, webhook: str | None = None, channels=None, person=None) -> dict:
    return {"code": code, "name": f"Đơn vị {code}", "kind": "department", "email": email, "webhook": webhook,
            "channels": channels, "person_in_charge": person}


def change(kind: str, id: str, state: dict, seq: int = 0) -> bytes:
    return kafka.dumps({"kind": kind, "id": id, "programme": state.get("programme"), "seq": seq, "state": state,
                        "event_key": f"t:{id}:{seq}", "event_time": "2021-03-01T00:00:00.000000Z",
                        "accepted_at": "2021-03-01T00:00:00.000000Z", "version": f"v{seq}"})


def registry(receiver: Receiver) -> list[bytes]:
    return [
        change("unit", "VPTU", unit("VPTU", email="vptu@hanoi.example",
                                    person={"name": "Trần Văn Bình", "position": "Chánh Văn phòng",
                                            "email": "chanh-vp@hanoi.example"})),
        change("unit", "BTV", unit("BTV", email="btv@hanoi.example")),
        change("unit", "SO-KHDT", unit("SO-KHDT", email="so-khdt@hanoi.example")),
        change("unit", "SO-TC", unit("SO-TC", email="so-tc@hanoi.example", webhook=f"{receiver.url}/hooks/so-tc",
                                     channels=["webhook"])),
        change("unit", "Q-BADINH", unit("Q-BADINH", email="q-badinh@hanoi.example",
                                        webhook=f"{receiver.url}/hooks/broken")),
        change("settings", "settings", {"code": "settings", "reporting": {"recipients": ["BTV"]}}),
    ]


def key_server() -> KeyServer:
    return KeyServer({key: unit for unit, key in KEYS.items()})


@asynccontextmanager
async def notify(isolated, receiver: Receiver, clock: str = "2021-03-10T09:00:00+07:00", ingest: str | None = None,
                 reports_url: str | None = None):
    """Notify on its own topics and database; `ingest` answers whose a key is (default: a
    server that knows KEYS); issued reports are fetched from `reports_url` (default: `receiver`)."""
    controller, mailbox = mailsink.serve(infra.free_port(), None)
    with ExitStack() as stack:
        ingest = ingest or stack.enter_context(key_server()).url
        settings = isolated.settings(NotifySettings, smtp_port=controller.port,
                                     notify_webhook_secrets={"SO-TC": SECRET}, notify_attempts=3,
                                     notify_retry_seconds=0.3, notify_scan_seconds=0.2, notify_escalate_after_days=3,
                                     clock_fixed=clock, notify_ingest_url=ingest,
                                     notify_reports_url=reports_url or receiver.url)
        app = build(settings)
        try:
            async with running(app) as client:
                await kafkatools.produce(isolated.kafka, settings.topics.changes, registry(receiver),
                                         key=b"registry")
                await asyncio.sleep(0.5)
                yield app, client, mailbox, settings
        finally:
            controller.stop()


def move(app, when: str) -> None:
    app.state.clock.fixed = datetime.fromisoformat(when)


async def quiet(seconds: float = 1.2) -> None:
    """Let several scans and retry rounds run (each 0.2-0.3 s apart)."""
    await asyncio.sleep(seconds)


def mail_to(mailbox, address: str) -> list:
    return [m for m in mailbox.snapshot() if m["To"] == address]


async def test_moving_the_clock_across_a_due_date_reminds_notifies_and_escalates_once(isolated):
    with Receiver() as receiver:
        async with notify(isolated, receiver) as (app, client, mailbox, settings):
            task = {"task_id": "K-T1", "programme": "02", "title": "Đề án thu hút đầu tư", "lead_unit": "SO-KHDT",
                    "lead_person": {"name": "Nguyễn Văn An", "position": "Phó Giám đốc"},
                    "due_date": "2021-03-20", "status": "in_progress", "progress": 40, "dropped": False}
            await kafkatools.produce(isolated.kafka, settings.topics.changes, [change("task", "K-T1", task, seq=1)],
                                     key=b"02")
            await quiet()
            assert mail_to(mailbox, "so-khdt@hanoi.example") == []          # 10 March: nothing due yet
            for day in ("2021-03-13", "2021-03-15", "2021-03-19", "2021-03-20", "2021-03-21", "2021-03-22",
                        "2021-03-23", "2021-03-24", "2021-03-26"):
                move(app, f"{day}T08:00:00+07:00")
                await quiet(0.8)
    bodies = [m.get_content() for m in mail_to(mailbox, "so-khdt@hanoi.example")]
    assert len(bodies) == 3, bodies                                      # 7 days, 1 day, overdue: once each
    assert "còn 7 ngày" in bodies[0] and "còn 1 ngày" in bodies[1] and "đã quá hạn 1 ngày" in bodies[2]
    assert all("K-T1" in b and "Đề án thu hút đầu tư" in b for b in bodies)
    office = [m.get_content() for m in mail_to(mailbox, "vptu@hanoi.example")]
    person = [m.get_content() for m in mail_to(mailbox, "chanh-vp@hanoi.example")]
    assert len(office) == 1 and "quá hạn 3 ngày" in office[0] and "Nguyễn Văn An" in office[0]  # after N = 3 days
    assert len(person) == 1 and "Kính gửi: Trần Văn Bình" in person[0]


async def test_webhooks_are_signed_retried_and_a_dead_receiver_holds_up_no_one(isolated):
    with Receiver() as receiver:
        receiver.failures = {"/hooks/so-tc": 2, "/hooks/broken": -1}
        async with notify(isolated, receiver) as (app, client, mailbox, settings):
            event = {"id": "report-due-2021-Q1", "cycle": "2021-Q1", "kind": "quarterly", "due_date": "2021-03-16",
                     "window": {"start": "2020-12-15", "cut_off": "2021-03-14"},
                     "expected_units": ["Q-BADINH", "SO-TC", "SO-KHDT"]}
            await kafkatools.produce(isolated.kafka, settings.topics.due, [kafka.dumps(event)], key=b"2021-Q1")

            async def log():
                response = await client.get("/v1/notifications", headers=OFFICE)
                assert response.status_code == 200, response.text
                return response.json()
            done = await kafkatools.eventually(
                log, lambda ds: len(ds) >= 4 and all(d["status"] != "pending" for d in ds), timeout=30)
        posts = receiver.posts("/hooks/so-tc")
    by = {(d["recipient"], d["channel"]): d for d in done}
    assert by[("SO-TC", "webhook")]["status"] == "sent" and len(by[("SO-TC", "webhook")]["attempts"]) == 3
    assert [p["refused"] for p in posts] == [True, True, False]
    assert len({p["headers"]["webhook-id"] for p in posts}) == 1                 # the same identity each time
    for post in posts:  # verified independently of the sending library: HMAC-SHA256 over id.timestamp.body
        h = post["headers"]
        key = base64.b64decode(SECRET.removeprefix("whsec_"))
        signed = f"{h['webhook-id']}.{h['webhook-timestamp']}.".encode() + post["body"]
        expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        assert h["webhook-signature"] == f"v1,{expected}"
    broken = by[("Q-BADINH", "webhook")]
    assert broken["status"] == "failed" and len(broken["attempts"]) == 3
    assert by[("Q-BADINH", "email")]["status"] == "sent" and by[("SO-KHDT", "email")]["status"] == "sent"
    assert by[("SO-KHDT", "email")]["attempts"][0]["at"] < broken["attempts"][-1]["at"]  # not held up
    mail = mail_to(mailbox, "so-khdt@hanoi.example")
    assert len(mail) == 1 and "2021-Q1" in mail[0]["Subject"] and "16/03/2021" in mail[0].get_content()


async def test_units_that_have_not_reported_are_reminded_before_the_due_date(isolated):
    with Receiver() as receiver:
        async with notify(isolated, receiver, clock="2021-03-14T09:00:00+07:00") as (app, client, mailbox, settings):
            event = {"id": "report-due-2021-Q1", "cycle": "2021-Q1", "kind": "quarterly", "due_date": "2021-03-16",
                     "window": {"start": "2020-12-15", "cut_off": "2021-03-14"},
                     "expected_units": ["Q-BADINH", "SO-KHDT"]}
            await kafkatools.produce(isolated.kafka, settings.topics.due, [kafka.dumps(event)], key=b"2021-Q1")
            reported = {"unit": "Q-BADINH", "cycle": "2021-Q1", "document_no": "1/BC", "summary": "x",
                        "time": "2021-03-12T02:00:00.000000Z"}
            await kafkatools.produce(isolated.kafka, settings.topics.changes,
                                     [change("unit_report", "Q-BADINH|2021-Q1", reported)], key=b"Q-BADINH")
            await quiet()
            move(app, "2021-03-15T08:00:00+07:00")  # one day before the due date
            await quiet()
            move(app, "2021-03-16T08:00:00+07:00")
            await quiet()
    reminders = [m for m in mailbox.snapshot() if "Nhắc việc" in m["Subject"]]
    assert [m["To"] for m in reminders] == ["so-khdt@hanoi.example"]
    assert "Báo cáo kỳ 2021-Q1 đến hạn ngày 16/03/2021" in reminders[0].get_content()


async def test_an_issued_report_reaches_its_recipients_with_the_pdf_attached(isolated):
    with Receiver() as receiver:
        pdf = b"%PDF-1.7 a report"
        receiver.files["/v1/reports/archive/2021-Q1/pdf"] = ("application/pdf", pdf)
        async with notify(isolated, receiver) as (app, client, mailbox, settings):
            formats = {f: f"{receiver.url}/v1/reports/archive/2021-Q1/{f}" for f in ("json", "html", "pdf", "docx")}
            event = {"id": "report-generated-2021-Q1", "cycle": "2021-Q1", "number": "Số 1-BC/VPTU",
                     "summary": "Tình hình thực hiện chương trình hành động, quý I/2021", "formats": formats}
            await delivered_twice(isolated, settings, mailbox, event, to="btv@hanoi.example")
    mail = mail_to(mailbox, "btv@hanoi.example")
    assert len(mail) == 1 and "Số 1-BC/VPTU" in mail[0]["Subject"]
    attachments = list(mail[0].iter_attachments())
    assert [(a.get_filename(), a.get_content()) for a in attachments] == [("bao-cao-2021-Q1.pdf", pdf)]
    assert formats["docx"] in mail[0].get_body(("plain",)).get_content()


async def test_a_draft_awaiting_sign_off_is_told_to_the_office_once_with_its_links(isolated):
    with Receiver() as receiver:
        async with notify(isolated, receiver) as (app, client, mailbox, settings):
            formats = {f: f"http://reports/v1/reports/standing-committee?cycle=2021-Q1&format={f}" for f in ("pdf", "docx")}
            event = {"type": "report.drafted", "id": "report-drafted-2021-Q1-2", "cycle": "2021-Q1", "revision": 2,
                     "drafted_on": "2021-03-19", "summary": "Tình hình thực hiện chương trình hành động, quý I/2021",
                     "formats": formats, "comment": "Bổ sung số liệu của Sở Tài chính"}
            await delivered_twice(isolated, settings, mailbox, event, to="vptu@hanoi.example")
    mail = mail_to(mailbox, "vptu@hanoi.example")
    assert len(mail) == 1 and "Dự thảo báo cáo 2021-Q1 chờ ký duyệt" in mail[0]["Subject"]
    body = mail[0].get_body(("plain",)).get_content()
    assert formats["pdf"] in body and "Bổ sung số liệu của Sở Tài chính" in body
    assert mail_to(mailbox, "btv@hanoi.example") == []  # the Standing Committee gets only what is issued


async def delivered_twice(isolated, settings, mailbox, event: dict, *, to: str) -> None:
    """`event` on the reports topic twice, as Kafka may deliver it (still one e-mail), then wait
    for the mail to `to` and for notify to go quiet."""
    for _ in range(2):
        await kafkatools.produce(isolated.kafka, settings.topics.generated, [kafka.dumps(event)],
                                 key=event["cycle"].encode())
    await kafkatools.eventually(lambda: _async(mail_to(mailbox, to)))
    await quiet()


async def _async(value):
    return value


def rejected(unit: str, event_id: str) -> bytes:
    return kafka.dumps({"outcome": "rejected", "source": unit, "event_key": f"{unit}:{event_id}", "id": event_id,
                        "type": "plan.submitted", "code": "invalid_plan", "message_vi": "Kế hoạch không hợp lệ",
                        "message_en": "Invalid plan", "findings": [], "event_time": "2021-03-01T00:00:00Z",
                        "decided_at": "2021-03-01T00:00:01Z"})


def bearer(unit: str) -> dict:
    return {"Authorization": f"Bearer {KEYS[unit]}"}


async def test_a_unit_reads_only_its_own_notices_with_its_key_and_the_office_reads_all(isolated, caplog):
    caplog.set_level("DEBUG")
    with Receiver() as receiver, key_server() as keys:
        async with notify(isolated, receiver, ingest=keys.url) as (app, client, mailbox, settings):
            for unit in ("SO-KHDT", "SO-TC"):
                await kafkatools.produce(isolated.kafka, settings.topics.outcomes, [rejected(unit, "X-1")],
                                         key=unit.encode())
            everyone = await kafkatools.eventually(
                lambda: _json(client.get("/v1/notifications", headers=OFFICE)),
                lambda ds: {d["recipient"] for d in ds if d["status"] == "sent"} >= {"SO-KHDT", "SO-TC"})
            own = [await client.get("/v1/notifications", headers=bearer("SO-KHDT"), params=params)
                   for params in ({}, {"unit": "SO-KHDT"})]
            other = await client.get("/v1/notifications", headers=bearer("SO-KHDT"), params={"unit": "SO-TC"})
            office_for_tc = await client.get("/v1/notifications", headers=OFFICE, params={"unit": "SO-TC"})
            anonymous = await client.get("/v1/notifications", params={"unit": "SO-KHDT"})
            wrong = await client.get("/v1/notifications", headers={"Authorization": "Bearer not-a-key"})
    for response in own:
        assert response.status_code == 200
        assert [(d["recipient"], d["kind"], d["channel"]) for d in response.json()] == [
            ("SO-KHDT", "rejected", "email")]
    assert {d["recipient"] for d in everyone} == {"SO-KHDT", "SO-TC"}
    assert [d["recipient"] for d in office_for_tc.json()] == ["SO-TC"]
    assert other.status_code == 403 and other.headers["content-type"] == "application/problem+json"
    assert "SO-TC" in other.json()["detail"]
    for response in (anonymous, wrong):
        assert response.status_code == 401 and response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"] == "Bearer"
    assert keys.asked[KEYS["SO-KHDT"]] == 1            # a known key is trusted a while, not asked each time
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert not any(key in logged for key in KEYS.values())


async def test_the_log_answers_503_while_ingest_cannot_say_whose_a_key_is(isolated):
    with Receiver() as receiver:
        async with notify(isolated, receiver, ingest=f"http://127.0.0.1:{infra.free_port()}") as (app, client, *_):
            response = await client.get("/v1/notifications", headers=OFFICE)
    assert response.status_code == 503 and response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) > 0


async def _json(request):
    return (await request).json()
