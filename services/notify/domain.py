"""What to tell whom: pure composition of notifications (Vietnamese first)."""

from __future__ import annotations

import hashlib


def identity(kind: str, subject: str, recipient: str, day: str) -> str:
    return f"{kind}|{subject}|{recipient}|{day}"


def message_id(identity_: str) -> str:
    return f"<{hashlib.sha256(identity_.encode()).hexdigest()[:40]}@nq-tracker>"


def rejection_text(outcome: dict, unit_name: str) -> tuple[str, str]:
    """Subject and body of the notice that an event was rejected."""
    subject = (f"[nq-tracker] Sự kiện bị từ chối / Event rejected: {outcome['type']} "
               f"{outcome['id']} ({outcome['code']})")
    lines = [
        f"Kính gửi: {unit_name}",
        "",
        f"Sự kiện {outcome['type']} mã {outcome['id']} (thời điểm {outcome['event_time']}) "
        f"đã bị từ chối, không được ghi nhận.",
        f"Lý do ({outcome['code']}): {outcome['message_vi']}",
    ]
    findings = outcome.get("findings") or []
    if findings:
        lines += ["", "Chi tiết:"] + [f"  - {f['pointer']}: {f['message_vi']}" for f in findings]
    lines += ["", "Đề nghị đơn vị sửa và gửi lại.", "", "---", "",
              f"Event {outcome['type']} {outcome['id']} was rejected and not recorded.",
              f"Reason ({outcome['code']}): {outcome['message_en']}"]
    if findings:
        lines += [f"  - {f['pointer']}: {f['message_en']}" for f in findings]
    lines += ["", "nq-tracker — theo dõi thực hiện chương trình hành động"]
    return subject, "\n".join(lines)
