"""The event contract in code: the CloudEvents envelope and a typed model for the
`data` of every inbound event type (contract sections 1-2), plus the registry
events an operator publishes with `nqt registry load`.

Inbound models are frozen and forbid unknown fields, so a typo in a field name is
an error that names the field instead of a value silently ignored. Every string,
list and number is bounded, and so are the CloudEvents extension attributes (small
scalars: nothing too deep to serialise); ingest also bounds one event's serialised
size, so that its record stays well within what Kafka carries."""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BeforeValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)

UNIT_CODE = r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)*$"
PROGRAMME_CODE = r"^(0[1-9]|10)$"
INDICATOR_CODE = r"^[A-Z]+-[0-9]{2,3}$"
PERIOD = r"^[0-9]{4}(-H[12]|-Q[1-4])?$"
CYCLE = r"^[0-9]{4}(-Q[1-4]|-H[12]|-[0-9]{4})?$"
EXTENSION_NAME = re.compile(r"^[a-z0-9]{1,20}$")
MAX_EXTENSIONS = 20
MAX_EXTENSION_TEXT = 1024
INT32 = (-2**31, 2**31 - 1)  # a CloudEvents Integer
MAX_MAGNITUDE = 1e15  # of any number: far beyond any indicator, and exact as a double

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20000)]
Ident = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")]
UnitCode = Annotated[str, StringConstraints(max_length=32, pattern=UNIT_CODE)]
ProgrammeCode = Annotated[str, StringConstraints(pattern=PROGRAMME_CODE)]
IndicatorCode = Annotated[str, StringConstraints(pattern=INDICATOR_CODE)]
TaskStatus = Literal["not_started", "in_progress", "completed", "blocked", "cancelled"]
Email = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=254)]
Url = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2048)]
Key = Annotated[str, StringConstraints(min_length=1, max_length=64)]  # of a small map in the registry
Finite = Annotated[float, Field(ge=-MAX_MAGNITUDE, le=MAX_MAGNITUDE, allow_inf_nan=False)]


def _rfc3339_string(value: Any) -> Any:
    if not isinstance(value, (str, datetime)):
        raise ValueError("must be an RFC 3339 date-time string with an offset, e.g. 2021-03-20T08:30:00+07:00")
    return value


def _utc_representable(value: datetime) -> datetime:
    # 0001-01-01T00:00:00+07:00 parses, but has no UTC time: every later comparison would crash.
    try:
        value.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError("must lie between the years 0001 and 9999 in UTC") from None
    return value


EventTime = Annotated[AwareDatetime, BeforeValidator(_rfc3339_string), AfterValidator(_utc_representable)]


class Inbound(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class Person(Inbound):
    name: Text
    position: Text


class SteeringCommittee(Inbound):
    decision_no: Text
    established_on: date
    head: Person


class ProgrammeIssued(Inbound):
    programme: ProgrammeCode
    document_no: Text
    issued_on: date
    steering_committee: SteeringCommittee | None = None


class Milestone(Inbound):
    title: Text
    due_date: date


class PlanTask(Inbound):
    task_id: Ident
    title: Text
    lead_unit: UnitCode
    lead_person: Person
    coordinating_units: list[UnitCode] = Field([], max_length=50)
    due_date: date
    # May be empty at this level: an empty roadmap is a rule of the programme
    # (`invalid_plan`, one finding per task), decided by the programs service.
    milestones: list[Milestone] = Field(max_length=50)
    tags: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] = Field([], max_length=20)


class PlanSubmitted(Inbound):
    plan_id: Ident
    programme: ProgrammeCode
    title: Text
    document_no: Text
    issued_on: date
    tasks: list[PlanTask] = Field(min_length=1, max_length=1000)


class TaskUpdated(Inbound):
    task_id: Ident
    programme: ProgrammeCode
    status: TaskStatus
    progress: Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]
    as_of: date
    note: LongText | None = None
    reported_by: Person


class IndicatorReported(Inbound):
    indicator: IndicatorCode
    period: Annotated[str, StringConstraints(pattern=PERIOD)]
    value: Finite
    note: LongText | None = None


class UnitReportSubmitted(Inbound):
    cycle: Annotated[str, StringConstraints(pattern=CYCLE)]
    document_no: Text
    summary: LongText
    achievements: LongText | None = None
    shortcomings: LongText | None = None
    proposals: LongText | None = None


