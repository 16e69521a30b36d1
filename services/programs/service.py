"""Use cases of the programs service: decide every accepted event, apply it to the programme
state, and say what changed. Exactly one outcome per event.

`events.accepted` is keyed by programme, so the replica holding a partition is the only writer
of its programmes' tasks: it keeps them in memory from the first batch that needs a programme
until the partition is revoked (or a batch fails part-way: the database is the truth), decides
a whole batch in memory and writes its effects with a few bulk commands, outcomes last."""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Callable, Collection

from shared import records
from shared.events import Envelope, parse_event, utc_now
from shared.statelog import Known

from services.programs import domain, rules
from services.programs.domain import Rejection
from services.programs.rules import HELD, Item, Working
from services.programs.store import REGISTRY, ProgramsStore

# Event type -> the rule that decides it. A type without a rule fails the batch; the record
# is then decided alone and, failing again, refused with the reason (`refuse`).
RULES: dict[str, Callable] = {
    **{event_type: rules.registry_entry for event_type in REGISTRY},
    "plan.submitted": rules.plan_submitted,
    "task.updated": rules.task_updated,
    "programme.issued": rules.programme_issued,
    "indicator.reported": rules.indicator_reported,
    "unit-report.submitted": rules.unit_report_submitted,
    "supervision.recorded": rules.supervision_recorded,
}
VERSIONED = {"programme.issued": ("issuances", lambda e: e.data.programme),
             "indicator.reported": ("indicator_values", lambda e: f"{e.data.indicator}|{e.data.period}"),
             "unit-report.submitted": ("unit_reports", lambda e: f"{e.source}|{e.data.cycle}")}


