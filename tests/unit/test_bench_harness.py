"""The bench harness's own arithmetic and its results file (the figures themselves are `make bench`'s)."""

from __future__ import annotations

import json
import os

from bench import harness


def test_percentiles_and_spread():
    values = [float(v) for v in range(1, 101)]
    assert harness.percentile(values, 50) == 50.5
    assert harness.percentile(values, 99) == 99.01
    assert harness.spread([3.0, 1.0, 2.0]) == (1.0, 2.0, 3.0)
    assert harness.spread([float("nan"), 4.0]) == (4.0, 4.0, 4.0)  # a run without the figure is left out


def test_results_are_merged_with_other_scripts_keys(tmp_path):
    path = tmp_path / "latest.json"
    path.write_text(json.dumps({"report_json_s": 0.4, "rss_mb": {"reports": {"python": 300.0}}}))
    harness.write_results({"ingest_single_ratio": 0.6}, script="ingest", rss={"ingest": 90.0, "kafka": 600.0},
                          path=path)
    written = json.loads(path.read_text())
    assert written["report_json_s"] == 0.4 and written["ingest_single_ratio"] == 0.6
    assert written["cpu_count"] == os.cpu_count() and written["kafka"] and written["ferretdb"]
    assert written["rss_mb"] == {"reports": {"python": 300.0}, "ingest": {"ingest": 90.0, "kafka": 600.0}}
    assert written["max_rss_mb"] == 300.0  # services only: Kafka and FerretDB are not the project's processes
    assert written["runs"]["ingest"]["keys"] == ["ingest_single_ratio"]


def test_rss_sampler_sees_this_process():
    with harness.RssSampler({"me": os.getpid()}, interval=0.01) as sampler:
        bytearray(20 * 1024 * 1024)
    assert sampler.peak["me"] > 20


def test_a_probes_time_is_split_into_hops_by_the_records_and_log_lines_it_went_through():
    """bench/hops.py: the change's offset finds the batch that applied it, whose generation finds the
    first status made with it; a batch or a status of another partition or generation is passed over."""
    from types import SimpleNamespace as Rec

    from bench import hops

    probe = hops.Stamped(ack=10.000, seen=10.300)
    value = lambda **v: json.dumps(v).encode()  # noqa: E731
    accepted = [Rec(value=value(source="SO-TC", id="E1"), timestamp=9_950),
                Rec(value=value(source="SO-TC", id="E2"), timestamp=9_990)]
    changes = [Rec(value=value(kind="task", event_key="SO-TC:E1"), timestamp=10_040, partition=3, offset=7)]
    applied = [(10.100, {"upto": {"3": 6}, "generation": 4}), (10.200, {"upto": {"1": 9}, "generation": 5}),
               (10.220, {"upto": {"3": 8}, "generation": 6})]
    made = [(10.210, {"generation": 5}), (10.240, {"generation": 5}), (10.250, {"generation": 6})]
    hops.stamp({"SO-TC:E1": probe}, accepted, changes, applied, made)

    assert (probe.accepted, probe.changed, probe.applied, probe.made) == (9.95, 10.04, 10.22, 10.25)
    figures = hops.percentiles([probe], harness.percentile)
    assert {name: round(h["p50"]) for name, h in figures.items()} == {
        "ingest: record -> 202": 50, "programs: record -> change": 90, "from the 202 -> change": 40,
        "reports: change -> applied": 180, "status: applied -> made": 30, "poller: made -> seen": 50}
