"""What a departmental system gets back from POST /v1/events before anything is
published (contract section 4): who it is, and whether its events are valid."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import orjson
import pytest

from services.ingest import domain, problems, service
from services.ingest.problems import ProblemError
from services.ingest.access import unit_for_key
from services.ingest.settings import IngestSettings

KEYS = {"k-sokhdt-3f9a": "SO-KHDT", "k-hoankiem-77c1": "Q-HOANKIEM"}


def event(i: int = 0, source: str = "SO-KHDT", **data_over) -> dict:
    data = {"task_id": "CT02-SOKHDT-01", "programme": "02", "status": "in_progress", "progress": 40 + i,
            "as_of": "2021-06-14", "reported_by": {"name": "Trần Thị Bình", "position": "Phó Giám đốc Sở"}}
    data.update(data_over)
    return {"specversion": "1.0", "id": f"{source}-2021-{i:06d}", "source": source, "type": "task.updated",
            "time": "2021-06-14T17:00:00+07:00", "data": data}


NOW = datetime(2021, 7, 1, 9, 0, tzinfo=timezone.utc)


def validate(body: bytes, *, unit: str, max_batch: int) -> list:
    bounds = domain.Bounds.of(IngestSettings(ingest_max_batch=max_batch))
    return service.validate(body, unit=unit, bounds=bounds, window=bounds.window(term_start=None, now=NOW))


def body(value) -> bytes:
    return orjson.dumps(value)


def problem(fn, *args, **kwargs) -> ProblemError:
    """The problem document a refusal of `fn` is answered with."""
    with pytest.raises(domain.Refusal) as exc:
        fn(*args, **kwargs)
    return problems.from_refusal(exc.value)


# --- authentication ---------------------------------------------------------------

@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer   "])
def test_no_key_is_401(header):
    err = problem(unit_for_key, header, KEYS)
    assert err.status == 401
    assert "WWW-Authenticate" in err.headers


@pytest.mark.parametrize("header", ["Basic k-sokhdt-3f9a", "Token k-sokhdt-3f9a", "k-sokhdt-3f9a"])
def test_wrong_scheme_is_401(header):
    assert problem(unit_for_key, header, KEYS).status == 401


def test_unknown_key_is_401():
    err = problem(unit_for_key, "Bearer k-sokhdt-0000", KEYS)
    assert err.status == 401
    assert "invalid_token" in err.headers["WWW-Authenticate"]


def test_a_known_key_gives_its_unit():
    assert unit_for_key("Bearer k-sokhdt-3f9a", KEYS) == "SO-KHDT"
    assert unit_for_key("bearer k-hoankiem-77c1", KEYS) == "Q-HOANKIEM"


# --- validation -------------------------------------------------------------------

def test_a_single_valid_event_is_accepted():
    events = validate(body(event()), unit="SO-KHDT", max_batch=1000)
    assert len(events) == 1
    assert events[0].id == "SO-KHDT-2021-000000"
    assert events[0].data.progress == 40


def test_a_valid_batch_keeps_its_order():
    events = validate(body([event(i) for i in range(3)]), unit="SO-KHDT", max_batch=1000)
    assert [e.id for e in events] == ["SO-KHDT-2021-000000", "SO-KHDT-2021-000001", "SO-KHDT-2021-000002"]


def test_one_bad_event_rejects_the_whole_batch_and_names_it():
    batch = [event(0), event(1, progress=150), event(2)]
    err = problem(validate, body(batch), unit="SO-KHDT", max_batch=1000)
    assert err.status == 422
    assert {e["index"] for e in err.errors} == {1}
    assert [e["pointer"] for e in err.errors] == ["/1/data/progress"]
    assert "1 of 3" in err.detail


def test_a_single_bad_event_is_named_without_an_index_prefix():
    bad = event()
    del bad["data"]["reported_by"]
    err = problem(validate, body(bad), unit="SO-KHDT", max_batch=1000)
    assert err.status == 422
    assert [e["pointer"] for e in err.errors] == ["/data/reported_by"]


def test_non_json_is_400():
    assert problem(validate, b"{\"specversion\": \"1.0\",", unit="SO-KHDT", max_batch=1000).status == 400
    assert problem(validate, "không phải JSON".encode(), unit="SO-KHDT", max_batch=1000).status == 400


def test_an_empty_batch_is_422():
    assert problem(validate, b"[]", unit="SO-KHDT", max_batch=1000).status == 422


def test_a_batch_over_the_limit_is_413():
    assert problem(validate, body([event(i) for i in range(4)]), unit="SO-KHDT", max_batch=3).status == 413


def test_a_batch_at_the_limit_is_accepted():
    assert len(validate(body([event(i) for i in range(3)]), unit="SO-KHDT", max_batch=3)) == 3


def test_publishing_for_another_unit_is_403():
    batch = [event(0), event(1, source="SO-TC")]
    err = problem(validate, body(batch), unit="SO-KHDT", max_batch=1000)
    assert err.status == 403
    assert [(e["index"], e["pointer"]) for e in err.errors] == [(1, "/1/source")]


def test_single_event_for_another_unit_is_403():
    err = problem(validate, body(event(source="Q-HOANKIEM")), unit="SO-KHDT", max_batch=1000)
    assert err.status == 403
    assert [e["pointer"] for e in err.errors] == ["/source"]


def test_registry_events_cannot_be_sent_over_http():
    raw = {"specversion": "1.0", "id": "registry-unit-SO-KHDT-1", "source": "VPTU", "type": "registry.unit",
           "time": "2021-01-05T08:00:00+07:00",
           "data": {"code": "SO-KHDT", "name": "Sở Kế hoạch và Đầu tư", "kind": "department"}}
    err = problem(validate, body(raw), unit="VPTU", max_batch=1000)
    assert err.status == 422
    assert [(e["pointer"], e["code"]) for e in err.errors] == [("/type", "unknown_type")]


# --- bounds at the door: when an event happened, how large it is ----------------------

def refused_times(times: list[str], *, term_start=None, now: datetime = NOW, **settings) -> ProblemError:
    bounds = domain.Bounds.of(IngestSettings(**settings))
    batch = [event(i) | {"time": t} for i, t in enumerate(times)]
    return problem(service.validate, body(batch), unit="SO-KHDT", bounds=bounds,
                   window=bounds.window(term_start=term_start, now=now))


def test_times_long_before_the_term_or_after_now_are_422_at_their_pointer_in_both_languages():
    hour_ahead = (NOW + timedelta(hours=1)).isoformat()
    hostile = ["0999-06-01T00:00:00+07:00", "9999-12-31T23:59:59+07:00", hour_ahead, "2021-06-14T17:00:00+07:00",
               "1999-12-31T23:59:59+07:00"]
    err = refused_times(hostile)
    assert err.status == 422
    assert [(e["pointer"], e["code"]) for e in err.errors] == [(f"/{i}/time", "time_out_of_range") for i in (0, 1, 2, 4)]
    assert "2000-01-01T00:00:00+07:00" in err.errors[0]["detail"] and "thời điểm" in err.errors[0]["detail_vi"]


def test_the_time_window_follows_the_registrys_term_once_known():
    term_start = date(2020, 11, 2)  # minus 366 days: 2019-11-02 in Hanoi
    err = refused_times(["2019-11-01T23:59:59+07:00", "2019-11-02T00:00:00+07:00", "1999-01-01T00:00:00+07:00"],
                        term_start=term_start)
    assert [e["pointer"] for e in err.errors] == ["/0/time", "/2/time"]
    bounds = domain.Bounds.of(IngestSettings(ingest_time_margin_days=0))
    assert bounds.window(term_start=term_start, now=NOW)[0] == datetime(2020, 11, 1, 17, tzinfo=timezone.utc)


def test_a_publishers_clock_may_run_a_few_minutes_ahead():
    bounds = domain.Bounds.of(IngestSettings())
    ahead = event() | {"time": (NOW + timedelta(minutes=4)).isoformat()}
    assert service.validate(body(ahead), unit="SO-KHDT", bounds=bounds, window=bounds.window(term_start=None, now=NOW))
    assert refused_times([(NOW + timedelta(minutes=6)).isoformat()], ingest_max_clock_skew_s=300).status == 422


def test_an_event_over_the_byte_limit_is_413_naming_it():
    bounds = domain.Bounds.of(IngestSettings(ingest_max_event_bytes=2048))
    batch = [event(0), event(1, note="Ghi chú. " * 300), event(2)]
    err = problem(service.validate, body(batch), unit="SO-KHDT", bounds=bounds,
                  window=bounds.window(term_start=None, now=NOW))
    assert err.status == 413 and "event 1 is" in err.detail
    assert [(e["index"], e["pointer"]) for e in err.errors] == [(1, "/1")]


def test_the_byte_limit_stays_below_what_kafka_takes():
    with pytest.raises(ValueError):
        IngestSettings(ingest_max_event_bytes=901 * 1024)
    assert IngestSettings().ingest_max_event_bytes == 512 * 1024


def test_a_nested_extension_attribute_is_422_naming_it():
    err = problem(validate, body([event(0), event(1) | {"trace": {"a": [1]}}]), unit="SO-KHDT", max_batch=10)
    assert err.status == 422
    assert [(e["pointer"], e["code"]) for e in err.errors] == [("/1/trace", "extension_value")]