class SupervisionRecorded(Inbound):
    programme: ProgrammeCode
    kind: Literal["giam_sat", "phan_bien"]
    finding: LongText
    recommendation: LongText | None = None
    task_id: Ident | None = None
    unit: UnitCode | None = None


# --- registry (reference data), published by the Office with `nqt registry load` ---

class PersonInCharge(Inbound):
    """Whom escalations about a unit also reach."""

    name: Text
    position: Text
    email: Email | None = None


class RegistryUnit(Inbound):
    code: UnitCode
    name: Text
    kind: Text
    parent: UnitCode | None = None
    email: Email | None = None
    webhook: Url | None = None
    # unset: every channel it has an address for
    channels: list[Literal["email", "webhook"]] | None = Field(None, max_length=2)
    person_in_charge: PersonInCharge | None = None


class RegistryProgramme(Inbound):
    code: ProgrammeCode
    title: Text
    lead_unit: UnitCode
    period: dict[Literal["start", "end"], date]
    issue_by: date | None = None


class Baseline(Inbound):
    year: int = Field(ge=1900, le=2100)
    value: Finite | None = None


class RegistryIndicator(Inbound):
    code: IndicatorCode
    group: int = Field(ge=1, le=4)
    name: Text
    measure: Text
    direction: Literal["increase", "decrease"]
    baseline: Baseline
    targets: dict[Literal["2025", "2030", "2045"], Finite | None]
    responsible_unit: UnitCode
    sample: bool = False


class Reporting(Inbound):
    # "default": every department, every district, HDND, UBND and MTTQ (contract section 5).
    expected_units: Literal["default"] | Annotated[list[UnitCode], Field(max_length=1000)] = "default"
    due_working_days: int = Field(2, ge=0, le=30)
    recipients: list[UnitCode] = Field(min_length=1, max_length=100)


class RegistrySettings(Inbound):
    """The registry file's header: what is tracked, the term, the issuer, reporting."""

    code: Literal["settings"] = "settings"
    name: Text
    title: Text
    term: dict[Literal["start", "end"], date]
    issuer: dict[Key, Text] = Field(max_length=20)
    indicator_groups: dict[Key, Text] = Field({}, max_length=20)
    reporting: Reporting


DATA_MODELS: dict[str, type[Inbound]] = {
    "programme.issued": ProgrammeIssued,
    "plan.submitted": PlanSubmitted,
    "task.updated": TaskUpdated,
    "indicator.reported": IndicatorReported,
    "unit-report.submitted": UnitReportSubmitted,
    "supervision.recorded": SupervisionRecorded,
    "registry.unit": RegistryUnit,
    "registry.programme": RegistryProgramme,
    "registry.indicator": RegistryIndicator,
    "registry.settings": RegistrySettings,
}
EVENT_TYPES = tuple(DATA_MODELS)
INBOUND_TYPES = tuple(t for t in DATA_MODELS if not t.startswith("registry."))


class Envelope(BaseModel):
    """A CloudEvents 1.0 event in structured JSON mode. Extension attributes are kept."""

    model_config = ConfigDict(frozen=True, extra="allow")

    specversion: Literal["1.0"]
    id: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    source: UnitCode
    type: Annotated[str, StringConstraints(max_length=64)]
    time: EventTime
    datacontenttype: Literal["application/json"] = "application/json"
    subject: Annotated[str, StringConstraints(max_length=1024)] | None = None
    dataschema: Url | None = None
    data: Any

    @property
    def key(self) -> str:
        """The idempotency key: the same (source, id) sent twice has one effect."""
        return f"{self.source}:{self.id}"


def _typed_envelope(event_type: str, model: type[Inbound]) -> type[Envelope]:
    return type(
        model.__name__ + "Event",
        (Envelope,),
        {"__annotations__": {"type": Literal[event_type], "data": model}},  # type: ignore[valid-type]
    )


EVENT_MODELS = {t: _typed_envelope(t, m) for t, m in DATA_MODELS.items()}
_EVENT = TypeAdapter(Annotated[Union[tuple(EVENT_MODELS.values())], Field(discriminator="type")])


