"""Property: whatever well-formed but hostile records arrive (any string, any date, any size
the contract allows), programs, reports and notify move past them: each record is applied or
decided, none raises out of the consumer, and what they publish fits in a Kafka record.

Each consumer's own batch path (`consumer.apply_batch` with the service's handler) runs against
the real FerretDB; only the broker is a recorder."""

from __future__ import annotations

import asyncio
import json
import secrets
import string
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared import accepted, consumer, kafka, mongo, records as shared_records
from shared.clock import Clock
from shared.events import CYCLE, PERIOD, InvalidEvent, parse_event
from shared.registry import load_events
from tests.integration.test_notify import change as notify_change
from tests.receivers import Receiver
from tests.unit.test_consumer_errors import FakeBroker, Record, letters_for

from services.notify import handlers as notify_handlers
from services.notify.service import Notifier
from services.notify.settings import NotifySettings
from services.notify.store import INDEXES as NOTIFY_INDEXES, NotifyStore
from services.programs import handlers as programs_handlers
from services.programs.settings import ProgramsSettings
from services.programs.store import INDEXES as PROGRAMS_INDEXES
from services.reports import changes as reports_changes, handlers as reports_handlers
from services.reports.service import ReportsService
from services.reports.store import INDEXES as REPORTS_INDEXES, ReportsStore

HOSTILE = dict(max_examples=30, deadline=None,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                      HealthCheck.data_too_large, HealthCheck.filter_too_much])
MAX_RECORD = 1_000_000  # under the producer's max_request_size (1 MiB)
UNITS = ("VPTU", "SO-KHDT", "SO-TC", "MTTQ", "Q-BADINH", "X-UNKNOWN")
TASKS = ("T-1", "T-2", "T-3")

# --- strategies: any text (up to the contract's bounds), any date and time, any number ---
chars = st.characters(codec="utf-8", exclude_categories=("Cs",))
some_text = st.one_of(st.text(chars, min_size=1, max_size=30), st.text(chars, min_size=1500, max_size=2000),
                      st.sampled_from(("$set", "a.b", "\x00", "'; drop", "ℌ𝔞𝔫𝔬𝔦", " x ")))
text = some_text.map(lambda s: "x" + s)  # never only whitespace (the models strip it)
ident = st.one_of(st.sampled_from(TASKS), st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}", fullmatch=True))
unit = st.one_of(st.sampled_from(UNITS), st.from_regex(r"[A-Z][A-Z0-9]{0,5}(-[A-Z0-9]{1,5}){0,2}", fullmatch=True))
programme = st.sampled_from([f"{i:02d}" for i in range(1, 11)])
day = st.dates().map(lambda d: d.isoformat())
person = st.fixed_dictionaries({"name": text, "position": text})
number = st.floats(allow_nan=False, allow_infinity=False)


@st.composite
def moments(draw) -> str:
    when = draw(st.datetimes())
    offset = draw(st.integers(-14 * 60, 14 * 60))
    sign = "+" if offset >= 0 else "-"
    return f"{when.isoformat()}{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"


def task_of(lead: str):
    return st.fixed_dictionaries({
        "task_id": ident, "title": text, "lead_unit": st.one_of(st.just(lead), unit), "lead_person": person,
        "due_date": day, "milestones": st.lists(st.fixed_dictionaries({"title": text, "due_date": day}), max_size=3),
        "coordinating_units": st.lists(unit, max_size=3), "tags": st.lists(text.map(lambda s: s[:64]), max_size=2)})


