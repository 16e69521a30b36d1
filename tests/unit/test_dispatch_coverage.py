"""Every event type of the contract has a rule in programs, and every change kind has a
handler (or is explicitly ignored) in each service that reads `programs.changes`: a type
or kind added to `shared` without one fails here, not in production as dead letters."""

from __future__ import annotations

import importlib

import pytest

from shared.events import DATA_MODELS, INBOUND_TYPES
from shared.records import CHANGE_KINDS


def table(module: str, name: str) -> dict:
    """The dispatch table `module.name`; the test is skipped only while that name is not there yet."""
    found = getattr(importlib.import_module(module), name, None)
    if found is None:
        pytest.skip(f"{module}.{name} does not exist yet")
    return found


def test_every_inbound_event_type_has_a_rule_in_programs():
    rules = table("services.programs.service", "RULES")
    assert sorted(set(INBOUND_TYPES) - set(rules)) == [], "event types without a rule"
    assert sorted(set(rules) - set(DATA_MODELS)) == [], "rules for types the contract does not have"


@pytest.mark.parametrize("service, module, name", [
    ("reports", "services.reports.store", "KINDS"),  # APPLIERS, and tasks written together per batch
    ("notify", "services.notify.service", "ON_CHANGE"),
])
def test_every_change_kind_is_handled_or_ignored(service, module, name):
    handlers = table(module, name)
    assert sorted(set(CHANGE_KINDS) - set(handlers)) == [], f"change kinds {service} neither handles nor ignores"
    assert sorted(set(handlers) - set(CHANGE_KINDS)) == [], f"{service} handles kinds no one sends"