class NoRule(TypeError):
    """An event type no rule decides."""


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
        self.lock = asyncio.Lock()  # batches and sweeps of this replica, one at a time
        self.forget()

    def forget(self) -> None:
        """Drop the state kept in memory (partitions revoked, or a batch failed part-way): what
        a batch needs is read again from the database, which is the truth."""
        self.tasks: dict[str, dict] = {}  # task id -> state, of the programmes in `loaded`
        self.loaded: set[str] = set()
        self.registry: dict[str, dict[str, dict]] = {}  # collection -> code -> entry
        self.known = Known()  # where the states of `loaded` are kept, for folding them into checkpoints

    async def process_batch(self, batch: list[Accepted], *, fold: bool = True,
                            first_seen: Collection[str] = ()) -> list[dict]:
        """Decide the records in the order read and write their effects; return the outcomes to
        publish: each record's own (none while it is held) and, after an applied plan, those of
        the updates that were waiting for it. The caller publishes them, then `forget_held`.
        `fold=False` leaves the fold after the last segment to the caller (`fold`). `first_seen`:
        event keys the caller knows the database has neither outcome nor held update of (a
        replay into an empty database meeting them for the first time)."""
        items = [Item(a.event, a.accepted_at, a.accept_id) for a in batch]
        # Any record may have been seen before (read again, or sent again): its outcome or its
        # held update is looked up by key, a query that costs little for keys not found.
        return await self._run(items, looked_up={i.key for i in items}.difference(first_seen), fold=fold)

    async def fold(self) -> None:
        """The fold a batch left to its caller: done once its changes are published, so that a
        fold (tens of ms, every hundred batches or so) does not hold them back."""
        try:
            await self._fold()
        except BaseException:
            self.forget()  # what a fold cut short wrote is read again, as after a failed batch
            raise

    async def sweep(self, *, now: datetime, owns: Callable[[str], bool] = lambda programme: True) -> list[dict]:
        """Held updates (of the programmes this replica owns) whose task has appeared are applied;
        those held longer than the configured wait are rejected as `unknown_task`. Oldest report
        first, as a plan releases them: each that is the latest so far is a change (its `seq`)."""
        self.registry = {}  # entries another replica changed are read afresh now and then
        mine = [code for code in await self.store.registry_codes("programmes") if owns(code)]
        held = await self.store.held_of(mine) if mine else []
        items = []
        for doc in sorted(held, key=lambda h: h["version"]):
            expired = datetime.fromisoformat(doc["accepted_at"].replace("Z", "+00:00")) + self.hold <= now
            items.append(Item(parse_event(doc["event"]), doc["accepted_at"], doc["accept_id"], released=True,
                              expire=expired))
        await self._fold()
        if not items:
            return []
        tasks = await self.store.tasks_by_id({i.event.data.task_id for i in items})
        ready = [i for i in items if i.expire or i.event.data.task_id in tasks]
        decided = await self._run(ready, looked_up={i.key for i in ready}) if ready else []
        return [o for o in decided if o["outcome"] != HELD]

    async def refuse(self, item: Accepted, *, reason: str) -> dict:
        """Decide an accepted event that cannot be processed as `rejected` (`invalid_event`, with
        the reason), replacing whatever outcome this very record got before; another copy of the
        event accepted earlier keeps its own outcome, and this one is its duplicate."""
        event, now = item.event, Item(item.event, item.accepted_at, item.accept_id)
        prior = (await self.store.outcomes_for([event.key])).get(event.key)
        if prior is not None and prior["accept_id"] != item.accept_id:
            return _outcome(now, records.DUPLICATE, changes=[], programme=prior.get("programme"))
        doc = _outcome(now, records.REJECTED, changes=[], programme=_programme(event),
                       rejection=Rejection.of("invalid_event", domain.shortened(reason, 500)))
        await self.store.replace_outcome(doc)
        await self.store.forget_held([event.key])
        return doc

    async def forget_held(self, outcomes: list[dict]) -> None:
        """Once their outcomes are published, the updates a plan or the sweep released are no longer held."""
        await self.store.forget_held([o["_id"] for o in outcomes if o.get("held") and o["outcome"] != HELD])

    async def _run(self, items: list[Item], *, looked_up: set[str], fold: bool = True) -> list[dict]:
        """Load what the items need, decide them in memory, write the effects segment by segment,
        folding after each (after the last only with `fold`)."""
        try:
            work = await self._load(items, looked_up)
            announced = []
            for n, segment in enumerate(_segments(items)):
                if n:
                    await self._fold()
                announced += await self._write(work, [o for item in segment for o in self._decide(work, item)])
            if fold:
                await self._fold()
        except BaseException:
            self.forget()
            raise
        # tasks of programmes this replica does not hold were read for this batch only
        for task_id in work.others | work.changed:
            if self.tasks[task_id]["programme"] not in self.loaded:
                del self.tasks[task_id]
        return announced

    async def _load(self, items: list[Item], looked_up: set[str]) -> Working:
        """One query per kind of thing the batch lacks: the outcomes and held updates of records
        seen before, the updates its plans release, registry entries not cached yet, the tasks
        of programmes met for the first time, and the plans and states in force it names."""
        store, events = self.store, [i.event for i in items]
        plan_tasks = {t.task_id for e in events if e.type == "plan.submitted" for t in e.data.tasks}
        held = await store.held_for(task_ids=plan_tasks, keys={i.key for i in items if i.key in looked_up
                                                                and i.event.type == "task.updated"})
        held_events = [parse_event(h["event"]) for h in held.values()]
        outcomes = await store.outcomes_for(looked_up | set(held))
        await self._cache_registry([*events, *held_events])
        programmes = {_programme(e) for e in [*events, *held_events]} - {None}
        if programmes - self.loaded:
            self.tasks.update(await store.tasks_of(programmes - self.loaded, self.known))
            self.loaded |= programmes
        plans = await store.plans_for({f"{e.source}|{e.data.plan_id}" for e in events if e.type == "plan.submitted"})
        named = plan_tasks | {t for p in plans.values() for t in p.get("tasks_ever") or p.get("task_ids") or ()}
        named |= {e.data.task_id for e in [*events, *held_events] if _field(e, "task_id")}
        others = await store.tasks_by_id(named - set(self.tasks))  # of programmes held elsewhere, or none
        self.tasks.update(others)
        in_force = {}
        for event_type, (collection, key) in VERSIONED.items():
            keys = {key(e) for e in events if e.type == event_type}
            found = await store.versioned_for(collection, keys) if keys else {}
            in_force.update({(collection, k): doc["version"] for k, doc in found.items()})
        return Working(tasks=self.tasks, registry=self.registry, outcomes=outcomes, held=held, plans=plans,
                       in_force=in_force, others=set(others))

    async def _cache_registry(self, events: list[Envelope]) -> None:
        """Registry entries are global and rarely change: cached, read again on a miss."""
        wanted = {"units": set(), "programmes": set(), "indicators": set(), "settings": set()}
        for e in events:
            wanted["units"].add(e.source)
            if unit := _field(e, "unit"):
                wanted["units"].add(unit)
            if programme := _field(e, "programme"):
                wanted["programmes"].add(programme)
            if e.type == "plan.submitted":
                wanted["units"].update(u for t in e.data.tasks for u in (t.lead_unit, *t.coordinating_units))
            elif e.type == "indicator.reported":
                wanted["indicators"].add(e.data.indicator)
            elif e.type == "unit-report.submitted":
                wanted["settings"].add("settings")
        for collection, codes in wanted.items():
            cached = self.registry.setdefault(collection, {})
            if missing := codes - cached.keys():
                cached.update(await self.store.registry_entries(collection, missing))

    def _decide(self, work: Working, item: Item) -> list[dict]:
        """The outcomes `item` announces: its own (none while it is held) and, after an applied
        plan, those of the updates that were waiting for it, oldest report first."""
        event = item.event
        prior = work.outcomes.get(item.key)
        if prior is not None:  # the same record read again repeats its outcome; a re-send is a duplicate
            outcome = prior if prior["accept_id"] == item.accept_id else \
                _outcome(item, records.DUPLICATE, changes=[], programme=prior.get("programme"), decided_at=work.now)
        else:
            outcome = self._apply(work, item)
            if outcome is None:
                return []
        announced = [{**outcome, "held": True} if item.released else outcome]
        if event.type == "plan.submitted" and outcome["outcome"] == records.APPLIED:
            ids = {t.task_id for t in event.data.tasks}
            for doc in sorted([h for h in work.held.values() if h["task_id"] in ids], key=lambda h: h["version"]):
                del work.held[doc["_id"]]
                stored = work.new_held.pop(doc["_id"], None) is None  # else held by this very batch, not stored
                announced += self._decide(work, Item(parse_event(doc["event"]), doc["accepted_at"],
                                                     doc["accept_id"], released=stored))
        return announced

    def _apply(self, work: Working, item: Item) -> dict | None:
        """Decide an event seen for the first time and record its outcome (None: it is held, or waits on)."""
        event = item.event
        rule = RULES.get(event.type)
        if rule is None:
            raise NoRule(f"no rule for event type {event.type!r}")
        unit = work.entry("units", event.source)
        programme = _programme(event)
        if event.type in REGISTRY:
            result = rule(work, item, unit)
        elif unit is None:
            result = Rejection.of("unknown_unit", event.source)
        elif programme is not None and not work.entry("programmes", programme):
            result = Rejection.of("unknown_programme", programme)
        else:
            result = rule(work, item, unit)
        if result == HELD:
            return self._hold(work, item)
        if isinstance(result, Rejection):
            changes = rules.rejected_plan_change(item) if event.type == "plan.submitted" else []
            doc = _outcome(item, records.REJECTED, changes=changes, rejection=result, programme=programme,
                           decided_at=work.now)
        else:
            doc = _outcome(item, records.APPLIED, changes=result, programme=programme, decided_at=work.now)
        if kept := work.kept.pop(item.key, None):
            doc["history"] = kept
        work.outcomes[item.key] = doc
        work.new_outcomes.append(doc)
        return doc

    def _hold(self, work: Working, item: Item) -> dict | None:
        """Keep a task update until its plan comes. Another submission of an update already
        waiting is a `duplicate` at once, as it would be once decided, so the publisher's count
        of its repeats is right; the same record read again waits on."""
        event = item.event
        first = work.held.get(event.key)
        if first is None:
            work.held[event.key] = work.new_held[event.key] = {
                "_id": event.key, "task_id": event.data.task_id, "version": item.version,
                "accepted_at": item.accepted_at, "accept_id": item.accept_id, "event": event.model_dump(mode="json")}
            return None
        if first["accept_id"] != item.accept_id:
            return _outcome(item, records.DUPLICATE, changes=[], programme=event.data.programme, decided_at=work.now)
        return None

    async def _write(self, work: Working, announced: list[dict]) -> list[dict]:
        """Write a segment's effects, the outcomes last: a crash before them is repaired by deciding
        the records again (every write below is idempotent, and the state read again says what
        is applied already); after them, the records read again repeat their outcomes."""
        store = self.store
        changed = [work.tasks[t] for t in work.was_in]
        await store.put_tasks(changed, moved=[t for t in changed if work.was_in[t["_id"]] != t["programme"]],
                              known=self.known)
        for plan in work.plan_writes.values():
            await store.put_plan(plan)
        for collection, key, fields, version in work.versioned_writes:
            await store.put_versioned(collection, key, fields, version)
        await store.insert_many_once("supervisions", work.supervisions)
        for event_type, entry in work.registry_writes:
            await store.put_registry_entry(event_type, entry)
        await store.hold_many(list(work.new_held.values()))
        theirs = await store.record_outcomes(work.new_outcomes)
        work.written()
        if not theirs:
            return announced
        return [{**theirs[o["_id"]], **({"held": True} if o.get("held") else {})}
                if o["_id"] in theirs and o["outcome"] != records.DUPLICATE else o for o in announced]

    async def _fold(self) -> None:
        """Now and then, the task states logged batch by batch become a checkpoint per programme held."""
        await self.store.fold_tasks(self.tasks.values(), self.loaded, self.known)