@st.composite
def events(draw) -> dict:
    source = draw(unit)
    kind = draw(st.sampled_from(("plan.submitted", "task.updated", "task.updated", "programme.issued",
                                 "indicator.reported", "unit-report.submitted", "supervision.recorded")))
    data = draw({
        "plan.submitted": st.fixed_dictionaries({
            "plan_id": ident, "programme": programme, "title": text, "document_no": text, "issued_on": day,
            "tasks": st.lists(task_of(source), min_size=1, max_size=4)}),
        "task.updated": st.fixed_dictionaries({
            "task_id": ident, "programme": programme,
            "status": st.sampled_from(("not_started", "in_progress", "completed", "blocked", "cancelled")),
            "progress": st.floats(0, 100), "as_of": day, "reported_by": person}, optional={"note": text}),
        "programme.issued": st.fixed_dictionaries({"programme": programme, "document_no": text, "issued_on": day}),
        "indicator.reported": st.fixed_dictionaries({
            "indicator": st.sampled_from(("CT-01", "CT-99")), "period": st.from_regex(PERIOD, fullmatch=True),
            "value": number}, optional={"note": text}),
        "unit-report.submitted": st.fixed_dictionaries({
            "cycle": st.one_of(st.from_regex(CYCLE, fullmatch=True), st.sampled_from(("2021-Q1", "0000", "9999-H2"))),
            "document_no": text, "summary": text}),
        "supervision.recorded": st.fixed_dictionaries({
            "programme": programme, "kind": st.sampled_from(("giam_sat", "phan_bien")), "finding": text},
            optional={"task_id": ident, "unit": unit}),
    }[kind])
    return {"specversion": "1.0", "id": draw(st.text(chars, min_size=1, max_size=256)), "source": source,
            "type": kind, "time": draw(moments()), "data": data, **draw(st.dictionaries(
                st.from_regex(r"[a-z0-9]{1,20}", fullmatch=True).filter(lambda k: k not in _ENVELOPE),
                st.one_of(st.text(chars, max_size=50), st.booleans(), st.integers(-2**31, 2**31 - 1)), max_size=2))}


_ENVELOPE = {"specversion", "id", "source", "type", "time", "datacontenttype", "subject", "dataschema", "data",
             accepted.ACCEPTED_TIME, accepted.ACCEPT_ID}

json_scalar = st.one_of(st.none(), st.booleans(), st.integers(), number, st.text(chars, max_size=40))
json_value = st.recursive(json_scalar, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                               st.dictionaries(st.text(string.ascii_letters, min_size=1,
                                                                                       max_size=8), inner, max_size=3)),
                          max_leaves=8)


def hostile_state(keys: tuple[str, ...]):
    return st.dictionaries(st.sampled_from(keys), json_value, max_size=len(keys))


CHANGE_KINDS = ("task", "plan", "programme_issued", "indicator_value", "unit_report", "supervision", "unit",
                "programme", "indicator", "settings", "something")
STATE_KEYS = ("code", "name", "task_id", "programme", "lead_unit", "due_date", "status", "progress", "unit", "cycle",
              "time", "document_no", "indicator", "period", "value", "title", "email", "reporting", "kind", "source")


@st.composite
def changes(draw) -> dict:
    change = {"kind": draw(st.sampled_from(CHANGE_KINDS)), "id": draw(st.one_of(ident, st.text(chars, min_size=1))),
              "state": draw(hostile_state(STATE_KEYS)), "event_key": draw(st.text(chars, min_size=1, max_size=60)),
              "version": draw(json_value.filter(lambda v: v not in (None, ""))), "event_time": draw(moments()),
              "accepted_at": draw(moments()), "programme": draw(st.one_of(st.none(), programme, json_scalar))}
    if draw(st.booleans()):
        change["seq"] = draw(st.one_of(st.integers(), st.integers(2**63, 2**70), number))
    if draw(st.booleans()):
        change["fact"] = draw(hostile_state(STATE_KEYS))
    return change


@asynccontextmanager
async def database(infra_stack, indexes):
    """The test's database (one per consumer: what earlier examples left there stays, as
    hostile state would), on a client of this example's event loop."""
    client = mongo.connect(infra_stack.mongo)
    db = client[f"{infra_stack.prefix}_hostile_{_NAMES.setdefault(id(indexes), secrets.token_hex(4))}"]
    try:
        await mongo.ensure_indexes(db, indexes)
        yield db
    finally:
        await client.close()


_NAMES: dict[int, str] = {}


def dumps(value) -> bytes:
    """JSON as any producer may write it (integers of any size, unlike orjson)."""
    return json.dumps(value, ensure_ascii=False).encode()


