"""Logs are one JSON object per line; lines about an event carry its id and unit; secrets never show."""

from __future__ import annotations

import json
import logging

import pytest
import structlog

from shared import logs


@pytest.fixture
def json_logs():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers  # leave the process as pytest set it up
    root.setLevel(level)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def test_lines_are_json_with_the_event_and_unit_and_no_secrets(capsys, json_logs):
    logs.configure("INFO", service="programs")
    with logs.about_event(event_id="SO-KHDT-2021-000123", unit="SO-KHDT"):
        logging.getLogger("uvicorn.error").info("library line")
        structlog.get_logger("nqt.programs").info("event decided", outcome="applied", api_key="nqt_abc_secret")
    logging.getLogger("nqt.programs").warning("outside any event")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    library, ours, outside = lines[-3:]
    assert (library["event_id"], library["unit"], library["service"]) == ("SO-KHDT-2021-000123", "SO-KHDT", "programs")
    assert (ours["event"], ours["outcome"], ours["unit"]) == ("event decided", "applied", "SO-KHDT")
    assert ours["api_key"] == "***" and "nqt_abc_secret" not in json.dumps(lines)
    assert "event_id" not in outside and outside["level"] == "warning"
