"""Use cases of the reports service: the live status, the report to the Standing
Committee for any cycle (as of its cut-off, as known at any instant), the scheduler
that opens cycles and drafts their reports, and the Office's sign-off that numbers and
issues each report exactly once."""

from __future__ import annotations

import asyncio
import logging
import secrets
from contextlib import asynccontextmanager
from datetime import date, datetime, time, timedelta
from time import monotonic

from shared import records
from shared.claims import Claim, Claims
from shared.clock import Clock
from shared.cycles import Cycle, UnknownCycle, due_date, label, next_quarter, parse_cycle, term_cycles
from shared.events import utc_iso, utc_now
from shared.registry import expected_to_report

from services.reports import document, domain, rollup
from services.reports.domain import BadRequest
from services.reports.snapshot import Snapshot
from services.reports.store import ReportsStore

log = logging.getLogger("nqt.reports")


class Busy(RuntimeError):
    """Another call or replica holds the report's sign-off for longer than it should."""


def end_of_day(day: date, clock: Clock) -> str:
    """The last instant of `day` in the reporting time zone, as sortable UTC ISO."""
    return utc_iso(datetime.combine(day, time.max, tzinfo=clock.tz))


def parse_known_at(value: str | None, clock: Clock) -> str | None:
    """An instant (RFC 3339) or a day (YYYY-MM-DD: as known at the end of that day)."""
    if not value:
        return None
    try:
        if len(value) == 10:
            return end_of_day(date.fromisoformat(value), clock)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as err:
        raise BadRequest(f"known_at must be a date (2021-04-05) or an instant with offset: {err}") from err
    if moment.tzinfo is None:
        raise BadRequest("known_at needs a UTC offset, e.g. 2021-04-05T09:00:00+07:00")
    return utc_iso(moment)


def reporting_cycle(today: date) -> Cycle:
    """The cycle being reported on: the latest quarter whose cut-off has come."""
    cycle = parse_cycle(f"{today.year + 1}-Q1")
    while cycle.cut_off > today:
        cycle = parse_cycle(_previous_quarter(cycle.code))
    return cycle


def _previous_quarter(code: str) -> str:
    year, quarter = int(code[:4]), int(code[-1])
    return f"{year - 1}-Q4" if quarter == 1 else f"{year}-Q{quarter - 1}"


