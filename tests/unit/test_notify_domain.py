"""Notifications: one message per (kind, subject, recipient, day), and a rejection
notice that tells the unit exactly what to fix (contract section 3)."""

from __future__ import annotations

import re

from shared.records import Outcome

from services.notify.domain import identity, message_id, rejection_text


def test_same_inputs_give_the_same_message_id():
    a = message_id(identity("rejected", "SO-KHDT:SO-KHDT-2021-000042", "SO-KHDT", "2021-04-05"))
    b = message_id(identity("rejected", "SO-KHDT:SO-KHDT-2021-000042", "SO-KHDT", "2021-04-05"))
    assert a == b
    assert re.fullmatch(r"<[0-9a-f]{40}@nq-tracker>", a)


def test_another_recipient_or_day_gives_another_message():
    base = identity("report.due", "2021-Q1", "SO-KHDT", "2021-03-15")
    other_unit = identity("report.due", "2021-Q1", "SO-TC", "2021-03-15")
    other_day = identity("report.due", "2021-Q1", "SO-KHDT", "2021-03-16")
    other_subject = identity("report.due", "2021-Q2", "SO-KHDT", "2021-03-15")
    ids = {message_id(i) for i in (base, other_unit, other_day, other_subject)}
    assert len({base, other_unit, other_day, other_subject}) == 4
    assert len(ids) == 4


OUTCOME = {
    "outcome": "rejected",
    "source": "SO-KHDT",
    "event_key": "SO-KHDT:SO-KHDT-2021-000042",
    "decided_at": "2021-04-05T03:15:01.000000Z",
    "type": "plan.submitted",
    "id": "SO-KHDT-2021-000042",
    "event_time": "2021-04-05T10:15:00+07:00",
    "code": "invalid_plan",
    "message_vi": "Kế hoạch không hợp lệ: mỗi nhiệm vụ phải nêu rõ tập thể, cá nhân chịu trách nhiệm, "
                  "lộ trình và thời gian hoàn thành (2 nhiệm vụ chưa đạt).",
    "message_en": "Invalid plan: every task must name the responsible collective and individual, "
                  "a roadmap and a completion date (2 task(s) do not).",
    "findings": [
        {"pointer": "/data/tasks/1/milestones", "code": "missing_roadmap",
         "message_vi": "Nhiệm vụ chưa có lộ trình (ít nhất một mốc).",
         "message_en": "The task has no roadmap (at least one milestone)."},
        {"pointer": "/data/tasks/3/lead_unit", "code": "unknown_lead_unit",
         "message_vi": "Tập thể chịu trách nhiệm SO-ABC không có trong sổ đăng ký.",
         "message_en": "The responsible collective SO-ABC is not in the registry."},
    ],
}


def test_rejection_notice_names_event_code_reason_and_every_finding():
    subject, body = rejection_text(Outcome.model_validate(OUTCOME), "Sở Kế hoạch và Đầu tư")
    assert "SO-KHDT-2021-000042" in subject and "invalid_plan" in subject
    assert "Kính gửi: Sở Kế hoạch và Đầu tư" in body
    assert "SO-KHDT-2021-000042" in body
    assert "invalid_plan" in body
    assert OUTCOME["message_vi"] in body
    assert OUTCOME["message_en"] in body
    for finding in OUTCOME["findings"]:
        assert f"{finding['pointer']}: {finding['message_vi']}" in body
        assert f"{finding['pointer']}: {finding['message_en']}" in body


def test_vietnamese_comes_first():
    _, body = rejection_text(Outcome.model_validate(OUTCOME), "Sở Kế hoạch và Đầu tư")
    assert body.index(OUTCOME["message_vi"]) < body.index(OUTCOME["message_en"])


def test_rejection_without_findings():
    outcome = {**OUTCOME, "code": "forbidden", "findings": None,
               "message_vi": "Đơn vị SO-TC không có quyền gửi sự kiện này: task.updated.",
               "message_en": "Unit SO-TC may not send this event: task.updated."}
    subject, body = rejection_text(Outcome.model_validate(outcome), "Sở Tài chính")
    assert "forbidden" in subject
    assert outcome["message_vi"] in body
    assert "/data/" not in body


def test_a_vietnamese_subject_survives_the_trip_through_smtp_headers():
    import email
    import email.policy
    from email.message import EmailMessage

    from services.notify.channels import MAIL_POLICY

    subject = "[nq-tracker] Nhắc việc ngày 15/03/2021: 1 nội dung cần xử lý — Sở Nông nghiệp và Phát triển nông thôn"
    mail = EmailMessage(policy=MAIL_POLICY)
    mail["Subject"] = subject
    mail.set_content("x")
    received = email.message_from_bytes(mail.as_bytes(), policy=email.policy.default)
    assert received["Subject"] == subject
