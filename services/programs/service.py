"""Use cases of the programs service: decide every accepted event, apply it to
the programme state, and say what changed. Exactly one outcome per event."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timezone

from shared.events import Envelope, PlanSubmitted, ProgrammeIssued, TaskUpdated, utc_iso

from services.programs import domain
from services.programs.domain import Rejection
from services.programs.store import ProgramsStore

Change = dict


class ProgramsService:
    def __init__(self, store: ProgramsStore):
        self.store = store

    async def decide(self, *, event: Envelope, accepted_at: str, accept_id: str) -> dict:
        """Return the outcome of `event` (with the changes it made), applying it at most once.

        The same Kafka record read again after a crash returns its recorded outcome, so
        the caller re-publishes the same things; another record with the same
        (source, id) is a `duplicate` and changes nothing."""
        prior = await self.store.outcome(event.key)
        if prior is not None:
            if prior["accept_id"] == accept_id:
                return prior
            return _outcome(event, accepted_at, accept_id, "duplicate", changes=[],
                            programme=prior.get("programme"))
        result = await self._apply(event, accepted_at)
        programme = getattr(event.data, "programme", None)
        if isinstance(result, Rejection):
            changes = _rejected_plan_change(event, accepted_at) if event.type == "plan.submitted" else []
            doc = _outcome(event, accepted_at, accept_id, "rejected", changes=changes, rejection=result,
                           programme=programme)
        else:
            doc = _outcome(event, accepted_at, accept_id, "applied", changes=result, programme=programme)
        return await self.store.record_outcome(doc)

    async def _apply(self, event: Envelope, accepted_at: str) -> list[Change] | Rejection:
        if event.type.startswith("registry."):
            return await self._registry(event, accepted_at)
        if not await self.store.known("units", {event.source}):
            return Rejection.of("unknown_unit", event.source)
        programme = getattr(event.data, "programme", None)
        if programme is not None and not await self.store.programme(programme):
            return Rejection.of("unknown_programme", programme)
        if isinstance(event.data, PlanSubmitted):
            return await self._plan(event, event.data, accepted_at)
        if isinstance(event.data, TaskUpdated):
            return await self._task_update(event, event.data, accepted_at)
        if isinstance(event.data, ProgrammeIssued):
            return await self._programme_issued(event, event.data, accepted_at)
        return Rejection.of("unsupported_type", event.type)

    async def _registry(self, event: Envelope, accepted_at: str) -> list[Change] | Rejection:
        if event.source != domain.OFFICE:
            return Rejection.of("forbidden", event.source, "registry changes come from the Office (VPTU)")
        entry = event.data.model_dump(mode="json")
        await self.store.put_registry_entry(event.type, entry)
        kind = event.type.removeprefix("registry.")
        return [_change(event, accepted_at, kind=kind, id=entry["code"], state=entry)]

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
        header = plan.model_dump(mode="json", exclude={"tasks"})
        tasks = [t.model_dump(mode="json") for t in plan.tasks]
        states = await self.store.put_plan(
            plan_key=plan_key, plan={**header, "source": event.source}, tasks=tasks, version=version)
        changes = [_change(event, accepted_at, kind="plan", id=plan_key, programme=plan.programme,
                           state={**header, "source": event.source, "status": "submitted",
                                  "tasks": len(tasks)})]
        changes += [_task_change(event, accepted_at, s) for s in states]
        return changes

    async def _task_update(self, event: Envelope, update: TaskUpdated, accepted_at: str) -> list[Change] | Rejection:
        task = await self.store.task(update.task_id)
        if task is None or task["programme"] != update.programme:
            return Rejection.of("unknown_task", update.task_id, update.programme)
        if not domain.may_update_task(event.source, task["lead_unit"]):
            return Rejection.of("forbidden", event.source, f"task {update.task_id} is led by {task['lead_unit']}")
        version = domain.version_of(event)
        fields = update.model_dump(mode="json", exclude={"task_id", "programme"})
        await self.store.add_task_history({"_id": event.key, "task_id": update.task_id, **fields,
                                           "version": version, "accepted_at": accepted_at})
        state = await self.store.update_task_status(update.task_id, fields, version)
        return [_task_change(event, accepted_at, state)]

    async def _programme_issued(self, event: Envelope, issued: ProgrammeIssued, accepted_at: str) -> list[Change] | Rejection:
        if event.source != domain.OFFICE:
            return Rejection.of("forbidden", event.source, "programmes are issued by the Office (VPTU)")
        state = issued.model_dump(mode="json")
        return [_change(event, accepted_at, kind="programme_issued", id=issued.programme,
                        programme=issued.programme, state=state)]


def _change(event: Envelope, accepted_at: str, *, kind: str, id: str, state: dict,
            programme: str | None = None, seq: int = 0) -> Change:
    return {"kind": kind, "id": id, "programme": programme, "seq": seq, "state": state,
            "event_key": event.key, "event_time": utc_iso(event.time), "accepted_at": accepted_at}


def _task_change(event: Envelope, accepted_at: str, task: dict) -> Change:
    state = {k: v for k, v in task.items() if k != "_id"}
    return _change(event, accepted_at, kind="task", id=task["_id"], programme=task["programme"],
                   seq=task["seq"], state=state)


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
           "decided_at": utc_iso(datetime.now(timezone.utc)), "changes": changes}
    if rejection is not None:
        doc.update(code=rejection.code, message_vi=rejection.message_vi, message_en=rejection.message_en,
                   findings=[asdict(f) for f in rejection.findings])
    return doc
