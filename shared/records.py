"""The records the services send each other (not the contract's inbound events): the
changes and outcomes programs publishes, the cycles and reports the reports service
announces. Each change says what it is about by its `kind`; every consumer looks a kind
up in a table of handlers and refuses (dead-letters, with the reason) a kind it has no
handler for, so a new kind cannot slip past a service unnoticed.

The models check what consumers compute with (codes, dates, numbers, statuses) and keep
every other field as it came, so a producer may add fields without breaking a consumer.
One `read_*` function per topic turns a record's bytes into its model, or raises
`consumer.Poison` naming every field that is wrong: one malformed record is dead-lettered
at the door and can never make a report or a notice fail for everyone."""

from __future__ import annotations

import math
from datetime import date
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError,
                      ValidationInfo, field_validator, model_validator)

from shared import kafka
from shared.consumer import Poison
from shared.events import CYCLE, PERIOD

# --- change kinds (`programs.changes`, field `kind`) ---
UNIT = "unit"                      # registry: a unit
PROGRAMME = "programme"            # registry: a programme
INDICATOR = "indicator"            # registry: an indicator
SETTINGS = "settings"              # registry: the header (term, issuer, reporting)
PLAN = "plan"                      # a plan submitted (or rejected)
TASK = "task"                      # a task's state (with the status report that changed it)
PROGRAMME_ISSUED = "programme_issued"
INDICATOR_VALUE = "indicator_value"
UNIT_REPORT = "unit_report"
SUPERVISION = "supervision"

REGISTRY_KINDS = (UNIT, PROGRAMME, INDICATOR, SETTINGS)
CHANGE_KINDS = (*REGISTRY_KINDS, PLAN, TASK, PROGRAMME_ISSUED, INDICATOR_VALUE, UNIT_REPORT, SUPERVISION)

# --- outcomes (`programs.outcomes`, field `outcome`) ---
APPLIED, REJECTED, DUPLICATE = "applied", "rejected", "duplicate"
OUTCOMES = (APPLIED, REJECTED, DUPLICATE)

