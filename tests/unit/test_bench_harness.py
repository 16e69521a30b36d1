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
