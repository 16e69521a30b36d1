"""Use cases of the programs service: decide every accepted event, apply it to
the programme state, and say what changed. Exactly one outcome per event."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from shared.cycles import UnknownCycle, parse_cycle
from shared.registry import expected_to_report
from shared.events import (
    Envelope,
    IndicatorReported,
    PlanSubmitted,
    ProgrammeIssued,
    SupervisionRecorded,
    TaskUpdated,
    UnitReportSubmitted,
    parse_event,
    utc_iso,
    utc_now,
)

from services.programs import domain
from services.programs.domain import Rejection
from services.programs.store import ProgramsStore, history_row

Change = dict
HELD = "held"  # not an outcome: the event waits for its plan


@dataclass(frozen=True)
class Accepted:
    """One record of `events.accepted`: the event, when it was accepted and that acceptance's id."""
    event: Envelope
    accepted_at: str
    accept_id: str


class ProgramsService:
    def __init__(self, store: ProgramsStore, *, hold_seconds: float = 3 * 24 * 3600):
        self.store = store
        self.hold = timedelta(seconds=hold_seconds)

    async def process(self, *, event: Envelope, accepted_at: str, accept_id: str) -> list[dict]:
        """Decide one accepted record; return the outcomes to publish: its own (none while
        it is held) and, for an applied plan, those of the updates that were waiting for it."""
        outcome = await self.decide(event=event, accepted_at=accepted_at, accept_id=accept_id)
        if outcome["outcome"] == HELD:
            return []
        if event.type == "plan.submitted" and outcome["outcome"] == "applied":
            return [outcome, *await self.release([t.task_id for t in event.data.tasks])]
        return [outcome]

    async def process_batch(self, batch: list[Accepted]) -> list[dict]:
        """Decide records in the order read, as `process` would one by one. Runs of task
        updates (the bulk of a term) are decided together: one read of their outcomes,
        units and tasks, one write of each kind, several reports on a task coalesced into
        one write of its state."""
        outcomes: list[dict] = []
        run: list[Accepted] = []
        for item in batch:
            if item.event.type == "task.updated":
                run.append(item)
                continue
            if run:
                outcomes += await self._task_updates(run)
                run = []
            outcomes += await self.process(event=item.event, accepted_at=item.accepted_at,
                                           accept_id=item.accept_id)
        if run:
            outcomes += await self._task_updates(run)
        # A held update released twice in one batch (by a plan and its revision) is
        # announced once: the held copy is forgotten only after the batch is published.
        released: set[str] = set()
        announced = []
        for outcome in outcomes:
            if outcome.get("held"):
                if outcome["_id"] in released:
                    continue
                released.add(outcome["_id"])
            announced.append(outcome)
        return announced

    async def _task_updates(self, run: list[Accepted]) -> list[dict]:
        """Status reports decided together; the same outcomes and state as one at a time.

        Writes go history, then task states, then outcomes, as in `decide`, so a crash
        anywhere is repaired by reading the records again. A task whose state changed
        under us (a held update applied by a sweep) has its reports decided one at a time."""
        store = self.store
        events = [item.event for item in run]
        # Claimed before: read again, or sent again. Only those cost a lookup of their outcome
        # (on FerretDB any lookup scans the collection; a unique insert does not).
        again = await store.claim([(item.event.key, item.accept_id) for item in run])
        priors = await store.outcomes_for(list({run[i].event.key for i in again}))
        units = await store.known("units", {e.source for e in events})
        programmes = await store.known("programmes", {e.data.programme for e in events})
        tasks = await store.tasks_for(list({e.data.task_id for e in events}))
        read_seq = {task_id: task["seq"] for task_id, task in tasks.items()}
        applied: set[str] = set()  # tasks whose state this run changes
        decided: list[tuple[Accepted, dict | None]] = []  # None: to be decided one at a time
        alone: set[str] = set()  # tasks with a report to be decided one at a time: so are the later ones
        new: list[dict] = []
        history: list[dict] = []
        for i, item in enumerate(run):
            event, update = item.event, item.event.data
            prior = priors.get(event.key)
            if prior is not None:
                decided.append((item, prior if prior["accept_id"] == item.accept_id else
                                _outcome(event, item.accepted_at, item.accept_id, "duplicate", changes=[],
                                         programme=prior.get("programme"))))
                continue
            # claimed, not decided (held, or cut short by a crash), or a later report on a task
            # with such a one, which must not be applied before it
            if i in again or update.task_id in alone:
                alone.add(update.task_id)
                decided.append((item, None))
                continue
            task = tasks.get(update.task_id)
            if event.source not in units:
                rejection = Rejection.of("unknown_unit", event.source)
            elif update.programme not in programmes:
                rejection = Rejection.of("unknown_programme", update.programme)
            elif task is None:  # held: rare, and the hold is a write of its own
                alone.add(update.task_id)
                decided.append((item, None))
                continue
            else:
                rejection = domain.check_task_update(event.source, update.task_id, update.programme, task)
            if rejection is not None:
                doc = _outcome(event, item.accepted_at, item.accept_id, "rejected", changes=[],
                               rejection=rejection, programme=update.programme)
            else:
                version = domain.version_of(event)
                fields = update.model_dump(mode="json", exclude={"task_id", "programme"})
                history.append(history_row(key=event.key, subject=update.task_id, kind="task", version=version,
                                           accepted_at=item.accepted_at, data=fields))
                before = None
                if task["status_version"] < version:
                    before, task = task, {**task, **fields, "status_version": version, "seq": task["seq"] + 1}
                    tasks[update.task_id] = task
                    applied.add(update.task_id)
                change = {**_task_change(event, item.accepted_at, task, before=before), "fact": fields}
                doc = _outcome(event, item.accepted_at, item.accept_id, "applied", changes=[change],
                               programme=update.programme)
            priors[event.key] = doc  # the same event again later in this run is its duplicate
            decided.append((item, doc))
            new.append(doc)
        await store.add_history_many(history)
        moved = await store.put_task_states({t: (read_seq[t], tasks[t]) for t in applied})
        redo = {id(doc) for doc in new if doc["outcome"] == "applied" and doc["changes"][0]["id"] in moved}
        # A racing replica may have recorded some first: theirs stand, as in `record_outcome`.
        theirs = await store.record_outcomes([doc for doc in new if id(doc) not in redo])
        outcomes = []
        for item, doc in decided:
            if doc is None or id(doc) in redo:
                outcomes += await self.process(event=item.event, accepted_at=item.accepted_at,
                                               accept_id=item.accept_id)
            else:
                outcomes.append(theirs.get(doc["_id"], doc) if doc["outcome"] != "duplicate" else doc)
        return outcomes

    async def decide(self, *, event: Envelope, accepted_at: str, accept_id: str,
                     expire_hold: bool = False) -> dict:
        """Return the outcome of `event` (with the changes it made), applying it at most once.

        The same Kafka record read again after a crash returns its recorded outcome, so
        the caller re-publishes the same things; another record with the same
        (source, id) is a `duplicate` and changes nothing. A task update whose task is
        not known yet returns a `held` marker (see `release`)."""
        prior = await self.store.outcome(event.key)
        if prior is not None:
            if prior["accept_id"] == accept_id:
                return prior
            return _outcome(event, accepted_at, accept_id, "duplicate", changes=[],
                            programme=prior.get("programme"))
        result = await self._apply(event, accepted_at, expire_hold)
        if result == HELD:
            return await self._hold(event, accepted_at, accept_id)
        programme = getattr(event.data, "programme", None)
        if isinstance(result, Rejection):
            changes = _rejected_plan_change(event, accepted_at) if event.type == "plan.submitted" else []
            doc = _outcome(event, accepted_at, accept_id, "rejected", changes=changes, rejection=result,
                           programme=programme)
        else:
            doc = _outcome(event, accepted_at, accept_id, "applied", changes=result, programme=programme)
        return await self.store.record_outcome(doc)

    async def _hold(self, event: Envelope, accepted_at: str, accept_id: str) -> dict:
        """Keep a task update until its plan comes (a `held` marker). Another submission of an
        update already waiting is a `duplicate` at once, as it would be once decided, so the
        publisher's count of its repeats is right; the same record read again waits on."""
        if not await self.store.hold({"_id": event.key, "task_id": event.data.task_id,
                                      "version": domain.version_of(event), "accepted_at": accepted_at,
                                      "accept_id": accept_id, "event": event.model_dump(mode="json")}):
            # waiting still, or decided since (a plan released it in between)
            first = await self.store.held(event.key) or await self.store.outcome(event.key)
            if first is not None and first["accept_id"] != accept_id:
                return _outcome(event, accepted_at, accept_id, "duplicate", changes=[],
                                programme=event.data.programme)
        return {"_id": event.key, "outcome": HELD, "changes": []}

    async def release(self, task_ids: list[str]) -> list[dict]:
        """Decide the updates that were held for these tasks. The caller publishes the
        outcomes, then calls `forget_held` (so a crash in between re-publishes, never loses)."""
        return [await self._decide_held(held, expire=False) for held in await self.store.held_for(task_ids)]

    async def sweep(self, *, now: datetime) -> list[dict]:
        """Held updates whose task has appeared are applied; those held longer than the
        configured wait are rejected as `unknown_task`. Safe to run in every replica.
        Applied oldest report first, as `release` does: each one that is the latest so far
        is a change (its `seq`), whether a plan or, after a crash, the sweep releases it."""
        decided = []
        for held in sorted(await self.store.held_all(), key=lambda h: h["version"]):
            expired = datetime.fromisoformat(held["accepted_at"].replace("Z", "+00:00")) + self.hold <= now
            if expired or await self.store.task(held["task_id"]) is not None:
                decided.append(await self._decide_held(held, expire=expired))
        return [o for o in decided if o["outcome"] != HELD]

    async def refuse(self, item: Accepted, *, reason: str) -> dict:
        """Decide an accepted event that cannot be processed as `rejected` (`invalid_event`, with
        the reason), replacing whatever outcome this very record got before; another copy of the
        event accepted earlier keeps its own outcome, and this one is its duplicate."""
        event = item.event
        prior = await self.store.outcome(event.key)
        programme = getattr(event.data, "programme", None)
        if prior is not None and prior["accept_id"] != item.accept_id:
            return _outcome(event, item.accepted_at, item.accept_id, "duplicate", changes=[],
                            programme=prior.get("programme"))
        doc = _outcome(event, item.accepted_at, item.accept_id, "rejected", changes=[], programme=programme,
                       rejection=Rejection.of("invalid_event", domain.shortened(reason, 500)))
        await self.store.replace_outcome(doc)
        await self.store.forget_held([event.key])
        return doc

    async def forget_held(self, outcomes: list[dict]) -> None:
        await self.store.forget_held([o["_id"] for o in outcomes if o.get("held") and o["outcome"] != HELD])

    async def _decide_held(self, held: dict, *, expire: bool) -> dict:
        outcome = await self.decide(event=parse_event(held["event"]), accepted_at=held["accepted_at"],
                                    accept_id=held["accept_id"], expire_hold=expire)
        return {**outcome, "held": True}

    async def _apply(self, event: Envelope, accepted_at: str, expire_hold: bool) -> list[Change] | Rejection | str:
        if event.type.startswith("registry."):
            return await self._registry(event, accepted_at)
        source = await self.store.registry_entry("units", event.source)
        if source is None:
            return Rejection.of("unknown_unit", event.source)
        programme = getattr(event.data, "programme", None)
        if programme is not None and not await self.store.registry_entry("programmes", programme):
            return Rejection.of("unknown_programme", programme)
        data = event.data
        if isinstance(data, PlanSubmitted):
            return await self._plan(event, data, accepted_at)
        if isinstance(data, TaskUpdated):
            return await self._task_update(event, data, accepted_at, expire_hold)
        if isinstance(data, ProgrammeIssued):
            return await self._programme_issued(event, data, accepted_at)
        if isinstance(data, IndicatorReported):
            return await self._indicator(event, data, accepted_at)
        if isinstance(data, UnitReportSubmitted):
            return await self._unit_report(event, data, source, accepted_at)
        if isinstance(data, SupervisionRecorded):
            return await self._supervision(event, data, source, accepted_at)
        raise TypeError(f"no rule for {event.type}")  # parse_event admits only the types above

    async def _registry(self, event: Envelope, accepted_at: str) -> list[Change] | Rejection:
        if event.source != domain.OFFICE:
            return Rejection.of("forbidden", event.source, "registry changes come from the Office (VPTU)")
        entry = event.data.model_dump(mode="json")
        await self.store.put_registry_entry(event.type, entry)
        return [_change(event, accepted_at, kind=event.type.removeprefix("registry."), id=entry["code"],
                        state=entry)]

    async def _plan(self, event: Envelope, plan: PlanSubmitted, accepted_at: str) -> list[Change] | Rejection:
        plan_key = f"{event.source}|{plan.plan_id}"
        version = domain.version_of(event)
        current = await self.store.plan(plan_key)
        if current is not None and current["version"] > version:
            return Rejection.of("superseded", plan.plan_id)
        units = {t.lead_unit for t in plan.tasks} | {u for t in plan.tasks for u in t.coordinating_units}
        findings = domain.check_plan(
            plan,
            known_units=await self.store.known("units", units),
            owners=await self.store.owners([t.task_id for t in plan.tasks]),
            plan_key=plan_key,
        )
        if findings:
            return Rejection.of("invalid_plan", domain.offending_tasks(findings), findings=findings)
        header = {**plan.model_dump(mode="json", exclude={"tasks"}), "source": event.source}
        tasks = [t.model_dump(mode="json") for t in plan.tasks]
        await self.store.add_history(key=event.key, subject=plan_key, kind="plan", version=version,
                                     accepted_at=accepted_at, data={**header, "tasks": tasks})
        states = await self.store.put_plan(plan_key=plan_key, plan=header, tasks=tasks, version=version)
        roadmap = [{k: t[k] for k in ("task_id", "title", "lead_unit", "lead_person", "due_date")} for t in tasks]
        changes = [_change(event, accepted_at, kind="plan", id=plan_key, programme=plan.programme,
                           state={**header, "status": "submitted", "tasks": roadmap})]
        return changes + [_task_change(event, accepted_at, s) for s in states]

    async def _task_update(self, event: Envelope, update: TaskUpdated, accepted_at: str,
                           expire_hold: bool) -> list[Change] | Rejection | str:
        task = await self.store.task(update.task_id)
        if task is None:
            return Rejection.of("unknown_task", update.task_id, update.programme) if expire_hold else HELD
        if rejection := domain.check_task_update(event.source, update.task_id, update.programme, task):
            return rejection
        version = domain.version_of(event)
        fields = update.model_dump(mode="json", exclude={"task_id", "programme"})
        await self.store.add_history(key=event.key, subject=update.task_id, kind="task", version=version,
                                     accepted_at=accepted_at, data=fields)
        before, after = await self.store.update_task_status(update.task_id, fields, version)
        # An older report arriving late is kept in the history but changes nothing now;
        # the change carries the report itself too, for reports as of a past date.
        return [{**_task_change(event, accepted_at, after, before=before), "fact": fields}]

    async def _programme_issued(self, event: Envelope, issued: ProgrammeIssued,
                                accepted_at: str) -> list[Change] | Rejection:
        if event.source != domain.OFFICE:
            return Rejection.of("forbidden", event.source, "programmes are issued by the Office (VPTU)")
        state = issued.model_dump(mode="json")
        return await self._versioned(event, accepted_at, collection="issuances", kind="programme_issued",
                                     key=issued.programme, state=state, programme=issued.programme)

    async def _indicator(self, event: Envelope, report: IndicatorReported, accepted_at: str) -> list[Change] | Rejection:
        indicator = await self.store.registry_entry("indicators", report.indicator)
        if indicator is None:
            return Rejection.of("unknown_indicator", report.indicator)
        if event.source != indicator["responsible_unit"]:
            return Rejection.of("forbidden", event.source,
                                f"indicator {report.indicator} is reported by {indicator['responsible_unit']}")
        state = {**report.model_dump(mode="json"), "source": event.source}
        return await self._versioned(event, accepted_at, collection="indicator_values", kind="indicator_value",
                                     key=f"{report.indicator}|{report.period}", state=state)

    async def _unit_report(self, event: Envelope, report: UnitReportSubmitted, unit: dict,
                           accepted_at: str) -> list[Change] | Rejection:
        settings = await self.store.registry_entry("settings", "settings") or {}
        term = settings.get("term") or {}
        try:
            cycle = parse_cycle(report.cycle)
        except UnknownCycle as err:
            return Rejection.of("unknown_cycle", report.cycle, str(err))
        if term and not (term["start"] <= cycle.cut_off.isoformat() <= term["end"]):
            return Rejection.of("unknown_cycle", report.cycle, f"{term['start']}..{term['end']}")
        expected = (settings.get("reporting") or {}).get("expected_units", "default")
        if not expected_to_report(unit, expected):
            return Rejection.of("forbidden", event.source, f"cycle {report.cycle} does not expect a report from it")
        state = {**report.model_dump(mode="json"), "unit": event.source, "time": utc_iso(event.time)}
        return await self._versioned(event, accepted_at, collection="unit_reports", kind="unit_report",
                                     key=f"{event.source}|{report.cycle}", state=state)

    async def _supervision(self, event: Envelope, record: SupervisionRecorded, unit: dict,
                           accepted_at: str) -> list[Change] | Rejection:
        if not domain.may_supervise(unit):
            return Rejection.of("forbidden", event.source,
                                "supervision comes from the Fatherland Front and socio-political organisations")
        if record.unit and not await self.store.registry_entry("units", record.unit):
            return Rejection.of("unknown_unit", record.unit)
        if record.task_id and await self.store.task(record.task_id) is None:
            return Rejection.of("unknown_task", record.task_id, record.programme)
        state = {**record.model_dump(mode="json"), "source": event.source, "time": utc_iso(event.time)}
        await self.store.insert_once("supervisions", {"_id": event.key, **state, "accepted_at": accepted_at})
        return [_change(event, accepted_at, kind="supervision", id=event.key, programme=record.programme,
                        state=state)]

    async def _versioned(self, event: Envelope, accepted_at: str, *, collection: str, kind: str, key: str,
                         state: dict, programme: str | None = None) -> list[Change]:
        """Keep the event in the history; make it the current state unless a later one is in force."""
        version = domain.version_of(event)
        await self.store.add_history(key=event.key, subject=key, kind=kind, version=version,
                                     accepted_at=accepted_at, data=state)
        current = await self.store.put_versioned(collection, key, {**state, "accepted_at": accepted_at}, version)
        return [_change(event, accepted_at, kind=kind, id=key, programme=programme,
                        state={**state, "current": current})]


