"""Pure decisions of the programs service: the programme's rules, with a machine
code and a message in Vietnamese and English. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.events import Envelope, PlanSubmitted, utc_iso

OFFICE = "VPTU"

# code -> (Vietnamese, English); `{}` placeholders are filled by `Rejection.of`.
MESSAGES: dict[str, tuple[str, str]] = {
    "invalid_plan": (
        "Kế hoạch không hợp lệ: mỗi nhiệm vụ phải nêu rõ tập thể, cá nhân chịu trách nhiệm, "
        "lộ trình và thời gian hoàn thành ({} nhiệm vụ chưa đạt).",
        "Invalid plan: every task must name the responsible collective and individual, "
        "a roadmap and a completion date ({} task(s) do not).",
    ),
    "forbidden": ("Đơn vị {} không có quyền gửi sự kiện này: {}.",
                  "Unit {} may not send this event: {}."),
    "unknown_programme": ("Chương trình {} không có trong sổ đăng ký.",
                          "Programme {} is not in the registry."),
    "unknown_unit": ("Đơn vị {} không có trong sổ đăng ký.", "Unit {} is not in the registry."),
    "unknown_task": ("Nhiệm vụ {} chưa có trong kế hoạch nào của chương trình {}.",
                     "Task {} is not in any plan of programme {}."),
    "superseded": ("Kế hoạch {} đã có bản sửa đổi mới hơn; bản này không được áp dụng.",
                   "Plan {} already has a later revision; this one is not applied."),
    "unknown_indicator": ("Chỉ tiêu {} không có trong sổ đăng ký.", "Indicator {} is not in the registry."),
    "unknown_cycle": ("Kỳ báo cáo {} không thuộc nhiệm kỳ: {}.", "Reporting cycle {} is not in the term: {}."),
    "task_cancelled": ("Nhiệm vụ {} đã bị hủy do kế hoạch sửa đổi không còn nhiệm vụ này.",
                       "Task {} was cancelled: a revision of its plan dropped it."),
    "invalid_event": ("Sự kiện không xử lý được ({}); hãy kiểm tra nội dung và gửi sự kiện đã sửa với mã mới.",
                      "The event cannot be processed ({}); check it and send a corrected one with a new id."),
}
# An outcome lists at most this many findings (and how many there were): it must fit in one Kafka record.
MAX_FINDINGS = 200
MAX_ARGUMENT = 200  # characters of a value quoted in a message

FINDINGS: dict[str, tuple[str, str]] = {
    "missing_roadmap": ("Nhiệm vụ chưa có lộ trình (ít nhất một mốc).",
                        "The task has no roadmap (at least one milestone)."),
    "unknown_lead_unit": ("Tập thể chịu trách nhiệm {} không có trong sổ đăng ký.",
                          "The responsible collective {} is not in the registry."),
    "unknown_coordinating_unit": ("Đơn vị phối hợp {} không có trong sổ đăng ký.",
                                  "Coordinating unit {} is not in the registry."),
    "milestone_after_due_date": ("Mốc '{}' ({}) sau thời gian hoàn thành nhiệm vụ ({}).",
                                 "Milestone '{}' ({}) falls after the task's completion date ({})."),
    "task_in_other_plan": ("Mã nhiệm vụ {} đã thuộc kế hoạch khác ({}).",
                           "Task id {} already belongs to another plan ({})."),
    "duplicate_task_id": ("Mã nhiệm vụ {} xuất hiện nhiều lần trong kế hoạch.",
                          "Task id {} appears more than once in the plan."),
}


@dataclass(frozen=True)
class Finding:
    pointer: str
    code: str
    message_vi: str
    message_en: str

    @classmethod
    def of(cls, pointer: str, code: str, *args: Any) -> "Finding":
        vi, en = FINDINGS[code]
        args = tuple(shortened(str(a), MAX_ARGUMENT) for a in args)
        return cls(pointer, code, vi.format(*args), en.format(*args))


@dataclass(frozen=True)
class Rejection:
    code: str
    message_vi: str
    message_en: str
    findings: tuple[Finding, ...] = field(default=())

    @classmethod
    def of(cls, code: str, *args: Any, findings: list[Finding] | tuple[Finding, ...] = ()) -> "Rejection":
        vi, en = MESSAGES[code]
        args = tuple(shortened(str(a), MAX_ARGUMENT if code != "invalid_event" else 500) for a in args)
        return cls(code, vi.format(*args), en.format(*args), tuple(findings))


def shortened(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def version_of(event: Envelope, *, event_time: str | None = None) -> str:
    """Order of events about the same thing: event time (`utc_iso` of it, when worked out
    already), then the event key as a tie-break."""
    return f"{event_time or utc_iso(event.time)}|{event.key}"


def check_plan(plan: PlanSubmitted, *, known_units: set[str], owners: dict[str, str],
               plan_key: str) -> list[Finding]:
    """Every task must name its collective and individual, a roadmap and a completion date.

    `owners` maps task ids that already exist to the plan holding them."""
    findings: list[Finding] = []
    seen: set[str] = set()
    for i, task in enumerate(plan.tasks):
        at = f"/data/tasks/{i}"
        if task.task_id in seen:
            findings.append(Finding.of(f"{at}/task_id", "duplicate_task_id", task.task_id))
        seen.add(task.task_id)
        owner = owners.get(task.task_id)
        if owner is not None and owner != plan_key:
            findings.append(Finding.of(f"{at}/task_id", "task_in_other_plan", task.task_id, owner))
        if task.lead_unit not in known_units:
            findings.append(Finding.of(f"{at}/lead_unit", "unknown_lead_unit", task.lead_unit))
        for j, unit in enumerate(task.coordinating_units):
            if unit not in known_units:
                findings.append(Finding.of(f"{at}/coordinating_units/{j}", "unknown_coordinating_unit", unit))
        if not task.milestones:
            findings.append(Finding.of(f"{at}/milestones", "missing_roadmap"))
        for j, milestone in enumerate(task.milestones):
            if milestone.due_date > task.due_date:
                findings.append(Finding.of(f"{at}/milestones/{j}/due_date", "milestone_after_due_date",
                                           milestone.title, milestone.due_date, task.due_date))
    return findings


def offending_tasks(findings: list[Finding]) -> int:
    return len({f.pointer.split("/")[3] for f in findings if f.pointer.startswith("/data/tasks/")})


def may_update_task(source: str, lead_unit: str) -> bool:
    """A task is updated by its lead unit, or by the Office."""
    return source in (lead_unit, OFFICE)


def check_task_update(source: str, task_id: str, programme: str, task: dict) -> Rejection | None:
    """Why a status report on an existing task may not be applied (None: it may).
    A task that does not exist yet is the caller's to decide (held, or unknown when expired)."""
    if task["programme"] != programme:
        return Rejection.of("unknown_task", task_id, programme)
    if not may_update_task(source, task["lead_unit"]):
        return Rejection.of("forbidden", source, f"task {task_id} is led by {task['lead_unit']}")
    if task.get("dropped"):
        return Rejection.of("task_cancelled", task_id)
    return None


SUPERVISING_KINDS = ("front", "organisation")


def may_supervise(unit: dict) -> bool:
    """Supervision and social criticism come from the Fatherland Front and the socio-political organisations."""
    return unit.get("kind") in SUPERVISING_KINDS
