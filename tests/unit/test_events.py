"""The event contract (contract sections 1-2): a realistic example of every inbound
type is accepted, and the mistakes publishers typically make are rejected with a
JSON pointer to the offending field."""

from __future__ import annotations

import copy
from datetime import date, datetime, timedelta, timezone

import pytest

from shared.events import INBOUND_TYPES, InvalidEvent, parse_event, partition_key

ICT = timezone(timedelta(hours=7))


def envelope(source: str, event_type: str, event_id: str, data: dict,
             time: str = "2021-03-20T08:30:00+07:00") -> dict:
    return {"specversion": "1.0", "id": event_id, "source": source, "type": event_type,
            "time": time, "datacontenttype": "application/json", "data": data}


PROGRAMME_ISSUED = envelope("VPTU", "programme.issued", "VPTU-2021-000001", {
    "programme": "01",
    "document_no": "01-CTr/TU",
    "issued_on": "2021-03-17",
    "steering_committee": {
        "decision_no": "125-QĐ/TU",
        "established_on": "2021-03-25",
        "head": {"name": "Nguyễn Văn A", "position": "Phó Bí thư Thành ủy"},
    },
}, time="2021-03-17T16:00:00+07:00")

PLAN_SUBMITTED = envelope("SO-KHDT", "plan.submitted", "SO-KHDT-2021-000042", {
    "plan_id": "KH-SOKHDT-02-2021",
    "programme": "02",
    "title": "Kế hoạch thực hiện Chương trình 02-CTr/TU năm 2021",
    "document_no": "215/KH-SKHĐT",
    "issued_on": "2021-04-05",
    "tasks": [
        {
            "task_id": "CT02-SOKHDT-01",
            "title": "Xây dựng đề án cơ cấu lại nền kinh tế Thủ đô giai đoạn 2021-2025",
            "lead_unit": "SO-KHDT",
            "lead_person": {"name": "Trần Thị Bình", "position": "Phó Giám đốc Sở"},
            "coordinating_units": ["SO-TC", "SO-CT"],
            "due_date": "2021-12-31",
            "milestones": [
                {"title": "Trình dự thảo đề án", "due_date": "2021-09-30"},
                {"title": "Ban hành đề án", "due_date": "2021-12-15"},
            ],
            "tags": ["kinh tế", "cơ cấu lại"],
        },
        {
            "task_id": "CT02-SOKHDT-02",
            "title": "Cải thiện chỉ số năng lực cạnh tranh cấp tỉnh (PCI)",
            "lead_unit": "SO-KHDT",
            "lead_person": {"name": "Lê Văn Cường", "position": "Trưởng phòng Tổng hợp"},
            "due_date": "2021-11-30",
            "milestones": [{"title": "Báo cáo đánh giá 6 tháng", "due_date": "2021-06-30"}],
        },
    ],
}, time="2021-04-05T10:15:00+07:00")

TASK_UPDATED = envelope("SO-KHDT", "task.updated", "SO-KHDT-2021-000123", {
    "task_id": "CT02-SOKHDT-01",
    "programme": "02",
    "status": "in_progress",
    "progress": 35,
    "as_of": "2021-06-14",
    "note": "Đã hoàn thành khảo sát, đang xây dựng dự thảo đề án.",
    "reported_by": {"name": "Trần Thị Bình", "position": "Phó Giám đốc Sở"},
}, time="2021-06-14T17:00:00+07:00")

INDICATOR_REPORTED = envelope("SO-KHDT", "indicator.reported", "SO-KHDT-2021-CT01-H1", {
    "indicator": "CT-01",
    "period": "2021-H1",
    "value": 4.38,
    "note": "Số liệu ước tính của Cục Thống kê thành phố.",
}, time="2021-06-30T09:00:00+07:00")

UNIT_REPORT = envelope("Q-HOANKIEM", "unit-report.submitted", "Q-HOANKIEM-BC-2021-Q1", {
    "cycle": "2021-Q1",
    "document_no": "45/BC-QU",
    "summary": "Quận ủy Hoàn Kiếm báo cáo kết quả quý I năm 2021 thực hiện các chương trình công tác.",
    "achievements": "Ban hành đầy đủ kế hoạch thực hiện 10 chương trình.",
    "shortcomings": "Tiến độ giải ngân vốn đầu tư công còn chậm.",
    "proposals": "Đề nghị Thành phố bổ sung vốn cho dự án chỉnh trang đô thị.",
}, time="2021-03-16T15:30:00+07:00")

