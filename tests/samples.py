"""Realistic events for tests and the demo, built like a departmental system would."""

from __future__ import annotations

from typing import Any


def envelope(source: str, event_id: str, event_type: str, data: dict, time: str = "2021-02-10T09:00:00+07:00") -> dict:
    return {"specversion": "1.0", "id": event_id, "source": source, "type": event_type, "time": time,
            "datacontenttype": "application/json", "data": data}


def task(task_id: str, *, lead_unit: str, due: str = "2021-06-30", milestones: int = 1, **extra: Any) -> dict:
    return {"task_id": task_id, "title": f"Nhiệm vụ {task_id}", "lead_unit": lead_unit,
            "lead_person": {"name": "Nguyễn Văn An", "position": "Phó Giám đốc"}, "due_date": due,
            "milestones": [{"title": f"Mốc {i + 1}", "due_date": due} for i in range(milestones)],
            **extra}


def plan(source: str, event_id: str, plan_id: str, programme: str, tasks: list[dict],
         time: str = "2021-02-10T09:00:00+07:00") -> dict:
    return envelope(source, event_id, "plan.submitted", {
        "plan_id": plan_id, "programme": programme, "title": f"Kế hoạch thực hiện Chương trình {programme}",
        "document_no": f"{plan_id}/KH", "issued_on": time[:10], "tasks": tasks}, time)


def task_update(source: str, event_id: str, task_id: str, programme: str, status: str, progress: float,
                time: str = "2021-03-20T08:30:00+07:00") -> dict:
    return envelope(source, event_id, "task.updated", {
        "task_id": task_id, "programme": programme, "status": status, "progress": progress,
        "as_of": time[:10], "reported_by": {"name": "Trần Thị Bình", "position": "Chuyên viên"}}, time)


def registry_unit(code: str, name: str, kind: str = "department", email: str | None = None) -> dict:
    return {"code": code, "name": name, "kind": kind, "parent": None,
            "email": email or f"{code.lower()}@hanoi.example"}


def registry_programme(code: str, title: str = "Chương trình thử nghiệm", lead_unit: str = "UBND") -> dict:
    return {"code": code, "title": title, "lead_unit": lead_unit,
            "period": {"start": "2021-01-01", "end": "2025-12-31"}}
