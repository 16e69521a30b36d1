"""Prometheus (Debian's /usr/bin/prometheus) scraping the four services on 127.0.0.1.

The configuration is deploy/prometheus/prometheus.yml with the ports actually used and
the alert rules beside it; `make up` (deploy/local/stack.py) and the end-to-end test
start it through `start`, so the tests see the Prometheus a developer runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from deploy.local import infra

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deploy" / "prometheus" / "prometheus.yml"
DEBIAN_BINARY = "/usr/bin/prometheus"


def config(ports: dict[str, int], *, scrape_interval: str | None = None) -> dict:
    """The template with each service's job pointed at 127.0.0.1:<its port> and the rule files
    named by absolute path; `scrape_interval` (e.g. "1s") sets scraping and rule evaluation."""
    doc = yaml.safe_load(TEMPLATE.read_text())
    doc["rule_files"] = [str(TEMPLATE.parent / name) for name in doc.get("rule_files", [])]
    for job in doc["scrape_configs"]:
        job["static_configs"] = [{"targets": [f"127.0.0.1:{ports[job['job_name']]}"]}]
    if scrape_interval:
        doc["global"].update(scrape_interval=scrape_interval, evaluation_interval=scrape_interval)
    return doc


def binary() -> str:
    found = shutil.which("prometheus") or (DEBIAN_BINARY if Path(DEBIAN_BINARY).exists() else None)
    if not found:
        raise RuntimeError("prometheus is not installed; `make setup` installs it (Debian: apt-get install "
                           "prometheus)")
    return found


def start(*, config_file: Path, data: Path, log: Path, port: int, ports: dict[str, int],
          scrape_interval: str | None = None, detach: bool = False) -> infra.Server:
    """Write the configuration for `ports` to `config_file` and start Prometheus on 127.0.0.1:`port`."""
    config_file.parent.mkdir(parents=True, exist_ok=True)
    config_file.write_text(yaml.safe_dump(config(ports, scrape_interval=scrape_interval), sort_keys=False))
    data.mkdir(parents=True, exist_ok=True)
    proc = infra._spawn([binary(), f"--config.file={config_file}", f"--storage.tsdb.path={data}",
                         f"--web.listen-address=127.0.0.1:{port}"], log, detach)
    return infra._listening(infra.Server("Prometheus", port, proc, log), 30)