SUPERVISION = envelope("MTTQ", "supervision.recorded", "MTTQ-GS-2021-007", {
    "programme": "08",
    "kind": "giam_sat",
    "finding": "Việc chi trả trợ cấp cho người có hoàn cảnh khó khăn tại một số phường còn chậm.",
    "recommendation": "Đề nghị Sở Lao động - Thương binh và Xã hội rà soát, đôn đốc.",
    "unit": "SO-LDTBXH",
}, time="2021-05-20T11:00:00+07:00")

EXAMPLES = {
    "programme.issued": PROGRAMME_ISSUED,
    "plan.submitted": PLAN_SUBMITTED,
    "task.updated": TASK_UPDATED,
    "indicator.reported": INDICATOR_REPORTED,
    "unit-report.submitted": UNIT_REPORT,
    "supervision.recorded": SUPERVISION,
}


def ev(example: dict) -> dict:
    return copy.deepcopy(example)


def problems_of(raw) -> dict[str, str]:
    with pytest.raises(InvalidEvent) as exc:
        parse_event(raw, allowed_types=INBOUND_TYPES)
    return {p.pointer: p.code for p in exc.value.problems}


def test_the_examples_cover_every_inbound_type():
    assert set(EXAMPLES) == set(INBOUND_TYPES)


@pytest.mark.parametrize("event_type", list(EXAMPLES))
def test_a_realistic_event_of_every_inbound_type_is_accepted(event_type):
    raw = ev(EXAMPLES[event_type])
    event = parse_event(raw, allowed_types=INBOUND_TYPES)
    assert event.type == event_type
    assert event.source == raw["source"]
    assert event.key == f"{raw['source']}:{raw['id']}"
    assert event.time.utcoffset() == timedelta(hours=7)


def test_accepted_events_carry_typed_vietnamese_content():
    plan = parse_event(ev(PLAN_SUBMITTED)).data
    assert len(plan.tasks) == 2
    assert plan.tasks[0].lead_person.name == "Trần Thị Bình"
    assert plan.tasks[0].milestones[1].due_date == date(2021, 12, 15)
    assert plan.tasks[0].coordinating_units == ["SO-TC", "SO-CT"]
    assert plan.tasks[1].coordinating_units == []
    issued = parse_event(ev(PROGRAMME_ISSUED)).data
    assert issued.steering_committee.head.position == "Phó Bí thư Thành ủy"
    assert issued.steering_committee.established_on == date(2021, 3, 25)
    update = parse_event(ev(TASK_UPDATED))
    assert update.data.progress == 35
    assert update.time == datetime(2021, 6, 14, 10, 0, tzinfo=timezone.utc)


def test_programme_issued_without_steering_committee_is_accepted():
    raw = ev(PROGRAMME_ISSUED)
    del raw["data"]["steering_committee"]
    assert parse_event(raw).data.steering_committee is None


def test_event_time_in_utc_z_is_accepted():
    raw = ev(TASK_UPDATED)
    raw["time"] = "2021-06-14T10:00:00Z"
    assert parse_event(raw).time == datetime(2021, 6, 14, 17, 0, tzinfo=ICT)


# --- typical mistakes -------------------------------------------------------------

def test_missing_lead_person_is_named_by_pointer():
    raw = ev(PLAN_SUBMITTED)
    del raw["data"]["tasks"][0]["lead_person"]
    assert problems_of(raw) == {"/data/tasks/0/lead_person": "missing"}


def test_progress_over_100_is_rejected():
    raw = ev(TASK_UPDATED)
    raw["data"]["progress"] = 150
    assert list(problems_of(raw)) == ["/data/progress"]


def test_negative_progress_is_rejected():
    raw = ev(TASK_UPDATED)
    raw["data"]["progress"] = -1
    assert list(problems_of(raw)) == ["/data/progress"]


def test_impossible_date_is_rejected():
    raw = ev(TASK_UPDATED)
    raw["data"]["as_of"] = "2021-02-30"
    assert list(problems_of(raw)) == ["/data/as_of"]


def test_bad_status_is_rejected():
    raw = ev(TASK_UPDATED)
    raw["data"]["status"] = "done"
    assert list(problems_of(raw)) == ["/data/status"]


def test_unknown_type_is_rejected_at_type():
    raw = ev(TASK_UPDATED)
    raw["type"] = "task.deleted"
    problems = problems_of(raw)
    assert problems["/type"] == "unknown_type"


def test_missing_type_is_rejected_at_type():
    raw = ev(TASK_UPDATED)
    del raw["type"]
    assert problems_of(raw)["/type"] == "unknown_type"


def test_missing_specversion_is_rejected():
    raw = ev(UNIT_REPORT)
    del raw["specversion"]
    assert problems_of(raw) == {"/specversion": "missing"}