def _change(event: Envelope, accepted_at: str, *, kind: str, id: str, state: dict,
            programme: str | None = None, seq: int = 0, old: dict | None = None) -> Change:
    return {"kind": kind, "id": id, "programme": programme, "seq": seq, "state": state, "old": old,
            "event_key": event.key, "event_time": utc_iso(event.time), "accepted_at": accepted_at,
            "version": domain.version_of(event)}


def _task_state(task: dict) -> dict:
    return {k: v for k, v in task.items() if k != "_id"}


# What a status report changes: the old state of a task change says only this, so that a
# change (the task's whole state plus its old status) always fits in one Kafka record.
STATUS_FIELDS = ("status", "progress", "as_of", "status_version", "seq", "dropped")


def _task_change(event: Envelope, accepted_at: str, task: dict, before: dict | None = None) -> Change:
    old = {k: before[k] for k in STATUS_FIELDS if k in before} if before else None
    return _change(event, accepted_at, kind="task", id=task["_id"], programme=task["programme"],
                   seq=task["seq"], state=_task_state(task), old=old)


def _rejected_plan_change(event: Envelope, accepted_at: str) -> list[Change]:
    plan = event.data
    return [_change(event, accepted_at, kind="plan", id=f"{event.source}|{plan.plan_id}",
                    programme=plan.programme,
                    state={"plan_id": plan.plan_id, "programme": plan.programme, "source": event.source,
                           "status": "rejected"})]


def _outcome(event: Envelope, accepted_at: str, accept_id: str, outcome: str, *, changes: list[Change],
             rejection: Rejection | None = None, programme: str | None = None) -> dict:
    doc = {"_id": event.key, "event_key": event.key, "source": event.source, "id": event.id,
           "type": event.type, "programme": programme, "outcome": outcome,
           "event_time": utc_iso(event.time), "accepted_at": accepted_at, "accept_id": accept_id,
           "decided_at": utc_now(), "changes": changes}
    if rejection is not None:
        doc.update(code=rejection.code, message_vi=rejection.message_vi, message_en=rejection.message_en,
                   findings=[asdict(f) for f in rejection.findings[:domain.MAX_FINDINGS]])
        if len(rejection.findings) > domain.MAX_FINDINGS:
            doc["findings_total"] = len(rejection.findings)
    return doc
