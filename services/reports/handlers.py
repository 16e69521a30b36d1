"""Subscribers and the scheduled job of the reports service."""

from __future__ import annotations

import asyncio
import logging
import time

from bson import Binary
from faststream.kafka.annotations import KafkaMessage

from shared import consumer, kafka, metrics
from shared.runtime import Runtime

from services.reports import changes, gauges, render, word
from services.reports.service import ReportsService

log = logging.getLogger("nqt.reports")
FORMATS = {"json": "application/json", "html": "text/html; charset=utf-8", "pdf": "application/pdf",
           "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document"}


def register(runtime: Runtime, group_id: str, service_for) -> None:
    @kafka.batch_subscriber(runtime, runtime.settings.topics.changes, group_id=group_id,
                            max_records=runtime.settings.reports_batch)
    async def on_changes(msg: KafkaMessage) -> None:
        await consumer.apply_batch(runtime.broker, msg.raw_message, read=changes.read,
                                apply=lambda batch: apply_changes(service_for(runtime), batch))


async def apply_changes(service: ReportsService, changes: list[dict]) -> None:
    for change in changes:
        metrics.event("reports", f"change.{change['kind']}", "received")
    with metrics.HANDLER_SECONDS.labels(service="reports", handler="changes").time():
        await service.store.apply_changes(changes)


def rendered(report: dict, fmt: str) -> bytes:
    if fmt == "json":
        return kafka.dumps(report)
    if fmt == "html":
        return render.render_html(report).encode()
    if fmt == "pdf":
        return render.render_pdf(report)
    return word.render_docx(report)


async def schedule_once(runtime: Runtime, service: ReportsService) -> None:
    """Open the cycles whose cut-off has come; issue the reports that fell due."""
    topics, broker = runtime.settings.topics, runtime.broker
    for event in await service.due_events():
        await broker.publish(kafka.dumps(event), topics.due, key=event["cycle"].encode())
        metrics.event("reports", "report.due", "published")
        await service.store.mark_cycle(event["cycle"], opened=True)
        log.info("opened cycle %s: %d units expected by %s", event["cycle"], len(event["expected_units"]),
                 event["due_date"])
    settings, _ = await service.cycles_of_term()
    term = "-".join(settings["term"][k][:4] for k in ("start", "end")) if settings.get("term") else "term"
    for cycle in await service.reports_to_issue():
        started = time.perf_counter()
        report = await service.issue(cycle, term)
        files = {fmt: Binary(await asyncio.to_thread(rendered, report, fmt)) for fmt in ("html", "pdf", "docx")}
        await service.store.update_archive(cycle, report=report, files=files)
        base = runtime.settings.reports_public_url.rstrip("/")
        event = {"id": f"report-generated-{cycle}", "cycle": cycle, "number": report["document"]["number_text"],
                 "known_at": report["known_at"], "issued_on": report["document"]["date_text"],
                 "summary": report["document"]["summary"], "recipients": report["document"]["recipients"],
                 "formats": {fmt: f"{base}/v1/reports/archive/{cycle}/{fmt}" for fmt in FORMATS}}
        await broker.publish(kafka.dumps(event), topics.generated, key=cycle.encode())
        await service.store.update_archive(cycle, status="issued")
        metrics.event("reports", "report.generated", "published")
        gauges.record_generated("issue", "all", started)
        log.info("issued the report for %s: %s", cycle, event["number"])
