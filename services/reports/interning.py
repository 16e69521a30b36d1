"""Task states as reports keeps them in memory: what many tasks say alike held once."""

from __future__ import annotations

import sys

# What many tasks say alike (codes, statuses, dates, names, milestone titles): held once in memory.
# Each task arrives decoded on its own, with its own copy of every value: 49 MB for a whole term's
# 20,000 tasks, 33 MB with these held once (the lead person's dict shared: no one changes it).
SHARED = ("programme", "plan", "lead_unit", "status", "due_date", "as_of")


def _shared(value):
    return sys.intern(value) if type(value) is str else value


def compact(task: dict, people: dict[tuple, dict], like: dict | None = None) -> dict:
    """`task`, its repeated values replaced in place by the one copy of each (equal, so unseen).
    `like` is the task's state before, held once already: what it says alike (nearly everything
    but the status and progress) is taken from it whole, without going through each value."""
    like = like or {}
    for key in SHARED:
        if key in task:
            task[key] = like[key] if _same(task, like, key) else _shared(task[key])
    person = task.get("lead_person")
    if _same(task, like, "lead_person"):
        task["lead_person"] = like["lead_person"]
    elif type(person) is dict:
        key = tuple((k, _shared(v)) for k, v in person.items())
        task["lead_person"] = people.setdefault(key, person) if all(type(v) is str for _, v in key) else person
    if _same(task, like, "milestones"):
        task["milestones"] = like["milestones"]
    else:
        for milestone in task.get("milestones") or ():
            if type(milestone) is dict:
                for k, v in list(milestone.items()):
                    milestone[k] = _shared(v)
    if _same(task, like, "coordinating_units"):
        task["coordinating_units"] = like["coordinating_units"]
    elif type(task.get("coordinating_units")) is list:
        task["coordinating_units"] = [_shared(unit) for unit in task["coordinating_units"]]
    return task


def _same(task: dict, like: dict, key: str) -> bool:
    return key in task and key in like and like[key] == task[key]
