"""The bounds of the event contract: no string, list, number or extension attribute an
event may carry can make its record (or what it leads to) larger than Kafka takes, or
crash a later step; each hostile value is an InvalidEvent naming its field."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone

import pytest

from shared import accepted
from shared.events import RegistrySettings, RegistryUnit, parse_event, utc_iso
from tests.unit.test_events import INDICATOR_REPORTED, PLAN_SUBMITTED, TASK_UPDATED, problems_of

ICT = timezone(timedelta(hours=7))


def ev(example: dict, **top) -> dict:
    return copy.deepcopy(example) | top


def nested(depth: int):
    value: object = "x"
    for _ in range(depth):
        value = [value]
    return value


# --- extension attributes -------------------------------------------------------------

@pytest.mark.parametrize("value", [{"a": 1}, [1, 2], nested(300), "x" * 1025, 2**31, -2**31 - 1, 1.5])
def test_an_extension_attribute_that_is_not_a_small_scalar_is_refused_at_its_pointer(value):
    assert problems_of(ev(TASK_UPDATED, traceparent=value)) == {"/traceparent": "extension_value"}


@pytest.mark.parametrize("value", ["x" * 1024, True, 2**31 - 1, -2**31, 0, None])
def test_a_small_scalar_extension_attribute_is_kept(value):
    assert parse_event(ev(TASK_UPDATED, traceparent=value)).model_extra == {"traceparent": value}


def test_at_most_twenty_extension_attributes():
    twenty = {f"ext{i}": "v" for i in range(20)}
    assert len(parse_event(ev(TASK_UPDATED, **twenty)).model_extra) == 20
    assert problems_of(ev(TASK_UPDATED, **twenty, ext20="v")) == {"/ext20": "extension_count"}


def test_ingests_stamps_do_not_count_among_the_publishers_extensions():
    twenty = {f"ext{i}": "v" for i in range(20)}
    _, value = accepted.stamp(parse_event(ev(TASK_UPDATED, **twenty)))
    event, accepted_at, accept_id = accepted.read(value)
    assert len(event.model_extra) == 20 and accepted_at.endswith("Z") and accept_id


# --- strings, lists and numbers -------------------------------------------------------

def test_plan_lists_are_bounded():
    raw = ev(PLAN_SUBMITTED)
    task = raw["data"]["tasks"][0]
    raw["data"]["tasks"] = [task | {"task_id": f"T-{i}"} for i in range(1001)]
    assert problems_of(raw) == {"/data/tasks": "too_long"}
    raw = ev(PLAN_SUBMITTED)
    task = raw["data"]["tasks"][0]
    task["coordinating_units"] = [f"SO-X{i}" for i in range(51)]
    task["milestones"] = task["milestones"][:1] * 51
    task["tags"] = ["kinh tế"] * 21
    assert problems_of(raw) == {"/data/tasks/0/coordinating_units": "too_long",
                                "/data/tasks/0/milestones": "too_long", "/data/tasks/0/tags": "too_long"}


@pytest.mark.parametrize("value", [1e16, -1e16, 1e308])
def test_an_indicator_value_beyond_a_quadrillion_is_refused(value):
    raw = ev(INDICATOR_REPORTED)
    raw["data"]["value"] = value
    assert list(problems_of(raw)) == ["/data/value"]


def test_subject_and_dataschema_are_bounded():
    assert problems_of(ev(TASK_UPDATED, subject="s" * 1025, dataschema="https://x.example/" + "s" * 2048)) == {
        "/subject": "string_too_long", "/dataschema": "string_too_long"}


def test_a_registry_unit_has_bounded_addresses_and_a_typed_person_in_charge():
    unit = {"code": "VPTU", "name": "Văn phòng Thành ủy", "kind": "office", "email": "vptu@hanoi.example",
            "person_in_charge": {"name": "Chánh Văn phòng", "position": "Chánh Văn phòng",
                                 "email": "chanh-vp@hanoi.example"}}
    assert RegistryUnit.model_validate(unit).person_in_charge.email == "chanh-vp@hanoi.example"
    for bad in ({"email": "a" * 250 + "@x.vn"}, {"webhook": "https://x.example/" + "a" * 2048},
                {"person_in_charge": {"name": "A", "position": "B", "phone": {"deep": [1]}}},
                {"channels": ["email", "webhook", "email"]}):
        with pytest.raises(ValueError):
            RegistryUnit.model_validate(unit | bad)


def test_registry_settings_maps_are_bounded():
    settings = {"name": "hanoi-xvii", "title": "Chương trình", "term": {"start": "2020-11-02", "end": "2025-12-31"},
                "issuer": {"office": "VĂN PHÒNG THÀNH ỦY"}, "reporting": {"recipients": ["BTV"]}}
    assert RegistrySettings.model_validate(settings).issuer == {"office": "VĂN PHÒNG THÀNH ỦY"}
    for bad in ({"issuer": {f"k{i}": "v" for i in range(21)}}, {"issuer": {"k" * 65: "v"}},
                {"reporting": {"recipients": ["BTV"] * 101}}):
        with pytest.raises(ValueError):
            RegistrySettings.model_validate(settings | bad)


# --- time -------------------------------------------------------------------------------

@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+07:00", "9999-12-31T23:59:59-07:00"])
def test_a_time_with_no_utc_equivalent_is_refused_not_a_crash(moment):
    assert list(problems_of(ev(TASK_UPDATED, time=moment))) == ["/time"]


def test_utc_iso_writes_four_digit_years_so_text_order_is_time_order():
    early, late = datetime(999, 5, 31, 17, tzinfo=timezone.utc), datetime(2021, 3, 20, 1, 30, tzinfo=timezone.utc)
    assert utc_iso(early) == "0999-05-31T17:00:00.000000Z"
    assert utc_iso(datetime(1, 1, 1, 7, tzinfo=ICT)) == "0001-01-01T00:00:00.000000Z"
    assert sorted([utc_iso(late), utc_iso(early)]) == [utc_iso(early), utc_iso(late)]

