"""The Grafana dashboards under deploy/grafana: valid JSON on the provisioned data source,
every query valid PromQL (promtool checks them as recording rules) and reading only
metrics the services export or Prometheus adds."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.unit.test_alerts import exported_names, promtool

ROOT = Path(__file__).resolve().parents[2]
BOARDS = {name: json.loads((ROOT / "deploy" / "grafana" / f"{name}.json").read_text())
          for name in ("pipeline", "programmes")}
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def queries(board: dict) -> list[str]:
    return [target["expr"] for panel in board["panels"] for target in panel.get("targets", [])]


@pytest.mark.parametrize("name", BOARDS)
def test_panels_use_the_provisioned_prometheus_and_do_not_overlap(name):
    board = BOARDS[name]
    assert board["uid"] == f"nqt-{name}" and board["panels"]
    cells = set()
    for panel in board["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24
        mine = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
        assert not cells & mine, f"panel {panel['title']!r} overlaps another"
        cells |= mine


@pytest.mark.parametrize("name", BOARDS)
def test_every_query_is_valid_promql_on_exported_metrics(name, tmp_path):
    exprs = queries(BOARDS[name])
    for variable, value in GRAFANA_VARIABLES.items():
        exprs = [expr.replace(variable, value) for expr in exprs]
    rules = {"groups": [{"name": name, "rules": [{"record": f"dashboard:query_{i}", "expr": expr}
                                                 for i, expr in enumerate(exprs)]}]}
    (tmp_path / "queries.yml").write_text(yaml.safe_dump(rules))
    checked = promtool("check", "rules", "queries.yml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    used = {m for expr in exprs for m in re.findall(r"\bnqt_[a-z_]+\b", expr)}
    assert used <= exported_names(), used - exported_names()


def test_the_pipeline_board_shows_outcomes_lag_dead_letters_latency_and_http():
    text = " ".join(queries(BOARDS["pipeline"]))
    for needed in ("sum by (outcome) (rate(nqt_events_total", "nqt_consumer_lag", "nqt_dead_letters_total",
                   "nqt_handler_seconds_bucket", "nqt_http_requests_total", "nqt_http_request_seconds_bucket"):
        assert needed in text


def test_the_programmes_board_shows_tasks_progress_and_reports():
    text = " ".join(queries(BOARDS["programmes"]))
    for needed in ("nqt_programme_tasks", "nqt_programme_progress_pct", "nqt_programme_plans", "nqt_programme_issued",
                   "nqt_report_overdue_cycles", "nqt_report_last_success_timestamp_seconds"):
        assert needed in text
