"""Reading a change takes the quick path for a plainly right task change and the models for
anything else: whatever the record, reports gets what the models give, or the models' refusal."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from shared import kafka, records
from shared.consumer import Poison

from services.reports import changes

GOOD = {"kind": "task", "id": "T-1", "programme": "02", "seq": 3, "event_key": "SO-KHDT:KHDT-2",
        "version": "2021-03-20T01:30:00.000000Z|SO-KHDT:KHDT-2", "event_time": "2021-03-20T01:30:00.000000Z",
        "accepted_at": "2021-03-20T01:30:01.5Z",
        "state": {"programme": "02", "plan": "SO-KHDT|KH", "lead_unit": "SO-KHDT", "title": "Nhiệm vụ",
                  "lead_person": {"name": "Nguyễn Văn An", "position": "Phó Giám đốc"}, "due_date": "2021-06-30",
                  "status": "in_progress", "progress": 40.0, "as_of": "2021-03-20", "dropped": False,
                  "milestones": [{"title": "Mốc 1", "due_date": "2021-05-01"}]},
        "old": {"status": "not_started", "progress": 0.0}, "fact": {"status": "in_progress", "progress": 40.0}}

# values a field may take instead of its own: right and wrong types, bounds, dates, texts
ODD = st.one_of(st.none(), st.booleans(), st.integers(-3, 2**63), st.floats(allow_nan=True),
                st.sampled_from(["", "02", "2021-06-30", "2021-13-01", "2021-W01-1", "20210630", "x" * 129,
                                 "2021-03-20T01:30:00Z", "2021-03-20T01:30:00+07:00", "2021-03-20T01:30:00.1234567Z",
                                 "٢٠٢١-03-20T01:30:00Z", "completed", "cancelled", "task", "plan", "x" * 20_001]),
                st.text(max_size=12), st.lists(st.integers(-5, 5), max_size=2), st.dictionaries(st.text(max_size=5),
                                                                                            st.integers(-5, 5), max_size=2))
PATHS = [(k,) for k in GOOD] + [("state", k) for k in GOOD["state"]] + [("fact", k) for k in GOOD["fact"]] \
    + [("state", "lead_person", "name"), ("state", "lead_person", "position"), ("state", "lead_person")]


def mutated(change: dict, path: tuple[str, ...], value, drop: bool) -> dict:
    change = kafka.loads(kafka.dumps(change))
    *parents, last = path
    target = change
    for key in parents:
        target = target.get(key) if isinstance(target, dict) else None
    if isinstance(target, dict):
        if drop:
            target.pop(last, None)
        else:
            target[last] = value
    return change


def by_the_models(value: bytes):
    try:
        return records.read_change(value).model_dump()
    except Poison as err:
        return ("refused", str(err))


def as_read(value: bytes):
    try:
        return changes.read(value)
    except Poison as err:
        return ("refused", str(err))


@settings(max_examples=600, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(PATHS), ODD, st.booleans()), max_size=3))
def test_a_change_read_is_what_the_models_give_or_their_refusal(edits):
    change = GOOD
    for path, value, drop in edits:
        change = mutated(change, path, value, drop)
    value = kafka.dumps(change)
    assert as_read(value) == by_the_models(value)


def test_a_plain_task_change_takes_the_quick_path_with_the_models_defaults():
    change = mutated(mutated(GOOD, ("state", "dropped"), None, True), ("state", "as_of"), None, True)
    read = changes._plain_task_change(kafka.loads(kafka.dumps(change)))
    assert read is not None and read == by_the_models(kafka.dumps(change))
    assert (read["state"]["dropped"], read["state"]["as_of"]) == (False, None)
