"""The Prometheus configuration under deploy/prometheus: the alert rules are valid and do
what alerts_test.yml says (`promtool check rules`, `promtool test rules`), the scrape
configuration is valid as shipped and as `make up` writes it, and every metric the
alerts read is one the services export."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from deploy.local import prometheus, stack
from shared import metrics

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus"
PROMTOOL = "/usr/bin/promtool"  # Debian's `prometheus` package; deploy/local/setup.sh installs it


def promtool(*args: str, cwd: Path = RULES) -> subprocess.CompletedProcess:
    if not Path(PROMTOOL).exists():
        pytest.fail(f"{PROMTOOL} is missing: run `make setup` (Debian package prometheus)")
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def exported_names() -> set[str]:
    """Every sample name the services' own metrics can expose."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    names = set()
    for metric in vars(metrics).values():
        if isinstance(metric, MetricWrapperBase):
            for family in metric.describe():
                names |= {family.name + suffix for suffix in suffixes[family.type]}
    return names


def test_the_alert_rules_are_valid():
    checked = promtool("check", "rules", "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_alert_rules_pass_their_unit_tests():
    tested = promtool("test", "rules", "alerts_test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_the_alerts_cover_what_operations_asked_for():
    rules = yaml.safe_load((RULES / "alerts.yml").read_text())["groups"][0]["rules"]
    names = {rule["alert"] for rule in rules}
    assert {"ServiceDown", "ConsumerLagGrowing", "DeadLetters", "NotificationsFailing", "ReportOverdue"} <= names
    tests = yaml.safe_load((RULES / "alerts_test.yml").read_text())["tests"]
    tested = {case["alertname"] for test in tests for case in test["alert_rule_test"] if case["exp_alerts"]}
    assert tested == names, "every alert has a test in which it fires"


def test_every_metric_the_alerts_read_is_exported():
    text = (RULES / "alerts.yml").read_text()
    used = set(re.findall(r"\bnqt_[a-z_]+\b", text))
    assert used and used <= exported_names(), used - exported_names()


@pytest.mark.parametrize("generated", [False, True], ids=["shipped", "as make up writes it"])
def test_the_scrape_configuration_is_valid_and_scrapes_the_four_services(generated, tmp_path):
    if generated:
        path = tmp_path / "prometheus.yml"
        path.write_text(yaml.safe_dump(prometheus.config({"ingest": 18081, "reports": 18082, "notify": 18083,
                                                          "programs": 18084}, scrape_interval="1s")))
    else:
        path = RULES / "prometheus.yml"
    checked = promtool("check", "config", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    doc = yaml.safe_load(path.read_text())
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in doc["scrape_configs"]}
    ports = {"ingest": 18081, "reports": 18082, "notify": 18083, "programs": 18084} if generated else stack.SERVICES
    assert targets == {name: [f"127.0.0.1:{port}"] for name, port in ports.items()}
    assert len(doc["rule_files"]) == 1 and doc["rule_files"][0].endswith("alerts.yml")
