"""Reference data from a versioned YAML file, turned into registry events.

Event ids carry a hash of the entry, so loading the same file twice changes
nothing (duplicates), and an edited entry flows as a new event."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path

import orjson
import yaml

from shared import kafka
from shared.events import Envelope, InvalidEvent, Problem, parse_event

SECTIONS = {"units": "registry.unit", "programmes": "registry.programme", "indicators": "registry.indicator",
            "settings": "registry.settings"}
HEADER = ("name", "title", "term", "issuer", "indicator_groups", "reporting")
PUBLISHER = "VPTU"


def load_events(path: Path, *, now: datetime | None = None) -> list[Envelope]:
    """Validate every entry of the file; raise InvalidEvent naming each bad one (by its place in the file)."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or doc.get("version") != 1:
        raise InvalidEvent([_problem("/version", "the registry file must say 'version: 1'")])
    moment = (now or datetime.now(timezone.utc)).isoformat()
    doc = {**doc, "settings": [{"code": "settings", **{k: doc[k] for k in HEADER if k in doc}}]}
    events, problems = [], []
    for section, event_type in SECTIONS.items():
        for i, entry in enumerate(doc.get(section) or []):
            data = kafka.loads(kafka.dumps(_string_keys(entry)))  # dates -> ISO strings, as on the wire
            # Sorted keys: re-saving the file in another key order is not a change.
            digest = hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()[:12]
            raw = {"specversion": "1.0", "source": PUBLISHER, "type": event_type, "time": moment,
                   "id": f"registry-{event_type.split('.')[1]}-{entry.get('code')}-{digest}", "data": data}
            try:
                events.append(parse_event(raw))
            except InvalidEvent as err:
                where = "" if section == "settings" else f"/{section}/{i}"
                problems += [_problem(where + p.pointer.removeprefix("/data"), p.message) for p in err.problems]
    if problems:
        raise InvalidEvent(problems)
    return events


DEFAULT_REPORTING_KINDS = ("department", "district")
DEFAULT_REPORTING_UNITS = ("HDND", "UBND", "MTTQ")


def expected_to_report(unit: dict, expected_units: str | list[str]) -> bool:
    """Units a reporting cycle expects: by default every department, every district, HDND, UBND
    and MTTQ (contract section 5); the registry may list them instead."""
    code = unit.get("code") or unit["_id"]
    if expected_units == "default":
        return unit.get("kind") in DEFAULT_REPORTING_KINDS or code in DEFAULT_REPORTING_UNITS
    return code in expected_units


def _string_keys(value):
    """YAML reads `{2025: 7.5}` with an int key; the wire format has string keys."""
    if isinstance(value, dict):
        return {str(k): _string_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_string_keys(v) for v in value]
    return value


def _problem(pointer: str, message: str) -> Problem:
    return Problem(pointer=pointer, code="registry", message=message)