def records(values: list[bytes], topic: str) -> list[Record]:
    return [Record(offset, value, topic=topic) for offset, value in enumerate(values)]


def published_sizes_fit(broker: FakeBroker) -> None:
    too_big = [(topic, len(value)) for topic, value, _ in broker.published if len(value) > MAX_RECORD]
    assert not too_big, f"records larger than the producer may send: {too_big}"


REGISTRY_FILE = Path(__file__).resolve().parents[2] / "deploy/registry/hanoi-xvii.yaml"


@settings(**HOSTILE)
@given(raw=st.lists(events(), min_size=1, max_size=6))
def test_programs_decides_every_hostile_event(infra_stack, raw):
    valid = []
    for event in raw:
        try:
            valid.append(parse_event(event))
        except InvalidEvent:
            continue  # ingest would refuse it: not what this property is about

    async def check():
        async with database(infra_stack, PROGRAMS_INDEXES) as db:
            broker = FakeBroker()
            letters_for(broker)
            runtime = SimpleNamespace(db=db, broker=broker, settings=ProgramsSettings(programs_hold_seconds=3600))
            apply = lambda batch: programs_handlers.decide_batch(runtime, batch)  # noqa: E731
            decide = lambda record, item, error: programs_handlers.refuse(runtime, item, error)  # noqa: E731
            registry = [accepted.stamp(e)[1] for e in load_events(REGISTRY_FILE)]
            await consumer.apply_batch(broker, records(registry, "accepted"), read=programs_handlers.read_accepted,
                                    apply=apply, decide=decide)
            broker.published.clear()
            stamped = [accepted.stamp(e)[1] for e in valid]
            await consumer.apply_batch(broker, records(stamped, "accepted"), read=programs_handlers.read_accepted,
                                    apply=apply, decide=decide)  # raising here would stall the partition
            outcomes = [kafka.loads(v) for t, v, _ in broker.published if t.endswith("programs.outcomes")]
            held = {d["_id"] async for d in db.held.find({})}
            dead = [v for t, v, _ in broker.published if t.endswith(".dlq")]
            for value in stamped:
                body = kafka.loads(value)
                key = f"{body['source']}:{body['id']}"
                mine = [o for o in outcomes if o["accept_id"] == body[accepted.ACCEPT_ID]]
                assert len(mine) == 1 or (not mine and key in held) or value in dead, (key, mine)
            published_sizes_fit(broker)

    asyncio.run(check())


@settings(**HOSTILE)
@given(hostile=st.lists(changes(), min_size=1, max_size=6))
def test_reports_moves_past_any_change(infra_stack, hostile):
    good = {"kind": "task", "id": "T-GOOD", "programme": "01", "seq": 1, "event_key": "SO-KHDT:U-GOOD",
            "version": "2021-03-01T00:00:00.000000Z|SO-KHDT:U-GOOD", "event_time": "2021-03-01T00:00:00.000000Z",
            "accepted_at": "2021-03-01T00:00:01.000000Z",
            "state": {"task_id": "T-GOOD", "programme": "01", "lead_unit": "SO-KHDT", "title": "Nhiệm vụ",
                      "due_date": "2021-06-30", "status": "in_progress", "progress": 50.0}}

    async def check():
        async with database(infra_stack, REPORTS_INDEXES) as db:
            broker = FakeBroker()
            letters_for(broker)
            service = ReportsService(ReportsStore(db), Clock("Asia/Ho_Chi_Minh"))
            values = [dumps(c) for c in hostile] + [dumps(good)]
            await consumer.apply_batch(broker, records(values, "changes"), read=reports_changes.read,
                                    apply=lambda cs: reports_handlers.apply_changes(service, cs))
            task = {t["task_id"]: t for t in await service.store.current_tasks()}.get("T-GOOD")  # as version T-GOOD|1
            assert task is not None and task["progress"] == 50.0, "the good change behind them was applied"
            await service.live_status()  # the roll-up still answers over whatever was applied

    asyncio.run(check())