class Problem(BaseModel):
    """One thing wrong with an input, with a JSON pointer to it (RFC 6901)."""

    pointer: str
    message: str
    code: str


class InvalidEvent(ValueError):
    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(f"{p.pointer}: {p.message}" for p in problems))


def _pointer(loc: tuple[Any, ...]) -> str:
    parts = [str(part).replace("~", "~0").replace("/", "~1") for part in loc]
    return "/" + "/".join(parts) if parts else ""


def parse_event(raw: Any, *, allowed_types: tuple[str, ...] | None = None) -> Envelope:
    """Validate a decoded JSON value as an event of a known type; raise InvalidEvent naming every bad field."""
    if not isinstance(raw, dict):
        raise InvalidEvent([Problem(pointer="", code="type", message="an event must be a JSON object")])
    known = allowed_types or EVENT_TYPES
    event_type = raw.get("type")
    if event_type not in known:
        return _raise_unknown_type(raw, event_type, known)
    problems = _extension_problems(raw)
    try:
        event = _EVENT.validate_python(raw)
    except ValidationError as err:
        for e in err.errors(include_url=False):
            loc = e["loc"][1:] if e["loc"] and e["loc"][0] == event_type else e["loc"]
            problems.append(Problem(pointer=_pointer(loc), code=e["type"], message=e["msg"]))
    if problems:
        raise InvalidEvent(problems)
    return event


# The envelope's own attributes: `Envelope.model_fields` is a class property that builds a
# deprecation check on every read, a tenth of reading a record.
_ENVELOPE_FIELDS = frozenset(Envelope.model_fields)


def _extension_problems(raw: dict) -> list[Problem]:
    """CloudEvents extension attributes: well named, scalar, small and few, so that none can
    make the accepted record too large to publish (or too deep to serialise)."""
    if raw.keys() <= _ENVELOPE_FIELDS:  # most events have none: a set test, not a loop per attribute
        return []
    problems = []
    for n, (name, value) in enumerate((k, v) for k, v in raw.items() if k not in _ENVELOPE_FIELDS):
        pointer = _pointer((name,))
        if not EXTENSION_NAME.match(str(name)):
            problems.append(Problem(pointer=pointer, code="extension_name",
                                    message="extension attribute names are 1-20 lowercase letters or digits"))
        if n == MAX_EXTENSIONS:
            problems.append(Problem(pointer=pointer, code="extension_count",
                                    message=f"at most {MAX_EXTENSIONS} extension attributes"))
        if why := _extension_value_problem(value):
            problems.append(Problem(pointer=pointer, code="extension_value", message=why))
    return problems


def _extension_value_problem(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return None if INT32[0] <= value <= INT32[1] else f"an integer extension lies in {INT32[0]}..{INT32[1]}"
    if isinstance(value, str):
        return None if len(value) <= MAX_EXTENSION_TEXT else f"at most {MAX_EXTENSION_TEXT} characters"
    return "an extension attribute is a string, a boolean or an integer (no objects, arrays or fractions)"


def _raise_unknown_type(raw: dict, event_type: Any, known: tuple[str, ...]) -> Envelope:
    problems = []
    try:
        Envelope.model_validate({**raw, "type": "x"})
    except ValidationError as err:
        problems = [Problem(pointer=_pointer(e["loc"]), code=e["type"], message=e["msg"])
                    for e in err.errors(include_url=False)]
    message = ("'type' is required" if event_type is None
               else f"unknown event type {event_type!r}; expected one of: {', '.join(known)}")
    raise InvalidEvent([Problem(pointer="/type", code="unknown_type", message=message), *problems])


def partition_key(event: Envelope) -> str:
    """Keep a programme's plan and its task updates in one partition, in order."""
    data = event.data
    for attr in ("programme", "code", "indicator"):
        value = getattr(data, attr, None)
        if value:
            return value
    return event.source


def utc_iso(moment: datetime) -> str:
    """Fixed-width UTC ISO-8601, so that strings sort in time order. `isoformat` pads the year
    to four digits (strftime's %Y does not before 1000 on Linux) and costs a third of strftime,
    which the services call for every record."""
    return moment.astimezone(timezone.utc).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def utc_now() -> str:
    """The wall clock (arrival times, claims, attempts) as `utc_iso` text."""
    return utc_iso(datetime.now(timezone.utc))
