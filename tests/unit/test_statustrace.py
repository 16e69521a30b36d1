"""bench/statustrace.py: a status answer split by reports' own timestamps of it."""

from __future__ import annotations

import pytest

from bench import statustrace


def test_an_answer_is_split_into_before_in_and_after_the_app_with_the_collections_it_met(tmp_path):
    (tmp_path / "probe.txt").write_text("reports 0.010000 100.000000\nfloor 0.004000 100.011000\n"
                                        "reports 0.002000 100.200000\n")
    trace = tmp_path / "trace"
    trace.mkdir()
    (trace / "reports-1.txt").write_text("req 100.006000 100.009000\ngc 2 100.001000 100.004000 MainThread\n"
                                         "req 100.200500 100.201000\ngctotal 2 7 0.500000\n")
    client = statustrace.probed(tmp_path / "probe.txt")
    answers, collections, totals = statustrace.traced(trace)

    first, second = statustrace.split(client["reports"], answers, collections)

    assert first == pytest.approx((0.010, 0.006, 0.003, 0.001, 0.003))
    assert second == pytest.approx((0.002, 0.0005, 0.0005, 0.001, 0.0))
    assert statustrace.paired(client) == pytest.approx([0.006])  # the second round had no floor answer
    assert totals == ["reports-1 gen. 2: 7 collections, 0.5 s"]


def test_an_answer_reports_did_not_trace_is_left_out(tmp_path):
    (tmp_path / "probe.txt").write_text("reports 0.010000 100.000000\n")
    trace = tmp_path / "trace"
    trace.mkdir()
    (trace / "reports-1.txt").write_text("req 100.500000 100.501000\n")  # after the answer came back

    rows = statustrace.split(statustrace.probed(tmp_path / "probe.txt")["reports"], *statustrace.traced(trace)[:2])

    assert rows == []
