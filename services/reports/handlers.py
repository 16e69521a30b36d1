"""Subscribers and the scheduled job of the reports service."""

from __future__ import annotations

import asyncio
import gc
import logging
import time

import structlog
from bson import Binary
from faststream.kafka.annotations import KafkaMessage

from shared import consumer, kafka, metrics, problems, records
from shared.claims import Claim
from shared.runtime import Runtime

from services.reports import changes, gauges
from services.reports.owned import Holdings
from services.reports.service import ReportsService

log = logging.getLogger("nqt.reports")
batches = structlog.get_logger("nqt.reports.batches")
FORMATS = {"json": "application/json", "html": "text/html; charset=utf-8", "pdf": "application/pdf",
           "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
           "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
ARCHIVED = ("json", "html", "pdf", "docx")  # what an issued report is kept in (the archive's formats)


def register(runtime: Runtime, group_id: str, service_for, holdings: Holdings) -> None:
    topic = runtime.settings.topics.changes
    subscriber = kafka.batch_subscriber(runtime, topic, group_id=group_id, max_records=runtime.settings.reports_batch,
                                        listener=holdings)

    @subscriber
    async def on_changes(msg: KafkaMessage) -> None:
        await take_batch(runtime, service_for(runtime), holdings, msg.raw_message, msg.consumer)

    def partition_count() -> int:  # as the consumer's metadata says; the configured count until it does
        known = subscriber.consumer.partitions_for_topic(topic) if subscriber.consumer else None
        return len(known) if known else runtime.settings.topic_partitions

    holdings.partition_count = partition_count


async def take_batch(runtime: Runtime, service: ReportsService, holdings: Holdings, records, client) -> None:
    """A batch from the consumer, applied with the holdings locked, so that no rebalance lands
    in the middle of it, and only the records of partitions this replica still holds."""
    started = time.perf_counter()
    async with holdings.lock:
        mine = holdings.mine(records, client)
        await consumer.apply_batch(runtime.broker, mine, read=changes.read,
                                   apply=lambda batch: apply_changes(service, batch))
    COLLECTIONS.after_batch()
    # One line a batch, naming the last offset applied per partition and the status generation
    # that holds it: with the "status made" lines, where a change's time went (bench/freshness.py).
    batches.info("changes applied", records=len(mine), generation=holdings.generation,
                 upto={r.partition: r.offset for r in mine}, ms=round(1000 * (time.perf_counter() - started), 1))


class Collections:
    """Keeps what survives each batch out of Python's full garbage collections. Under load the
    full collections of everything kept (tasks, tallies, clients) held the event loop, and every
    request with it, 100-600 ms each a few times a minute.

    After a batch: a full collection, cheap since everything older is frozen (the young
    generations alone would miss what the batch's own collections moved to the oldest), then
    freeze what survives. What is frozen is still freed when nothing refers to it, but a cycle
    frozen while still in use (the batch's records and the consumer's objects around them are,
    when this runs) is never collected once dropped: so whenever the frozen objects have grown
    by `growth` times what a thorough collection left, they are thawed and collected with the
    rest, one long pause now and then instead of a little more memory after every batch."""

    def __init__(self, growth: float = 1.0, floor: int = 100_000):
        self.growth, self.floor = growth, floor
        self.settled = 0  # frozen objects right after the last thorough collection
        self.bound = 0    # at least as many as are frozen: the last count, plus what was frozen since

    def after_batch(self) -> None:
        gc.collect()
        self.bound += len(gc.get_objects(generation=2))  # what survived, all in the oldest now: the batch's
        gc.freeze()
        # `get_freeze_count` walks every frozen object (some 30 ms at a whole term's 1.2 million, every
        # batch): counted only once the bound says the limit may be passed (dead frozen objects make
        # it an overestimate), so a thorough collection comes exactly when it came before
        limit = (1 + self.growth) * max(self.settled, self.floor)
        if self.bound > limit:
            self.bound = gc.get_freeze_count()
            if self.bound > limit:
                gc.unfreeze()
                gc.collect()
                gc.freeze()
                self.settled = self.bound = gc.get_freeze_count()


COLLECTIONS = Collections()  # the collector is the process's: one for it


async def apply_changes(service: ReportsService, changes: list[dict]) -> None:
    for change in changes:
        metrics.event("reports", f"change.{change['kind']}", "received")
    with metrics.HANDLER_SECONDS.labels(service="reports", handler="changes").time():
        await service.apply_changes(changes=changes)


def rendered(report: dict, fmt: str) -> bytes:
    if fmt == "json":
        return kafka.dumps(report)
    # WeasyPrint, matplotlib and python-docx: some 45 MB and seconds of start-up, which a replica
    # that applies changes and answers the status, and has rendered no report yet, does without.
    from services.reports import render, spreadsheet, word
    if fmt == "html":
        return render.render_html(report).encode()
    if fmt == "pdf":
        return render.render_pdf(report)
    if fmt == "xlsx":
        return spreadsheet.render_xlsx(report)
    return word.render_docx(report)


# Seconds of CPU and a few hundred MB each (WeasyPrint's layout; charts drawn as PNG for Word):
# a burst of them must not take the whole process, so only so many run at once.
HEAVY = ("pdf", "docx")


class Renderer:
    """Renders reports in a worker thread, at most `limit` heavy formats at once in this process."""

    def __init__(self, limit: int, wait_s: float):
        self.slots, self.limit, self.wait_s = asyncio.Semaphore(limit), limit, wait_s

    async def render(self, report: dict, fmt: str, *, patient: bool = False) -> bytes:
        """The report in `fmt`. A heavy format waits for a free slot: up to `wait_s` (then 503 with
        Retry-After), or for as long as it takes when `patient` (the scheduler's renders)."""
        if fmt not in HEAVY:
            return await asyncio.to_thread(rendered, report, fmt)
        try:
            async with asyncio.timeout(None if patient else self.wait_s):
                await self.slots.acquire()
        except TimeoutError:
            raise problems.unavailable(f"PDF and Word reports are rendered {self.limit} at a time and none "
                                       f"finished within {self.wait_s:g} s; retry shortly") from None
        work = asyncio.ensure_future(asyncio.to_thread(rendered, report, fmt))
        work.add_done_callback(lambda _: self.slots.release())  # once the thread is done, even if no one waits
        return await asyncio.shield(work)


async def schedule_once(runtime: Runtime, service: ReportsService, renderer: Renderer) -> None:
    """Open the cycles whose cut-off has come; prepare the drafts of the reports that fell due (or
    issue them, with `auto_issue`) and issue those the Office approved. Each step is claimed
    first, and done only while the claim is still this replica's."""
    topics, broker = runtime.settings.topics, runtime.broker
    while (opening := await service.next_cycle_to_open()) is not None:
        event, claim = opening
        if not await service.claims.holds(claim):
            continue
        await broker.publish(kafka.dumps(event), topics.due, key=event["cycle"].encode())
        metrics.event("reports", "report.due", "published")
        await service.store.mark_cycle(event["cycle"], opened=True)
        log.info("opened cycle %s: %d units expected by %s", event["cycle"], len(event["expected_units"]),
                 event["due_date"])
    while (step := await service.next_step()) is not None:
        action, cycle, claim = step
        async with service.claims.keeping(claim):  # renders take a while: others must see it alive
            if action == "draft":
                await _draft(runtime, service, cycle, claim)
            else:
                await _issue(runtime, service, renderer, cycle, claim)
        if action == "issue":  # once no refresh is under way, which would make it look held again
            await service.claims.release(claim)  # an approval of it need not wait for the claim to age


async def _draft(runtime: Runtime, service: ReportsService, cycle: str, claim: Claim) -> None:
    """Tell the Office (notify, `report.drafted`) that the cycle's draft awaits its sign-off."""
    record = await service.draft(cycle)
    base = runtime.settings.reports_public_url.rstrip("/")
    record["formats"] = {fmt: f"{base}/v1/reports/standing-committee?cycle={cycle}&format={fmt}" for fmt in FORMATS}
    if not await service.claims.holds(claim):
        return
    await runtime.broker.publish(kafka.dumps(record), runtime.settings.topics.generated, key=cycle.encode())
    await service.drafted(record=record)
    metrics.event("reports", records.DRAFTED, "published")
    log.info("drafted the report for %s (revision %d); it awaits the Office's sign-off", cycle, record["revision"])


async def approve(runtime: Runtime, service: ReportsService, renderer: Renderer, *, cycle_code: str,
                  approver: str) -> dict:
    """The Office approves the cycle's draft: numbered, frozen, issued (`report.generated`, so
    delivered); the issued report (JSON). Approved again, the same report comes back."""
    async with service.signing(cycle_code) as claim:
        report = await service.approve(cycle_code=cycle_code, approver=approver)
        await _issue(runtime, service, renderer, cycle_code, claim, report)
    return report


async def send_back(service: ReportsService, *, cycle_code: str, approver: str, comment: str) -> None:
    """The Office sends the cycle's draft back with `comment`; a new draft follows."""
    async with service.signing(cycle_code):
        await service.send_back(cycle_code=cycle_code, approver=approver, comment=comment)


async def _issue(runtime: Runtime, service: ReportsService, renderer: Renderer, cycle: str, claim: Claim,
                 report: dict | None = None) -> None:
    """Store the numbered report (`report`, or the cycle's as `service.issue` gives it) in every
    format and publish `report.generated` once, unless the report went out already."""
    # Looked at under the claim: whoever held it before may have issued the report since the
    # caller decided to issue it (the scheduler reads the status before it claims).
    if (await service.store.issued_report(cycle) or {}).get("status") == "issued":
        return
    started, report = time.perf_counter(), report or await service.issue(cycle)
    files = {fmt: Binary(await renderer.render(report, fmt, patient=True)) for fmt in ("html", "pdf", "docx")}
    await service.store.update_archive(cycle, report=report, files=files)
    if not await service.claims.holds(claim):  # this replica stalled and another took over: it publishes
        log.warning("the report for %s was taken over while being rendered here", cycle)
        return
    base = runtime.settings.reports_public_url.rstrip("/")
    event = {"type": records.GENERATED, "id": f"report-generated-{cycle}", "cycle": cycle,
             "number": report["document"]["number_text"], "known_at": report["known_at"],
             "issued_on": report["document"]["date_text"], "summary": report["document"]["summary"],
             "recipients": report["document"]["recipients"], "approved_by": report["approved_by"],
             "formats": {fmt: f"{base}/v1/reports/archive/{cycle}/{fmt}" for fmt in ARCHIVED}}
    await runtime.broker.publish(kafka.dumps(event), runtime.settings.topics.generated, key=cycle.encode())
    await service.store.update_archive(cycle, status="issued")
    metrics.event("reports", "report.generated", "published")
    gauges.record_generated("issue", "all", started)
    log.info("issued the report for %s: %s", cycle, event["number"])
