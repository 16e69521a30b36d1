"""Session fixtures: the real Kafka and FerretDB, started here unless
NQT_KAFKA_BOOTSTRAP / NQT_MONGO_URL point at running ones (e.g. a real MongoDB)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import pytest

from deploy.local import infra


@dataclass(frozen=True)
class Infra:
    kafka: str
    mongo: str
    prefix: str  # isolates this run's topics and databases on shared infrastructure

    def env(self) -> dict[str, str]:
        return {"NQT_KAFKA_BOOTSTRAP": self.kafka, "NQT_MONGO_URL": self.mongo,
                "NQT_TOPIC_PREFIX": f"{self.prefix}.", "NQT_DB_PREFIX": self.prefix,
                "NQT_TOPIC_PARTITIONS": "4", "NQT_ENV": "test"}


@pytest.fixture(scope="session")
def infra_stack(tmp_path_factory) -> Infra:
    kafka, mongo = os.environ.get("NQT_KAFKA_BOOTSTRAP"), os.environ.get("NQT_MONGO_URL")
    servers = []
    workdir: Path = tmp_path_factory.mktemp("infra")
    if not kafka:
        server = infra.start_kafka(workdir / "kafka", infra.free_port(), infra.free_port(), heap="384m")
        servers.append(server)
        kafka = f"127.0.0.1:{server.port}"
    if not mongo:
        server = infra.start_ferretdb(workdir / "ferretdb", infra.free_port())
        servers.append(server)
        mongo = f"mongodb://127.0.0.1:{server.port}"
    yield Infra(kafka=kafka, mongo=mongo, prefix=f"t{secrets.token_hex(4)}")
    for server in reversed(servers):
        server.stop()


def pytest_collection_modifyitems(items):
    for item in items:
        path = str(item.fspath)
        if f"{os.sep}integration{os.sep}" in path:
            item.add_marker(pytest.mark.integration)
        elif f"{os.sep}e2e{os.sep}" in path:
            item.add_marker(pytest.mark.e2e)
        elif f"{os.sep}faults{os.sep}" in path:
            item.add_marker(pytest.mark.faults)
