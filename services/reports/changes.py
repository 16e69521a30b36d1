"""The `programs.changes` records as the reports service reads them: what each kind must
carry, with the types the roll-up and the reports compute with. A record that does not
fit is refused at the door (`consumer.Poison`: dead-lettered with the reason), so that one
malformed change can never make the live status or a report fail for everyone."""

from __future__ import annotations

import math
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from shared import consumer, kafka
from shared.events import PERIOD

Text = Annotated[str, StringConstraints(max_length=20_000)]
Code = Annotated[str, StringConstraints(min_length=1, max_length=128)]
# Fixed-width UTC text (`shared.events.utc_iso`): it sorts in time order.
UtcText = Annotated[str, StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")]


def _iso_date(value: str) -> str:
    date.fromisoformat(value)  # a ValueError names what is wrong
    if len(value) != 10:
        raise ValueError("a date is written YYYY-MM-DD")
    return value


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


IsoDate = Annotated[str, AfterValidator(_iso_date)]
Progress = Annotated[float, Field(ge=0, le=100)]
Finite = Annotated[float, AfterValidator(_finite)]


class Lenient(BaseModel):
    """Only the fields reports computes with are checked; the rest is kept as it came."""
    model_config = ConfigDict(extra="allow", strict=False)


class Person(Lenient):
    name: Text
    position: Text


class RoadmapTask(Lenient):
    task_id: Code
    title: Text
    lead_unit: Code
    lead_person: Person | None = None
    due_date: IsoDate


class TaskState(Lenient):
    programme: Code
    lead_unit: Code
    title: Text
    lead_person: Person | None = None
    due_date: IsoDate
    status: Literal["not_started", "in_progress", "completed", "blocked", "cancelled"]
    progress: Progress
    as_of: IsoDate | None = None
    dropped: bool = False


class TaskFact(Lenient):
    status: Literal["not_started", "in_progress", "completed", "blocked", "cancelled"]
    progress: Progress


class PlanState(Lenient):
    status: Literal["submitted", "rejected"]
    tasks: list[RoadmapTask] = []


class SteeringCommittee(Lenient):
    established_on: IsoDate | None = None


class IssuedState(Lenient):
    programme: Code
    issued_on: IsoDate
    steering_committee: SteeringCommittee | None = None


class IndicatorValue(Lenient):
    indicator: Code
    period: Annotated[str, StringConstraints(pattern=PERIOD)]
    value: Finite


class UnitReport(Lenient):
    unit: Code
    cycle: Code
    time: UtcText
    document_no: Text | None = None


class Supervision(Lenient):
    programme: Code
    kind: Code
    source: Code
    finding: Text
    time: UtcText


class Registered(Lenient):
    code: Code
    name: Text | None = None


class Programme(Registered):
    title: Text
    issue_by: IsoDate | None = None


class Indicator(Registered):
    name: Text
    direction: Literal["increase", "decrease"]
    targets: dict[str, Finite | None] = {}


class Settings(Registered):
    term: dict[Literal["start", "end"], IsoDate] | None = None


STATES: dict[str, type[Lenient]] = {
    "task": TaskState, "plan": PlanState, "programme_issued": IssuedState, "indicator_value": IndicatorValue,
    "unit_report": UnitReport, "supervision": Supervision, "unit": Registered, "programme": Programme,
    "indicator": Indicator, "settings": Settings,
}


class Change(Lenient):
    kind: Code
    id: Annotated[str, StringConstraints(min_length=1, max_length=600)]
    programme: Code | None = None
    seq: Annotated[int, Field(ge=0, le=2**62)] = 0
    state: dict[str, Any]
    event_key: Annotated[str, StringConstraints(min_length=1, max_length=600)]
    version: Annotated[str, StringConstraints(min_length=1, max_length=700)]
    event_time: UtcText
    accepted_at: UtcText
    fact: dict[str, Any] | None = None


def read(value: bytes) -> dict:
    """A change that reports can apply; Poison, naming every field that is wrong, otherwise."""
    raw = kafka.record(value)
    try:
        change = Change.model_validate(raw)
        if change.kind == "task" and "seq" not in raw:
            raise consumer.Poison("a task change without its seq")
        state = STATES[change.kind].model_validate(change.state) if change.kind in STATES else None
        fact = TaskFact.model_validate(change.fact) if change.kind == "task" and change.fact is not None else None
    except ValidationError as err:
        raise consumer.Poison("; ".join(f"{'/'.join(map(str, e['loc']))}: {e['msg']}"
                                     for e in err.errors(include_url=False))[:2000]) from err
    body = change.model_dump()
    if state is not None:
        body["state"] = state.model_dump()
    if fact is not None:
        body["fact"] = fact.model_dump()
    return body
