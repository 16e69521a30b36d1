"""The shipped Hanoi registry loads into registry events (contract sections 4 and 6),
reloads idempotently, and a bad entry is named by its place in the file."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from shared.events import InvalidEvent
from shared.registry import load_events

SHIPPED = Path(__file__).resolve().parents[2] / "deploy" / "registry" / "hanoi-xvii.yaml"

# Contract section 6, verbatim.
CITY_BODIES = ["BTV", "VPTU", "HDND", "UBND", "MTTQ", "BTC-TU", "BTG-TU", "BDV-TU", "UBKT-TU", "BNC-TU"]
DEPARTMENTS = ["SO-KHDT", "SO-TC", "SO-XD", "SO-QHKT", "SO-GTVT", "SO-TNMT", "SO-NNPTNT", "SO-CT", "SO-KHCN",
               "SO-TTTT", "SO-VHTT", "SO-DL", "SO-GDDT", "SO-YT", "SO-LDTBXH", "SO-NV", "SO-TP", "TTR-TP"]
DISTRICTS = ["Q-BADINH", "Q-HOANKIEM", "Q-TAYHO", "Q-LONGBIEN", "Q-CAUGIAY", "Q-DONGDA", "Q-HAIBATRUNG",
             "Q-HOANGMAI", "Q-THANHXUAN", "Q-NAMTULIEM", "Q-BACTULIEM", "Q-HADONG", "H-SOCSON", "H-DONGANH",
             "H-GIALAM", "H-THANHTRI", "H-MELINH", "H-BAVI", "H-PHUCTHO", "H-DANPHUONG", "H-HOAIDUC",
             "H-QUOCOAI", "H-THACHTHAT", "H-CHUONGMY", "H-THANHOAI", "H-THUONGTIN", "H-PHUXUYEN", "H-UNGHOA",
             "H-MYDUC", "TX-SONTAY"]
ORGANISATIONS = ["LDLD", "TDOAN", "HLHPN", "HND", "HCCB"]
CONTRACT_UNITS = CITY_BODIES + DEPARTMENTS + DISTRICTS + ORGANISATIONS

# Copied from the published action programme (seed article), verbatim.
TITLE_01 = ("Tăng cường công tác xây dựng, chỉnh đốn Đảng, xây dựng Đảng bộ và hệ thống chính trị thành phố "
            "trong sạch, vững mạnh, đẩy mạnh cải cách hành chính giai đoạn 2021-2025")
TITLE_10 = ("Nâng cao hiệu quả công tác phòng, chống tham nhũng; thực hành tiết kiệm, chống lãng phí "
            "giai đoạn 2021-2025")

T1 = datetime(2021, 1, 5, 8, 0, tzinfo=timezone.utc)
T2 = datetime(2023, 7, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def shipped():
    return load_events(SHIPPED, now=T1)


def by_type(events, event_type):
    return {e.data.code: e for e in events if e.type == event_type}


def test_the_shipped_registry_has_63_units_10_programmes_20_indicators(shipped):
    counts = Counter(e.type for e in shipped)
    assert counts == {"registry.unit": 63, "registry.programme": 10, "registry.indicator": 20,
                      "registry.settings": 1}


def test_the_header_says_who_reports_and_who_receives_reports(shipped):
    settings = [e.data for e in shipped if e.type == "registry.settings"][0]
    assert settings.reporting.expected_units == "default"
    assert settings.reporting.recipients == ["BTV"]
    assert settings.issuer["office_symbol"] == "VPTU"
    assert (settings.term["start"].year, settings.term["end"].year) == (2020, 2025)


def test_every_event_is_from_the_office_at_load_time(shipped):
    assert {e.source for e in shipped} == {"VPTU"}
    assert {e.time for e in shipped} == {T1}
    assert len({e.id for e in shipped}) == len(shipped)


def test_every_unit_code_of_the_contract_is_present_exactly(shipped):
    assert len(CONTRACT_UNITS) == 63 == len(set(CONTRACT_UNITS))
    assert set(by_type(shipped, "registry.unit")) == set(CONTRACT_UNITS)


def test_programmes_01_to_10_and_indicators_ct01_to_ct20(shipped):
    assert sorted(by_type(shipped, "registry.programme")) == [f"{i:02d}" for i in range(1, 11)]
    assert sorted(by_type(shipped, "registry.indicator")) == [f"CT-{i:02d}" for i in range(1, 21)]


def test_programme_titles_are_those_of_the_action_programme(shipped):
    programmes = by_type(shipped, "registry.programme")
    assert programmes["01"].data.title == TITLE_01
    assert programmes["10"].data.title == TITLE_10


def test_lead_and_responsible_units_are_registered_units(shipped):
    units = set(by_type(shipped, "registry.unit"))
    assert {p.data.lead_unit for p in by_type(shipped, "registry.programme").values()} <= units
    assert {i.data.responsible_unit for i in by_type(shipped, "registry.indicator").values()} <= units
    assert {u.data.parent for u in by_type(shipped, "registry.unit").values()} - {None} <= units


def test_reloading_the_same_file_gives_the_same_ids(shipped):
    again = load_events(SHIPPED, now=T2)
    assert [e.id for e in again] == [e.id for e in shipped]


def test_changing_one_entry_changes_only_its_id(tmp_path, shipped):
    text = SHIPPED.read_text(encoding="utf-8")
    edited_text = text.replace("email: so-khdt@hanoi.example", "email: vanthu@sokhdt.hanoi.example")
    assert edited_text.count("vanthu@sokhdt") == 1
    edited = tmp_path / "edited.yaml"
    edited.write_text(edited_text, encoding="utf-8")

    before = {e.id for e in shipped}
    after = load_events(edited, now=T2)
    assert len(after) == len(shipped)
    changed = [e for e in after if e.id not in before]
    assert [(e.type, e.data.code) for e in changed] == [("registry.unit", "SO-KHDT")]
    assert changed[0].data.email == "vanthu@sokhdt.hanoi.example"
    assert len(before - {e.id for e in after}) == 1


def write_with(tmp_path, mutate) -> Path:
    doc = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    mutate(doc)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_a_bad_indicator_direction_is_named_by_its_place_in_the_file(tmp_path):
    path = write_with(tmp_path, lambda d: d["indicators"][4].update(direction="up"))
    with pytest.raises(InvalidEvent) as exc:
        load_events(path)
    assert [p.pointer for p in exc.value.problems] == ["/indicators/4/direction"]


def test_every_bad_entry_is_named(tmp_path):
    def mutate(d):
        d["units"][2]["code"] = "hdnd"
        d["programmes"][0]["lead_unit"] = "btc tu"
        d["indicators"][19]["group"] = 7
    with pytest.raises(InvalidEvent) as exc:
        load_events(write_with(tmp_path, mutate))
    assert {p.pointer for p in exc.value.problems} == {
        "/units/2/code", "/programmes/0/lead_unit", "/indicators/19/group"}


def test_unquoted_target_years_load_like_quoted_ones(tmp_path):
    """`targets: {2025: 7.5}` is natural YAML; it means the same as `{"2025": 7.5}`."""
    text = SHIPPED.read_text(encoding="utf-8").replace('targets: {"2025": 7.5,', "targets: {2025: 7.5,", 1)
    assert text != SHIPPED.read_text(encoding="utf-8")
    path = tmp_path / "unquoted.yaml"
    path.write_text(text, encoding="utf-8")
    unquoted = load_events(path)
    quoted = load_events(SHIPPED)
    assert [e.id for e in unquoted] == [e.id for e in quoted]
    first_indicator = next(e for e in unquoted if e.type == "registry.indicator")
    assert first_indicator.data.targets["2025"] == 7.5


def test_a_file_without_version_1_is_rejected(tmp_path):
    path = write_with(tmp_path, lambda d: d.update(version=2))
    with pytest.raises(InvalidEvent) as exc:
        load_events(path)
    assert [p.pointer for p in exc.value.problems] == ["/version"]
