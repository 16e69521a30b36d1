"""What to tell whom, and when: pure composition of notifications (Vietnamese
first) and the deadline scan. No I/O, no clock: the day is given."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta

from shared.records import Outcome, ReportDrafted, ReportDue, ReportGenerated

OFFICE = "VPTU"
OPEN = ("not_started", "in_progress", "blocked")


class NotYours(PermissionError):
    """A unit asked for another unit's notices."""


def person_in_charge(unit: str) -> str:
    """The recipient code of the person in charge a unit's registry entry names."""
    return f"{unit}:person"


def readable_recipients(*, caller: str, unit: str | None) -> list[str] | None:
    """Whose notices a caller may read: the Office every unit's (None: all of them, unless it
    asks for one unit), any other unit only its own and its person in charge's."""
    if caller == OFFICE:
        return [unit, person_in_charge(unit)] if unit else None
    if unit not in (None, caller):
        raise NotYours(f"the key of {caller} cannot read the notices of {unit}")
    return [caller, person_in_charge(caller)]


def identity(kind: str, subject: str, recipient: str, day: str) -> str:
    """A notification is what it is about: kind, subject, recipient and day."""
    return f"{kind}|{subject}|{recipient}|{day}"


def message_id(identity_: str) -> str:
    return f"<{hashlib.sha256(identity_.encode()).hexdigest()[:40]}@nq-tracker>"


def fmt(day: str | date) -> str:
    day = date.fromisoformat(day) if isinstance(day, str) else day
    return f"{day.day:02d}/{day.month:02d}/{day.year}"


@dataclass(frozen=True)
class Item:
    """One thing a recipient is reminded of in a day's digest."""

    identity: str
    kind: str            # task_due, task_overdue, escalation, report_reminder
    recipient: str       # unit code
    text: str            # one line, Vietnamese
    data: dict


def scan(*, today: date, tasks: list[dict], cycles: list[dict], reported: set[tuple[str, str]],
         reminder_days: list[int], escalate_after: int, report_reminder_days: int) -> list[Item]:
    """Everything due to be said on `today`. Identities are tied to the deadline, not to
    the day of the scan, so a reminder goes out once whichever day the scan first sees it."""
    items = []
    for task in tasks:
        if task.get("status") not in OPEN or task.get("dropped"):
            continue
        due = date.fromisoformat(task["due_date"])
        items += _task_items(task, due, today, sorted(reminder_days), escalate_after)
    for cycle in cycles:
        due = date.fromisoformat(cycle["due_date"])
        if not due - timedelta(days=report_reminder_days) <= today <= due:
            continue
        for unit in cycle["expected_units"]:
            if (unit, cycle["cycle"]) not in reported:
                items.append(Item(identity("report_reminder", cycle["cycle"], unit, cycle["due_date"]),
                                  "report_reminder", unit,
                                  f"Báo cáo kỳ {cycle['cycle']} đến hạn ngày {fmt(due)}; đơn vị chưa gửi báo cáo.",
                                  {"cycle": cycle["cycle"], "due_date": cycle["due_date"]}))
    return items


def _task_items(task: dict, due: date, today: date, reminder_days: list[int], escalate_after: int) -> list[Item]:
    unit, task_id = task["lead_unit"], task["task_id"]
    data = {"task_id": task_id, "programme": task["programme"], "due_date": task["due_date"],
            "lead_unit": unit, "lead_person": task.get("lead_person"), "status": task["status"]}
    line = f"Nhiệm vụ {task_id} \u201c{task['title']}\u201d (Chương trình {task['programme']}), hạn {fmt(due)}"
    if today < due:
        ahead = [d for d in reminder_days if due - timedelta(days=d) <= today]
        if not ahead:
            return []
        days = ahead[0]  # the nearest threshold reached; an earlier, larger one missed is not sent late
        return [Item(identity(f"task_due_{days}", task_id, unit, task["due_date"]), "task_due", unit,
                     f"{line}: còn {(due - today).days} ngày.", {**data, "days_left": (due - today).days})]
    if today == due:
        return []
    late = (today - due).days
    items = [Item(identity("task_overdue", task_id, unit, task["due_date"]), "task_overdue", unit,
                  f"{line}: đã quá hạn {late} ngày.", {**data, "days_overdue": late})]
    if late >= escalate_after:
        person = task.get("lead_person") or {}
        items.append(Item(identity("escalation", task_id, OFFICE, task["due_date"]), "escalation", OFFICE,
                          f"{line}, do {unit} chủ trì ({person.get('name', '?')}, {person.get('position', '?')}): "
                          f"quá hạn {late} ngày.", {**data, "days_overdue": late}))
    return items


DIGEST_HEADINGS = {
    "escalation": "Nhiệm vụ quá hạn kéo dài, đề nghị Văn phòng Thành ủy đôn đốc:",
    "task_overdue": "Nhiệm vụ đã quá hạn:",
    "task_due": "Nhiệm vụ sắp đến hạn:",
    "report_reminder": "Báo cáo định kỳ:",
}


