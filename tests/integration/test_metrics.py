"""The four services in one process on the real Kafka and FerretDB: after a little traffic
every /metrics passes `promtool check metrics` and carries, for each service, the series
the dashboards and alerts under deploy/ read."""

from __future__ import annotations

import subprocess
from contextlib import AsyncExitStack

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from deploy.local import infra, mailsink
from shared import lag
from tests import kafkatools, samples
from tests.integration.conftest import running

from services.ingest.app import build as build_ingest
from services.ingest.settings import IngestSettings
from services.notify.app import build as build_notify
from services.notify.settings import NotifySettings
from services.programs.app import build as build_programs
from services.programs.settings import ProgramsSettings
from services.reports.app import build as build_reports
from services.reports.settings import ReportsSettings

PROMTOOL = "/usr/bin/promtool"
SERVICES = ("ingest", "programs", "reports", "notify")
KEYS = {"key-khdt": "SO-KHDT", "key-tc": "SO-TC"}
REGISTRY = [
    samples.envelope("VPTU", "reg-u1", "registry.unit", samples.registry_unit("VPTU", "Văn phòng Thành ủy", "office")),
    samples.envelope("VPTU", "reg-u2", "registry.unit", samples.registry_unit("SO-KHDT", "Sở Kế hoạch và Đầu tư")),
    samples.envelope("VPTU", "reg-u3", "registry.unit", samples.registry_unit("SO-TC", "Sở Tài chính")),
    samples.envelope("VPTU", "reg-p2", "registry.programme", samples.registry_programme("02")),
]