class Recorded:
    """A channel that accepts whatever it is given."""

    def __init__(self, name: str):
        self.name, self.sent = name, []

    async def send(self, message) -> None:
        self.sent.append(message)


notices = st.one_of(
    st.tuples(st.just("changes"), changes()),
    st.tuples(st.just("outcomes"), st.fixed_dictionaries(
        {"outcome": st.sampled_from(("rejected", "applied", "x")), "source": st.one_of(unit, json_scalar),
         "event_key": st.one_of(st.text(chars, min_size=1), json_scalar)},
        optional={"decided_at": st.one_of(moments(), json_scalar), "code": json_value, "findings": json_value,
                  "message_vi": json_value, "message_en": json_value, "id": json_value, "type": json_value})),
    st.tuples(st.just("due"), st.fixed_dictionaries(
        {"cycle": st.one_of(st.from_regex(CYCLE, fullmatch=True), json_scalar), "due_date": st.one_of(day, json_scalar),
         "expected_units": st.one_of(st.lists(unit, max_size=3), json_value), "window": json_value})),
    st.tuples(st.just("generated"), st.fixed_dictionaries(
        {"cycle": st.one_of(st.from_regex(CYCLE, fullmatch=True), json_scalar), "number": json_value,
         "formats": st.one_of(json_value, st.fixed_dictionaries({"pdf": st.one_of(
             st.text(chars), st.just("REPORTS/v1/reports/archive/x/pdf"), st.just("http://127.0.0.1:9/x"))}))})),
)


@settings(**HOSTILE)
@given(hostile=st.lists(notices, min_size=1, max_size=6))
def test_notify_moves_past_any_record(infra_stack, hostile):
    async def check():
        with Receiver() as reports:  # answers 404 for any report it does not have
            async with database(infra_stack, NOTIFY_INDEXES) as db:
                broker = FakeBroker()
                letters_for(broker)
                channels = {"email": Recorded("email"), "webhook": Recorded("webhook")}
                notifier = Notifier(NotifyStore(db), channels, NotifySettings(notify_reports_url=reports.url))
                clock = Clock("Asia/Ho_Chi_Minh")
                handle = {"changes": lambda n, v: notify_handlers.on_change(n, v, clock),
                          "outcomes": notify_handlers.on_outcome,
                          "due": lambda n, v: notify_handlers.on_due(n, v, clock),
                          "generated": lambda n, v: notify_handlers.on_generated(n, v, clock)}
                known = kafka.loads(notify_change("unit", "SO-KHDT", {"code": "SO-KHDT", "name": "Sở KH&ĐT",
                                                                       "email": "so-khdt@hanoi.example"}))
                good = f"GOOD-{secrets.token_hex(4)}"  # the database outlives the example: a new notice each time
                rejected = {"outcome": "rejected", "source": "SO-KHDT", "event_key": f"SO-KHDT:{good}", "id": good,
                            "type": "task.updated", "code": "forbidden", "message_vi": "x", "message_en": "x",
                            "event_time": "2021-03-01T00:00:00Z", "decided_at": "2021-03-01T00:00:00Z"}
                topics = [t for t, _ in hostile] + ["changes", "outcomes"]
                for topic, value in zip(topics, [v for _, v in hostile] + [known, rejected]):
                    if topic == "generated" and isinstance(value.get("formats"), dict):
                        pdf = value["formats"].get("pdf")
                        if isinstance(pdf, str):
                            value = {**value, "formats": {"pdf": pdf.replace("REPORTS", reports.url)}}
                    read = {"changes": notify_handlers.read_change, "outcomes": shared_records.read_outcome,
                            "due": shared_records.read_due, "generated": shared_records.read_generated}[topic]
                    await consumer.apply_batch(broker, records([dumps(value)], topic), read=read,
                                            apply=lambda vs, t=topic: notify_handlers.handle_each(
                                                notifier, t, vs, handle[t]))
                sent = [m for m in channels["email"].sent if m.recipient == "SO-KHDT" and m.kind == "rejected"]
                assert any(good in m.body for m in sent), "the good notice behind them went out"

    asyncio.run(check())