# --- field types ---
Text = Annotated[str, StringConstraints(max_length=20_000)]
Code = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Key = Annotated[str, StringConstraints(min_length=1, max_length=600)]
Url = Annotated[str, StringConstraints(min_length=1, max_length=2_000)]
CycleCode = Annotated[str, StringConstraints(pattern=CYCLE)]
# Fixed-width UTC text (`shared.events.utc_iso`): it sorts in time order.
UtcText = Annotated[str, StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")]


def iso_date(value: str) -> str:
    date.fromisoformat(value)  # a ValueError names what is wrong
    if len(value) != 10:
        raise ValueError("a date is written YYYY-MM-DD")
    return value


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


IsoDate = Annotated[str, AfterValidator(iso_date)]
Progress = Annotated[float, Field(ge=0, le=100)]
Finite = Annotated[float, AfterValidator(_finite)]
Status = Literal["not_started", "in_progress", "completed", "blocked", "cancelled"]


class Lenient(BaseModel):
    """Only the fields consumers compute with are checked; the rest is kept as it came."""
    model_config = ConfigDict(extra="allow", strict=False)


# --- the state a change carries, by kind ---
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
    status: Status
    progress: Progress
    as_of: IsoDate | None = None
    dropped: bool = False


class TaskFact(Lenient):
    status: Status
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


class IndicatorValueState(Lenient):
    indicator: Code
    period: Annotated[str, StringConstraints(pattern=PERIOD)]
    value: Finite


class UnitReportState(Lenient):
    unit: Code
    cycle: Code
    time: UtcText
    document_no: Text | None = None


class SupervisionState(Lenient):
    programme: Code
    kind: Code
    source: Code
    finding: Text
    time: UtcText


class RegisteredState(Lenient):
    code: Code
    name: Text | None = None


class ProgrammeState(RegisteredState):
    title: Text
    issue_by: IsoDate | None = None


class IndicatorState(RegisteredState):
    name: Text
    direction: Literal["increase", "decrease"]
    targets: dict[str, Finite | None] = {}


class SettingsState(RegisteredState):
    term: dict[Literal["start", "end"], IsoDate] | None = None


STATES: dict[str, type[Lenient]] = {
    TASK: TaskState, PLAN: PlanState, PROGRAMME_ISSUED: IssuedState, INDICATOR_VALUE: IndicatorValueState,
    UNIT_REPORT: UnitReportState, SUPERVISION: SupervisionState, UNIT: RegisteredState, PROGRAMME: ProgrammeState,
    INDICATOR: IndicatorState, SETTINGS: SettingsState,
}


class Change(Lenient):
    """A `programs.changes` record: the new state of what `kind` and `id` name. A kind no model
    is known for keeps its state unchecked: each consumer's table of kinds decides about it."""
    kind: Code
    id: Key
    programme: Code | None = None
    seq: Annotated[int, Field(ge=0, le=2**62)] = 0
    state: dict[str, Any]
    event_key: Key
    version: Annotated[str, StringConstraints(min_length=1, max_length=700)]
    event_time: UtcText
    accepted_at: UtcText
    fact: dict[str, Any] | None = None

    @field_validator("state")
    @classmethod
    def _state_of_its_kind(cls, state: dict, info: ValidationInfo) -> dict:
        model = STATES.get(info.data.get("kind"))
        return model.model_validate(state).model_dump() if model else state

    @field_validator("fact")
    @classmethod
    def _fact_of_a_task(cls, fact: dict | None, info: ValidationInfo) -> dict | None:
        return TaskFact.model_validate(fact).model_dump() if fact is not None and info.data.get("kind") == TASK \
            else fact

    @model_validator(mode="after")
    def _task_has_its_seq(self) -> "Change":
        # Task states are ordered by `seq`: without one, an older state could overwrite a newer.
        if self.kind == TASK and "seq" not in self.model_fields_set:
            raise ValueError("a task change without its seq")
        return self


# --- outcomes ---
class Finding(Lenient):
    pointer: Text
    message_vi: Text
    message_en: Text


class Outcome(Lenient):
    """A `programs.outcomes` record: how the event `event_key` was decided (a rejection says why)."""
    outcome: Literal[OUTCOMES]
    event_key: Key
    source: Code
    id: Key
    type: Code
    event_time: Text
    decided_at: UtcText
    code: Code | None = None
    message_vi: Text | None = None
    message_en: Text | None = None
    findings: list[Finding] | None = None

    @model_validator(mode="after")
    def _rejection_says_why(self) -> "Outcome":
        if self.outcome == REJECTED and None in (self.code, self.message_vi, self.message_en):
            raise ValueError("a rejected outcome without its code, message_vi and message_en")
        return self


# --- what the reports service announces ---
class Window(Lenient):
    start: IsoDate
    cut_off: IsoDate


class ReportDue(Lenient):
    """A `reports.due` record: a cycle opened; the units it expects report by `due_date`."""
    cycle: CycleCode
    window: Window
    due_date: IsoDate
    expected_units: Annotated[list[Code], Field(max_length=10_000)]


# --- types of `reports.generated` records (field `type`; a record without one was issued) ---
GENERATED, DRAFTED = "report.generated", "report.drafted"


class ReportDrafted(Lenient):
    """A `reports.generated` record of type `report.drafted`: the draft (no number) of `cycle`'s
    report awaits the Office's sign-off; `id` names the draft, one per `revision`."""
    type: Literal["report.drafted"]
    id: Key
    cycle: CycleCode
    revision: Annotated[int, Field(ge=1, le=10_000)]
    drafted_on: IsoDate
    summary: Text
    formats: dict[Code, Url]
    comment: Text | None = None  # what the draft before this one was sent back with


class ReportGenerated(Lenient):
    """A `reports.generated` record: the report of `cycle` was issued, in these formats (a PDF at least)."""
    cycle: CycleCode
    number: Text
    summary: Text
    formats: dict[Code, Url]

    @field_validator("formats")
    @classmethod
    def _has_a_pdf(cls, formats: dict[str, str]) -> dict[str, str]:
        if "pdf" not in formats:
            raise ValueError("no pdf among the formats")
        return formats


# --- reading a topic ---
Model = TypeVar("Model", bound=Lenient)


def reason(err: ValidationError) -> str:
    """Every wrong field of a record, `path: message`, in one line (bounded, as dead-letter headers are)."""
    def one(error) -> str:
        message = error["msg"].removeprefix("Value error, ")  # pydantic's prefix to a validator's own words
        return f"{'/'.join(map(str, error['loc']))}: {message}" if error["loc"] else message
    return "; ".join(one(e) for e in err.errors(include_url=False))[:2000]


def _read(model: type[Model], value: bytes) -> Model:
    return _validated(model, kafka.record(value))


def _validated(model: type[Model], record: dict) -> Model:
    try:
        return model.model_validate(record)
    except ValidationError as err:
        raise Poison(reason(err)) from err


def read_change(value: bytes) -> Change:
    """A `programs.changes` record; Poison, naming every field that is wrong, otherwise."""
    return _read(Change, value)


def read_outcome(value: bytes) -> Outcome:
    """A `programs.outcomes` record; Poison, naming every field that is wrong, otherwise."""
    return _read(Outcome, value)


def read_due(value: bytes) -> ReportDue:
    """A `reports.due` record; Poison, naming every field that is wrong, otherwise."""
    return _read(ReportDue, value)


def read_generated(value: bytes) -> ReportGenerated | ReportDrafted:
    """A `reports.generated` record, issued or (`type` report.drafted) a draft; Poison, naming every
    field that is wrong, otherwise."""
    record = kafka.record(value)
    return _validated(ReportDrafted if record.get("type") == DRAFTED else ReportGenerated, record)