def test_wrong_specversion_is_rejected():
    raw = ev(UNIT_REPORT)
    raw["specversion"] = "0.3"
    assert list(problems_of(raw)) == ["/specversion"]


def test_time_without_offset_is_rejected():
    raw = ev(TASK_UPDATED)
    raw["time"] = "2021-06-14T17:00:00"
    assert list(problems_of(raw)) == ["/time"]


def test_time_as_a_number_is_rejected():
    """The contract asks for an RFC 3339 string with an offset, not a Unix timestamp."""
    raw = ev(TASK_UPDATED)
    raw["time"] = 1623664800
    assert list(problems_of(raw)) == ["/time"]


def test_unknown_field_inside_data_is_forbidden():
    raw = ev(TASK_UPDATED)
    raw["data"]["progres"] = 40
    assert problems_of(raw) == {"/data/progres": "extra_forbidden"}


def test_unknown_field_inside_a_nested_task_is_forbidden():
    raw = ev(PLAN_SUBMITTED)
    raw["data"]["tasks"][1]["deadline"] = "2021-11-30"
    assert problems_of(raw) == {"/data/tasks/1/deadline": "extra_forbidden"}


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), "NaN", "Infinity"])
def test_non_finite_indicator_value_is_rejected(value):
    raw = ev(INDICATOR_REPORTED)
    raw["data"]["value"] = value
    assert list(problems_of(raw)) == ["/data/value"]


@pytest.mark.parametrize("source", ["so-khdt", "SO_KHDT", "SỞ-KHĐT", "", "SO-KHDT-"])
def test_bad_unit_code_in_source_is_rejected(source):
    raw = ev(TASK_UPDATED)
    raw["source"] = source
    assert list(problems_of(raw)) == ["/source"]


def test_bad_period_is_rejected():
    raw = ev(INDICATOR_REPORTED)
    raw["data"]["period"] = "2021-Q5"
    assert list(problems_of(raw)) == ["/data/period"]


def test_bad_programme_code_is_rejected():
    raw = ev(SUPERVISION)
    raw["data"]["programme"] = "11"
    assert list(problems_of(raw)) == ["/data/programme"]


def test_plan_without_tasks_is_rejected():
    raw = ev(PLAN_SUBMITTED)
    raw["data"]["tasks"] = []
    assert list(problems_of(raw)) == ["/data/tasks"]


def test_every_bad_field_is_named_at_once():
    raw = ev(PLAN_SUBMITTED)
    del raw["data"]["tasks"][0]["lead_person"]
    raw["data"]["tasks"][1]["due_date"] = "2021-13-01"
    raw["time"] = "2021-04-05T10:15:00"
    assert set(problems_of(raw)) == {"/data/tasks/0/lead_person", "/data/tasks/1/due_date", "/time"}


def test_a_non_object_is_rejected():
    with pytest.raises(InvalidEvent):
        parse_event([ev(TASK_UPDATED)])


def test_bad_extension_attribute_name_is_rejected():
    raw = ev(TASK_UPDATED)
    raw["Trace-Id"] = "abc"
    assert "/Trace-Id" in problems_of(raw)


def test_valid_extension_attribute_is_kept():
    raw = ev(TASK_UPDATED)
    raw["traceparent"] = "00-abc-def-01"
    assert parse_event(raw).model_extra == {"traceparent": "00-abc-def-01"}


def test_registry_types_are_not_inbound():
    raw = envelope("VPTU", "registry.unit", "registry-unit-SO-KHDT-abc",
                   {"code": "SO-KHDT", "name": "Sở Kế hoạch và Đầu tư", "kind": "department"})
    assert parse_event(raw).type == "registry.unit"  # known to the system...
    assert problems_of(raw)["/type"] == "unknown_type"  # ...but not accepted from publishers


# --- partition key ----------------------------------------------------------------

def test_plan_and_its_task_updates_share_the_programme_partition():
    assert partition_key(parse_event(ev(PLAN_SUBMITTED))) == "02"
    assert partition_key(parse_event(ev(TASK_UPDATED))) == "02"


def test_indicator_reports_are_keyed_by_indicator():
    assert partition_key(parse_event(ev(INDICATOR_REPORTED))) == "CT-01"


def test_unit_reports_are_keyed_by_source():
    assert partition_key(parse_event(ev(UNIT_REPORT))) == "Q-HOANKIEM"


def test_programme_and_supervision_keyed_by_programme():
    assert partition_key(parse_event(ev(PROGRAMME_ISSUED))) == "01"
    assert partition_key(parse_event(ev(SUPERVISION))) == "08"