class ReportsService:
    def __init__(self, store: ReportsStore, clock: Clock, *, due_working_days: int | None = None,
                 claims: Claims | None = None, auto_issue: bool = False, status_limit: int | None = None):
        self.store = store
        self.clock = clock
        self.due_working_days = due_working_days
        self.claims = claims  # who opens a cycle and issues its report, among replicas
        self.auto_issue = auto_issue  # issue reports once due, with no one's sign-off
        self.status_limit = status_limit  # tasks listed per list in the status (None: all); the rest paged

    def _due(self, cycle: Cycle, settings: dict) -> date:
        days = self.due_working_days
        if days is None:
            days = (settings.get("reporting") or {}).get("due_working_days", 2)
        return due_date(cycle, days)

    def report_due(self, *, cycle: Cycle, settings: dict) -> date:
        """The day units' reports for `cycle` are due."""
        return self._due(cycle, settings)

    async def apply_changes(self, *, changes: list[dict]) -> None:
        """Apply a batch of changes (as `changes.read` gives them), from Kafka or from a replay."""
        await self.store.apply_changes(changes)

    async def live_status(self) -> dict:
        """Everything applied so far, as of today; unit reports of the cycle being reported on."""
        snapshot, moment = await self._live_moment()
        return rollup.build(snapshot, moment, limit=self.status_limit)

    async def status_tasks(self, *, which: str, offset: int, limit: int) -> dict:
        """A page of one of the live status's task lists (`rollup.OVERDUE`, `rollup.DUE_NEXT`)."""
        snapshot, moment = await self._live_moment()
        return rollup.task_page(snapshot, moment, which, offset=offset, limit=limit)

    async def _live_moment(self) -> tuple[Snapshot, rollup.Moment]:
        cycle = reporting_cycle(self.clock.today())
        snapshot = await self.store.live(cycle=cycle.code, window_start=end_of_day(cycle.start - timedelta(days=1),
                                                                                   self.clock))
        return snapshot, self._moment(snapshot, cycle, self.clock.today(), utc_now())

    def _moment(self, snapshot: Snapshot, cycle: Cycle, as_of: date, known_at: str) -> rollup.Moment:
        due = self._due(cycle, snapshot.settings)
        following = next_quarter(cycle)
        return rollup.Moment(cycle=cycle, as_of=as_of, due_date=due, due_instant=end_of_day(due, self.clock),
                             known_at=known_at, next_due_date=self._due(following, snapshot.settings),
                             by_event_time=self.clock.fixed is not None)

    async def report(self, *, cycle_code: str, known_at: str | None = None) -> dict:
        """The report for a cycle as of its cut-off; exactly the issued one when `known_at`
        is the instant it was issued at."""
        cycle = _cycle(cycle_code)
        today = self.clock.today()
        as_of = min(cycle.cut_off, today)
        window_start = end_of_day(cycle.start - timedelta(days=1), self.clock)
        if known_at is None and cycle.cut_off >= today:
            snapshot = await self.store.live(cycle=cycle.code, window_start=window_start)
        else:
            snapshot = await self.store.as_of(cycle=cycle.code, window_start=window_start,
                                              cut_off=end_of_day(as_of, self.clock),
                                              known_at=known_at or utc_now())
        issued = await self.store.issued_report(cycle.code)
        is_issued = issued is not None and issued.get("known_at") == known_at and issued.get("number")
        body = rollup.build(snapshot, self._moment(snapshot, cycle, as_of, known_at or utc_now()))
        recipients = (snapshot.settings.get("reporting") or {}).get("recipients", ["BTV"])
        body["document"] = document.frame(
            settings=snapshot.settings, cycle_label=body["cycle_label"],
            recipients=[(snapshot.units.get(r) or {}).get("name", r) for r in recipients],
            issued_on=date.fromisoformat(issued["issued_on"]) if is_issued else today,
            number=issued["number"] if is_issued else None)
        body.update({k: issued.get(k) if is_issued else None for k in ("approved_by", "approved_at")})
        body["known_on"] = issued["issued_on"] if is_issued else self._known_on(body["known_at"]).isoformat()
        return body

    def _known_on(self, known_at: str) -> date:
        """The day up to which the report says it received information: that of `known_at`, but never
        past the service's day, which a replay of past events pins (arrival times stay on the wall
        clock, a date the report's own timeline never reached)."""
        day = datetime.fromisoformat(known_at.replace("Z", "+00:00")).astimezone(self.clock.tz).date()
        return min(day, self.clock.today()) if self.clock.fixed else day

    # --- the scheduler ---
    async def cycles_of_term(self) -> tuple[dict, list[Cycle]]:
        """The registry header and the cycles that start and end within its term."""
        settings = await self.store.settings()
        term = settings.get("term")
        if not term:
            return settings, []
        start, end = date.fromisoformat(term["start"]), date.fromisoformat(term["end"])
        cycles = [c for c in term_cycles(start.year, end.year) if start <= c.start and c.cut_off <= end]
        return settings, cycles

    async def next_cycle_to_open(self) -> tuple[dict, Claim] | None:
        """`report.due` of the first cycle whose cut-off has come and that no one opened, with this
        replica's claim to open it; None when there is no such cycle this replica may open now."""
        settings, cycles = await self.cycles_of_term()
        for cycle in cycles:
            if cycle.cut_off > self.clock.today():
                return None
            state = await self.store.cycle(cycle.code)
            if state and state.get("opened"):
                continue
            claim = await self.claims.take(f"open|{cycle.code}")
            if claim is not None:
                return await self._due_event(cycle, settings), claim
        return None

    async def _due_event(self, cycle: Cycle, settings: dict) -> dict:
        units = await self.store.units()
        expected = (settings.get("reporting") or {}).get("expected_units", "default")
        return {"id": f"report-due-{cycle.code}", "cycle": cycle.code, "kind": cycle.kind,
                "window": {"start": cycle.start.isoformat(), "cut_off": cycle.cut_off.isoformat()},
                "due_date": self._due(cycle, settings).isoformat(),
                "expected_units": sorted(c for c, u in units.items() if expected_to_report(u, expected))}

    async def next_step(self) -> tuple[str, str, Claim] | None:
        """The scheduler's next step over the reports that fell due, with this replica's claim on it:
        ("draft", cycle) to prepare a cycle's draft (again, once sent back) and tell the Office, or
        ("issue", cycle) to issue a report the Office approved (or, with `auto_issue`, any report:
        then numbered in the order of their cycles). None when there is nothing this replica may do
        now: no cycle is drafted before the cycles before it were opened."""
        settings, cycles = await self.cycles_of_term()
        for cycle in cycles:
            if self._due(cycle, settings) >= self.clock.today():
                continue
            report = await self.store.issued_report(cycle.code) or {}
            if report.get("status") == "issued":
                continue
            state = await self.store.cycle(cycle.code)
            if not (state and state.get("opened")):
                return None
            step = self._step(cycle.code, report)
            claim = await self.claims.take(step[1]) if step else None
            if claim is not None:
                return step[0], cycle.code, claim
            if self.auto_issue:
                return None
        return None

    def _step(self, cycle_code: str, report: dict) -> tuple[str, str] | None:
        """What the scheduler does next about a report not issued yet, and the subject it claims."""
        if self.auto_issue or report.get("status") in domain.NUMBERED:
            return "issue", f"issue|{cycle_code}"
        if report.get("status") in (None, "returned"):
            return "draft", f"draft|{cycle_code}|{report.get('revision', 0) + 1}"
        return None  # a draft awaiting sign-off

    async def overdue_reports(self) -> tuple[int, float]:
        """The cycles whose due date has passed (by this service's clock) without an issued
        report, and how many seconds the oldest of them has been past its due date (0: none)."""
        settings, cycles = await self.cycles_of_term()
        now, issued = self.clock.now(), await self.store.issued_cycles()
        late = [datetime.combine(self._due(c, settings), time.max, tzinfo=self.clock.tz)
                for c in cycles if c.code not in issued]
        late = [due for due in late if due < now]
        return len(late), max(((now - due).total_seconds() for due in late), default=0.0)

    async def issue(self, cycle_code: str) -> dict:
        """The cycle's report, numbered, dated and frozen once (here unless the Office approved it
        already: with `auto_issue`, or left numberless by a replica of an earlier version)."""
        report = await self.store.issued_report(cycle_code)
        if not (report and report.get("number")):
            report = await self._freeze(cycle_code, report, status="approved")
        return await self.report(cycle_code=cycle_code, known_at=report["known_at"])

    async def _freeze(self, cycle_code: str, report: dict | None, **fields) -> dict:
        """Give the report its number, its date and the instant its numbers are known at, for good."""
        number = await self.store.number_for(term_code(await self.store.settings()), cycle_code)
        fields = {"number": number, "known_at": utc_now(), "issued_on": self.clock.today().isoformat(), **fields}
        if report is None:  # the first to get here fixes number, date and known_at for good
            await self.store.archive({"_id": cycle_code, **fields})
        else:
            await self.store.update_archive(cycle_code, **fields)
        return await self.store.issued_report(cycle_code)

    # --- the Office's sign-off ---
    async def draft(self, cycle_code: str) -> dict:
        """The `report.drafted` record of the cycle's next draft (its links are the caller's to add)."""
        report = await self.store.issued_report(cycle_code) or {}
        revision = report.get("revision", 0) + 1
        return {"type": records.DRAFTED, "id": f"report-drafted-{cycle_code}-{revision}", "cycle": cycle_code,
                "revision": revision, "drafted_on": self.clock.today().isoformat(),
                "summary": document.summary(await self.store.settings(), label(parse_cycle(cycle_code))),
                "comment": report.get("comment")}

    async def drafted(self, *, record: dict) -> None:
        """Keep that the draft `record` announces is prepared and awaits sign-off."""
        await self.store.update_archive(record["cycle"], upsert=True, status="draft", revision=record["revision"],
                                        drafted_on=record["drafted_on"])

    @asynccontextmanager
    async def signing(self, cycle_code: str):
        """A claim of this call's own on the cycle's report, waited for and released at the end:
        approving, sending back and issuing it exclude one another, among calls and replicas."""
        _cycle(cycle_code)
        claims = Claims(self.claims.collection, holder=f"{self.claims.holder}/{secrets.token_hex(4)}",
                        stale_after=self.claims.stale_after)
        deadline = monotonic() + 2 * self.claims.stale_after.total_seconds()
        while (claim := await claims.take(f"issue|{cycle_code}")) is None:
            if monotonic() > deadline:
                raise Busy(f"the report for {cycle_code} is being approved or issued elsewhere; try again")
            await asyncio.sleep(0.2)
        try:
            async with claims.keeping(claim):
                yield claim
        finally:
            await claims.release(claim)

    async def approve(self, *, cycle_code: str, approver: str) -> dict:
        """Number the cycle's draft and freeze its numbers as known now, approved by `approver`; the
        report (JSON). Approved again, it stays as it was. The caller holds `signing`."""
        approver = domain.required_text(approver, "the approver's name", 2_000)
        report = await self.store.issued_report(_cycle(cycle_code).code)
        if not (report and report.get("number")):
            if (report or {}).get("status") != "draft":
                raise BadRequest(domain.not_signable(cycle_code, report))
            report = await self._freeze(cycle_code, report, status="approved", approved_by=approver,
                                        approved_at=utc_iso(self.clock.now()))
        return await self.report(cycle_code=cycle_code, known_at=report["known_at"])

    async def send_back(self, *, cycle_code: str, approver: str, comment: str) -> None:
        """Return the cycle's draft with `comment`; the scheduler prepares it again at its next pass.
        The caller holds `signing`."""
        approver = domain.required_text(approver, "the approver's name", 2_000)
        comment = domain.required_text(comment, "a comment saying what the draft lacks", 20_000)
        report = await self.store.issued_report(_cycle(cycle_code).code)
        if (report or {}).get("status") != "draft":
            raise BadRequest(domain.not_signable(cycle_code, report))
        await self.store.update_archive(cycle_code, status="returned", comment=comment, returned_by=approver,
                                        returned_at=utc_iso(self.clock.now()))

    async def cycle_reports(self) -> list[dict]:
        """The cycles of the term that have a report (a draft at least), in order, each with its
        `status` (draft, approved, issued, returned), `number`, `approved_by`, `approved_at` and
        the `comment` it was last sent back with."""
        _, cycles = await self.cycles_of_term()
        kept = await self.store.reports()
        return [{"cycle": c.code, "cycle_label": label(c), "status": domain.signoff_status(kept[c.code]),
                 **{k: kept[c.code].get(k) for k in ("number", "approved_by", "approved_at", "comment", "revision",
                                                      "known_at", "issued_on")}}
                for c in cycles if c.code in kept]


def term_code(settings: dict) -> str:
    """'2020-2025': report numbers run per term."""
    term = settings.get("term")
    return "-".join(term[k][:4] for k in ("start", "end")) if term else "term"


def _cycle(code: str) -> Cycle:
    try:
        return parse_cycle(code)
    except UnknownCycle as err:
        raise BadRequest(str(err)) from err
