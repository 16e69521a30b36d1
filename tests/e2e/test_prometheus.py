"""Prometheus, started as `make up` starts it, scraping the four services run as processes:
after a registry load, a plan and an update through ingest, its query API shows the
applied events and a consumer-lag series for every service, and it has loaded the alerts."""

from __future__ import annotations

import httpx
import pytest

from deploy.local import infra, prometheus
from tests import kafkatools, samples
from tests.e2e.conftest import deployed

REGISTRY = "deploy/registry/hanoi-xvii.yaml"
SERVICES = {"ingest", "programs", "reports", "notify"}


@pytest.fixture(scope="module")
def observed(infra_stack, tmp_path_factory):
    """The four services and a Prometheus scraping them every second."""
    workdir = tmp_path_factory.mktemp("prometheus")
    with deployed(infra_stack, tmp_path_factory.mktemp("prom-logs"), "prom") as deployment:
        server = prometheus.start(config_file=workdir / "prometheus.yml", data=workdir / "data",
                                  log=workdir / "prometheus.log", port=infra.free_port(), ports=deployment.ports,
                                  scrape_interval="1s")
        try:
            yield deployment, f"http://127.0.0.1:{server.port}"
        finally:
            server.stop()


async def test_prometheus_sees_applied_events_and_the_lag_of_every_service(observed):
    deployment, url = observed
    loaded = deployment.nqt("registry", "load", REGISTRY)
    assert loaded.returncode == 0 and "94 applied" in loaded.stdout, loaded.stdout + loaded.stderr
    plan = samples.plan("SO-KHDT", "SO-KHDT-2021-000001", "KH-02-SOKHDT", "02",
                        [samples.task("SO-KHDT-02-001", lead_unit="SO-KHDT", due="2021-06-30")])
    update = samples.task_update("SO-KHDT", "SO-KHDT-2021-000002", "SO-KHDT-02-001", "02", "in_progress", 40)
    async with httpx.AsyncClient(base_url=deployment.url("ingest"), timeout=30,
                                 headers={"Authorization": f"Bearer {deployment.keys['SO-KHDT']}"}) as ingest:
        assert (await ingest.post("/v1/events", json=plan)).status_code == 202
        assert (await ingest.post("/v1/events", json=update)).status_code == 202

    async with httpx.AsyncClient(base_url=url, timeout=10) as api:
        async def query(expr: str) -> dict[str, float]:
            """An instant query's result by job (`job` is the service: one scrape job each)."""
            body = (await api.get("/api/v1/query", params={"query": expr})).json()
            assert body["status"] == "success", body
            return {r["metric"].get("job", ""): float(r["value"][1]) for r in body["data"]["result"]}

        up = await kafkatools.eventually(lambda: query("up"), lambda r: r == {s: 1.0 for s in SERVICES}, timeout=60)
        applied = await kafkatools.eventually(
            lambda: query('sum by (job) (nqt_events_total{service="programs", outcome="applied"})'),
            lambda r: r.get("programs", 0) >= 96, timeout=60)  # 94 registry entries, the plan, the update
        lag = await kafkatools.eventually(lambda: query("count by (job) (nqt_consumer_lag)"),
                                          lambda r: set(r) == SERVICES, timeout=60)
        caught_up = await kafkatools.eventually(lambda: query('sum by (job) (nqt_consumer_lag{service="programs"})'),
                                                lambda r: r.get("programs") == 0.0, timeout=60)
        rules = (await api.get("/api/v1/rules")).json()["data"]["groups"]

    assert up == {s: 1.0 for s in SERVICES}
    assert applied == {"programs": 96.0}
    assert all(count >= 4 for count in lag.values())  # one series per partition held (4 per topic here)
    assert caught_up == {"programs": 0.0}
    alerts = {rule["name"]: rule["health"] for group in rules for rule in group["rules"]}
    assert {"ServiceDown", "ConsumerLagGrowing", "DeadLetters", "NotificationsFailing", "ReportOverdue"} <= set(alerts)
    assert set(alerts.values()) == {"ok"}