def series(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [(s.name, s.labels, s.value) for family in text_string_to_metric_families(text) for s in family.samples]


class Seen:
    """The samples of one scrape, minus a baseline: other tests in this process share the registry."""

    def __init__(self, text: str, baseline: str = ""):
        self.samples = series(text)
        self.baseline = series(baseline) if baseline else []

    def value(self, name: str, **labels: str) -> float:
        def total(samples):
            return sum(v for n, ls, v in samples if n == name and labels.items() <= ls.items())
        return total(self.samples) - total(self.baseline)

    def current(self, name: str, **labels: str) -> float:
        """A gauge as it is now (the last app that set it is this test's)."""
        return sum(v for n, ls, v in self.samples if n == name and labels.items() <= ls.items())

    def has(self, name: str, where=lambda labels: True, **labels: str) -> bool:
        return any(n == name and labels.items() <= ls.items() and where(ls) for n, ls, _ in self.samples)


@pytest.fixture
def fast_lag(monkeypatch):
    monkeypatch.setattr(lag, "INTERVAL_S", 0.5)


async def test_every_service_exposes_valid_metrics_with_the_series_dashboards_and_alerts_read(isolated, fast_lag):
    controller, mailbox = mailsink.serve(infra.free_port(), None)
    clock = "2021-04-05T09:00:00+07:00"
    apps = {
        "ingest": build_ingest(isolated.settings(IngestSettings, ingest_dev_keys=KEYS)),
        "programs": build_programs(isolated.settings(ProgramsSettings)),
        "reports": build_reports(isolated.settings(ReportsSettings, reports_gauges_seconds=0.5, clock_fixed=clock)),
        "notify": build_notify(isolated.settings(NotifySettings, clock_fixed=clock, smtp_port=controller.port)),
    }
    topics = isolated.settings(ProgramsSettings).topics
    ours = lambda labels: labels["topic"].startswith(isolated.prefix)  # noqa: E731  (this test's topics)
    khdt, tc = {"Authorization": "Bearer key-khdt"}, {"Authorization": "Bearer key-tc"}
    plan = samples.plan("SO-KHDT", "KHDT-1", "KH-02", "02", [samples.task("T-1", lead_unit="SO-KHDT"),
                                                             samples.task("T-2", lead_unit="SO-KHDT")])
    update = samples.task_update("SO-KHDT", "KHDT-2", "T-1", "02", "in_progress", 40)
    invalid = samples.plan("SO-TC", "STC-1", "KH-02-TC", "02", [samples.task("T-9", lead_unit="SO-TC", milestones=0)])
    baseline = generate_latest().decode()
    try:
        async with AsyncExitStack() as stack:
            clients = {name: await stack.enter_async_context(running(app)) for name, app in apps.items()}
            await isolated.load_registry(topics, REGISTRY)
            ingest = clients["ingest"]
            sent = [await ingest.post("/v1/events", json=plan, headers=khdt),
                    await ingest.post("/v1/events", json=plan, headers=khdt),  # a duplicate
                    await ingest.post("/v1/events", json=update, headers=khdt),
                    await ingest.post("/v1/events", json=invalid, headers=tc),
                    await ingest.post("/v1/events", json=update, headers={"Authorization": "Bearer wrong"})]
            assert [r.status_code for r in sent] == [202, 202, 202, 202, 401]
            await kafkatools.produce(isolated.kafka, topics.accepted, [b"\x00not json"])  # a dead letter

            async def status():
                return (await clients["reports"].get("/v1/status")).json()

            await kafkatools.eventually(status, lambda s: s["programmes"] and
                                        s["programmes"][0]["tasks"]["in_progress"] == 1, timeout=60)
            report = await clients["reports"].get("/v1/reports/standing-committee", params={"cycle": "2021-Q1"})
            assert report.status_code == 200

            async def scrape():
                for client in clients.values():
                    await client.get("/healthz")
                return {name: (await client.get("/metrics")).text for name, client in clients.items()}

            def complete(texts):
                seen = Seen(texts["ingest"], baseline)
                return (all(seen.has("nqt_consumer_lag", ours, service=s) for s in SERVICES)
                        and all(seen.value("nqt_job_runs_total", service=s, what="measuring consumer lag") >= 2
                                for s in SERVICES)
                        and seen.value("nqt_notifications_total", result="sent") >= 1
                        and seen.value("nqt_events_total", service="programs", outcome="applied") >= 6)

            try:
                texts = await kafkatools.eventually(scrape, complete, timeout=60)
            except AssertionError:
                raise AssertionError(f"missing series; mails: {len(mailbox.snapshot())}") from None
    finally:
        controller.stop()

    for name, text in texts.items():
        checked = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True)
        assert checked.returncode == 0, f"{name}: {checked.stdout}{checked.stderr}"
    seen = Seen(texts["reports"], baseline)  # one process, one registry: every service's series in each scrape
    for service in SERVICES:
        assert seen.has("nqt_consumer_lag", ours, service=service), service
        assert seen.value("nqt_events_total", service=service, outcome="received") >= 1, service
        assert seen.value("nqt_handler_seconds_count", service=service) >= 1, service
        assert seen.value("nqt_http_requests_total", service=service, route="/healthz", status="200") >= 1
        assert seen.value("nqt_http_request_seconds_count", service=service, route="/healthz") >= 1
        assert seen.value("nqt_job_runs_total", service=service, what="measuring consumer lag", result="ok") >= 1
        assert seen.value("nqt_mongo_command_seconds_count", database=f"{isolated.prefix}_{service}") >= 1
    # 4 registry entries, the plan and the update applied; the repeated plan a duplicate; the bad plan rejected
    assert seen.value("nqt_events_total", service="programs", outcome="applied") == 6
    assert seen.value("nqt_events_total", service="programs", outcome="duplicate", type="plan.submitted") == 1
    assert seen.value("nqt_events_total", service="programs", outcome="rejected", code="invalid_plan") == 1
    assert seen.value("nqt_events_total", service="ingest", outcome="received") == 4
    assert seen.value("nqt_events_total", service="ingest", outcome="published") == 4
    assert seen.value("nqt_http_requests_total", service="ingest", route="/v1/events", status="401") == 1
    assert seen.value("nqt_dead_letters_total", topic=topics.accepted, error="Poison") == 1
    assert seen.value("nqt_notifications_total", channel="email", result="sent") >= 1
    assert seen.current("nqt_programme_tasks", programme="02", status="in_progress") == 1
    assert seen.current("nqt_programme_progress_pct", programme="02") == 20.0
    assert seen.value("nqt_report_generation_seconds_count", format="json", trigger="request") >= 1
    assert seen.has("nqt_report_last_success_timestamp_seconds", trigger="request")
    assert seen.has("nqt_report_overdue_cycles") and seen.has("nqt_report_overdue_seconds")
    assert seen.value("nqt_job_runs_total", service="reports", what="the programme and report gauges",
                      result="ok") >= 1
    assert not any(set(labels) & {"id", "event_id", "task_id"} for _, labels, _ in seen.samples)