def _segments(items: list[Item]):
    """The items whose effects are written together. Deciding a record again after a crash must
    come to the same outcome, over a state that may hold the effects of the records after it in
    its segment: so a run of status reports (a later report cannot change what an earlier one is
    decided as) or of registry entries is one segment, and every other event one of its own."""
    segment, kind = [], None
    for item in items:
        this = "registry" if item.event.type in REGISTRY else item.event.type
        this = this if this in ("registry", "task.updated") else None
        if segment and (this is None or this != kind):
            yield segment
            segment = []
        segment.append(item)
        kind = this
    if segment:
        yield segment


def _programme(event: Envelope) -> str | None:
    return _field(event, "programme")


def _field(event: Envelope, name: str):
    """A field of the event's data, None when its type has none. Read from the model's fields
    (`vars`): `getattr` with a default pays for an exception inside pydantic on every miss."""
    return vars(event.data).get(name)


def _outcome(item: Item, outcome: str, *, changes: list[dict], rejection: Rejection | None = None,
             programme: str | None = None, decided_at: str | None = None) -> dict:
    event = item.event
    doc = {"_id": item.key, "event_key": item.key, "source": event.source, "id": event.id,
           "type": event.type, "programme": programme, "outcome": outcome,
           "event_time": item.event_time, "accepted_at": item.accepted_at, "accept_id": item.accept_id,
           "decided_at": decided_at or utc_now(), "changes": changes}
    if rejection is not None:
        doc.update(code=rejection.code, message_vi=rejection.message_vi, message_en=rejection.message_en,
                   findings=[asdict(f) for f in rejection.findings[:domain.MAX_FINDINGS]])
        if len(rejection.findings) > domain.MAX_FINDINGS:
            doc["findings_total"] = len(rejection.findings)
    return doc
