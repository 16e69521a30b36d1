"""docker-compose.yml cannot run here (no Docker engine), so check that it names
only what exists: service modules, ports, settings and files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from services.ingest.settings import IngestSettings
from services.notify.settings import NotifySettings
from services.programs.settings import ProgramsSettings
from services.reports.settings import ReportsSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = {"ingest": IngestSettings, "reports": ReportsSettings, "notify": NotifySettings,
            "programs": ProgramsSettings}
KNOWN_VARS = {f"NQT_{name.upper()}" for cls in SERVICES.values() for name in cls.model_fields}


def test_the_four_services_kafka_and_mongodb_are_there():
    assert set(SERVICES) | {"kafka", "mongo"} <= set(COMPOSE["services"])
    assert COMPOSE["services"]["kafka"]["image"].startswith("apache/kafka:")
    assert COMPOSE["services"]["mongo"]["image"] == "mongo:7"


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_runs_its_own_module_on_its_own_port(name):
    service = COMPOSE["services"][name]
    assert service["command"] == ["python", "-m", f"services.{name}"]
    assert (ROOT / "services" / name / "__main__.py").exists()
    port = service["environment"][f"NQT_{name.upper()}_PORT"]
    assert port == SERVICES[name].model_fields[f"{name}_port"].default
    assert service["ports"] == [f"127.0.0.1:{port}:{port}"]
    assert service["healthcheck"]["test"][-1] == str(port)
    assert service["depends_on"]["kafka"] == {"condition": "service_healthy"}
    assert service["depends_on"]["mongo"] == {"condition": "service_healthy"}


def test_every_variable_it_sets_or_reads_is_a_setting_in_the_code():
    text = (ROOT / "docker-compose.yml").read_text()
    named = set(re.findall(r"\b(NQT_[A-Z0-9_]+)", text))
    assert named, "the compose file configures the services with NQT_ variables"
    assert named <= KNOWN_VARS, f"not settings in the code: {sorted(named - KNOWN_VARS)}"


def test_infrastructure_has_health_checks_and_everything_binds_to_loopback():
    for name, service in COMPOSE["services"].items():
        for mapping in service.get("ports", []):
            assert mapping.startswith("127.0.0.1:"), (name, mapping)
    for name in ("kafka", "mongo"):
        assert COMPOSE["services"][name]["healthcheck"]["test"]


def test_the_image_copies_only_what_exists():
    dockerfile = (ROOT / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (\S+)", dockerfile, flags=re.M):
        assert (ROOT / source).exists(), source
    for module in re.findall(r'"-m", "([\w.]+)"', (ROOT / "docker-compose.yml").read_text()):
        path = ROOT / module.replace(".", "/")
        assert path.with_suffix(".py").exists() or (path / "__main__.py").exists(), module