def digests(items: list[Item]) -> dict[str, list[Item]]:
    """One digest per recipient: reminders to the same unit on the same day go together."""
    grouped: dict[str, list[Item]] = defaultdict(list)
    for item in sorted(items, key=lambda i: (i.recipient, list(DIGEST_HEADINGS).index(i.kind), i.identity)):
        grouped[item.recipient].append(item)
    return dict(grouped)


def digest_text(unit_name: str, day: date, items: list[dict]) -> tuple[str, str]:
    """Subject and body of a day's digest for one recipient."""
    subject = f"[nq-tracker] Nhắc việc ngày {fmt(day)}: {len(items)} nội dung cần xử lý"
    lines = [f"Kính gửi: {unit_name}", "", f"Tổng hợp nội dung cần xử lý ngày {fmt(day)}:"]
    for kind, heading in DIGEST_HEADINGS.items():
        chosen = [i for i in items if i["kind"] == kind]
        if chosen:
            lines += ["", heading] + [f"  - {i['text']}" for i in chosen]
    lines += ["", "nq-tracker — theo dõi thực hiện chương trình hành động"]
    return subject, "\n".join(lines)


def cycle_opened_text(unit_name: str, event: ReportDue) -> tuple[str, str]:
    subject = f"[nq-tracker] Kỳ báo cáo {event.cycle}: hạn gửi báo cáo {fmt(event.due_date)}"
    body = "\n".join([
        f"Kính gửi: {unit_name}", "",
        f"Kỳ báo cáo {event.cycle} (số liệu từ {fmt(event.window.start)} đến "
        f"{fmt(event.window.cut_off)}) đã đến thời điểm tổng hợp.",
        f"Đề nghị đơn vị gửi báo cáo (sự kiện unit-report.submitted, cycle = {event.cycle}) "
        f"chậm nhất ngày {fmt(event.due_date)}.", "",
        "nq-tracker — theo dõi thực hiện chương trình hành động"])
    return subject, body


def report_generated_text(recipient_name: str, event: ReportGenerated) -> tuple[str, str]:
    subject = f"[nq-tracker] {event.number}: {event.summary}"
    links = [f"  - {fmt_.upper()}: {url}" for fmt_, url in event.formats.items()]
    body = "\n".join([f"Kính gửi: {recipient_name}", "",
                      f"Văn phòng Thành ủy trân trọng gửi Báo cáo {event.number} — {event.summary}.",
                      "Bản PDF gửi kèm thư này; các định dạng khác:", *links, "",
                      "nq-tracker — theo dõi thực hiện chương trình hành động"])
    return subject, body


def report_drafted_text(recipient_name: str, event: ReportDrafted) -> tuple[str, str]:
    """The Office is told that a report's draft awaits its sign-off (`nqt reports approve`)."""
    subject = f"[nq-tracker] Dự thảo báo cáo {event.cycle} chờ ký duyệt: {event.summary}"
    links = [f"  - {fmt_.upper()}: {url}" for fmt_, url in event.formats.items()]
    again = [f"Dự thảo lần {event.revision}, đã tiếp thu ý kiến: {event.comment}"] if event.comment else []
    body = "\n".join([f"Kính gửi: {recipient_name}", "",
                      f"Dự thảo Báo cáo {event.summary} (chưa có số) đã được tổng hợp, đề nghị xem xét, ký duyệt "
                      f"hoặc trả lại kèm ý kiến.", *again, "Dự thảo theo các định dạng:", *links, "",
                      "nq-tracker — theo dõi thực hiện chương trình hành động"])
    return subject, body


def rejection_text(outcome: Outcome, unit_name: str) -> tuple[str, str]:
    """Subject and body of the notice that an event was rejected."""
    subject = (f"[nq-tracker] Sự kiện bị từ chối / Event rejected: {outcome.type} "
               f"{outcome.id} ({outcome.code})")
    lines = [
        f"Kính gửi: {unit_name}",
        "",
        f"Sự kiện {outcome.type} mã {outcome.id} (thời điểm {outcome.event_time}) "
        f"đã bị từ chối, không được ghi nhận.",
        f"Lý do ({outcome.code}): {outcome.message_vi}",
    ]
    findings = outcome.findings or []
    if findings:
        lines += ["", "Chi tiết:"] + [f"  - {f.pointer}: {f.message_vi}" for f in findings]
    lines += ["", "Đề nghị đơn vị sửa và gửi lại.", "", "---", "",
              f"Event {outcome.type} {outcome.id} was rejected and not recorded.",
              f"Reason ({outcome.code}): {outcome.message_en}"]
    if findings:
        lines += [f"  - {f.pointer}: {f.message_en}" for f in findings]
    lines += ["", "nq-tracker — theo dõi thực hiện chương trình hành động"]
    return subject, "\n".join(lines)
