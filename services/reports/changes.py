"""The `programs.changes` records as the reports service reads them: what each kind must
carry, with the types the roll-up and the reports compute with (`shared.records`). A record
that does not fit is refused at the door (`consumer.Poison`: dead-lettered with the reason),
so that one malformed change can never make the live status or a report fail for everyone.

Nearly every change is a task's, and validating one with the models costs some 70 us: a
task change whose every checked field is plainly right (exact types, in bounds) is taken
as it is, with the defaults the models add; anything else, however slightly off, goes to
the models, which decide and name what is wrong. So the quick path never accepts what the
models refuse, and gives what they give (`tests/unit/test_reports_changes.py`)."""

from __future__ import annotations

import re
from typing import get_args

from shared import kafka, records

UTC_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z", re.ASCII)
STATUSES = frozenset(get_args(records.Status))
TEXT, CODE, KEY = 20_000, 128, 600


def read(value: bytes) -> dict:
    """A change that reports can apply; Poison, naming every field that is wrong, otherwise."""
    quick = _plain_task_change(kafka.record(value))
    return quick if quick is not None else records.read_change(value).model_dump()


def _text(value, longest: int, shortest: int = 0) -> bool:
    return type(value) is str and shortest <= len(value) <= longest


def _date(value) -> bool:
    if type(value) is not str or len(value) != 10:
        return False
    try:
        records.iso_date(value)
    except ValueError:
        return False
    return True


def _progress(value) -> bool:
    return type(value) is float and 0 <= value <= 100


def _plain_task_change(change: dict) -> dict | None:
    """The change as the models would give it, if it is a task's and plainly right; else None."""
    if change.get("kind") != records.TASK or not (
            _text(change.get("id"), KEY, 1) and _text(change.get("event_key"), KEY, 1)
            and _text(change.get("version"), 700, 1) and type(change.get("seq")) is int and 0 <= change["seq"] <= 2**62
            and all(type(change.get(k)) is str and UTC_TEXT.fullmatch(change[k]) for k in ("event_time", "accepted_at"))
            and (change.get("programme") is None or _text(change["programme"], CODE, 1))):
        return None
    state, fact = _plain_state(change.get("state")), change.get("fact")
    if state is None or not (fact is None or (type(fact) is dict and type(fact.get("status")) is str
                                              and fact["status"] in STATUSES and _progress(fact.get("progress")))):
        return None
    return {**change, "programme": change.get("programme"), "state": state, "fact": fact}


def _plain_state(state) -> dict | None:
    if type(state) is not dict:
        return None
    person = state.get("lead_person")
    if not (_text(state.get("programme"), CODE, 1) and _text(state.get("lead_unit"), CODE, 1)
            and _text(state.get("title"), TEXT) and _date(state.get("due_date"))
            and type(state.get("status")) is str and state["status"] in STATUSES and _progress(state.get("progress"))
            and (state.get("as_of") is None or _date(state["as_of"]))
            and type(state.get("dropped", False)) is bool
            and (person is None or (type(person) is dict and _text(person.get("name"), TEXT)
                                    and _text(person.get("position"), TEXT)))):
        return None
    return {**state, "lead_person": person, "as_of": state.get("as_of"), "dropped": state.get("dropped", False)}
