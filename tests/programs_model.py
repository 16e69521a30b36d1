"""A plain in-memory reference model of the programme rules, and hypothesis
strategies for event streams (valid, invalid, duplicated, reordered, plans
revised, updates before their plans). The property: whatever the stream, the
programs service ends in the state this model computes.

The model is written from the contract, independently of the service code."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import strategies as st

from tests import samples

UNITS = ("VPTU", "SO-KHDT", "SO-TC", "Q-BADINH")
PROGRAMMES = ("01", "02")
TASK_IDS = ("T1", "T2", "T3")
STATUSES = ("not_started", "in_progress", "completed", "blocked")

REGISTRY = (
    [samples.envelope("VPTU", f"reg-{u}", "registry.unit", samples.registry_unit(u, f"Đơn vị {u}")) for u in UNITS]
    + [samples.envelope("VPTU", f"reg-p{p}", "registry.programme", samples.registry_programme(p)) for p in PROGRAMMES]
)


def _time(minute: int) -> str:
    return f"2021-03-{1 + minute // 600:02d}T{(minute // 60) % 10 + 8:02d}:{minute % 60:02d}:00+07:00"


# Choices are weighted towards collisions (the same plan revised, updates of its tasks by
# their lead unit), where the rules interact; the rest makes sure every rule is hit.
@st.composite
def plan_events(draw, n: int) -> dict:
    source = draw(st.sampled_from(("SO-KHDT", "SO-KHDT", "SO-KHDT", "SO-TC", "H-UNKNOWN")))
    programme = draw(st.sampled_from(("01", "01", "01", "02", "09")))  # 09 is not in the registry
    task_ids = draw(st.lists(st.sampled_from(TASK_IDS), min_size=1, max_size=3, unique=True))
    tasks = [samples.task(t, lead_unit=draw(st.sampled_from((source, source, source, "SO-TC", "NO-UNIT"))),
                          milestones=draw(st.sampled_from((1, 1, 1, 1, 0)))) for t in task_ids]
    plan_id = draw(st.sampled_from(("KH-A", "KH-A", "KH-B")))
    return samples.plan(source, f"{source}-P{n}", plan_id, programme, tasks, time=_time(draw(st.integers(0, 3000))))


@st.composite
def update_events(draw, n: int) -> dict:
    source = draw(st.sampled_from(("SO-KHDT", "SO-KHDT", "SO-KHDT", "SO-TC", "VPTU", "Q-BADINH")))
    return samples.task_update(source, f"{source}-U{n}", draw(st.sampled_from(TASK_IDS)),
                               draw(st.sampled_from(("01", "01", "01", "02"))), draw(st.sampled_from(STATUSES)),
                               draw(st.integers(0, 100)), time=_time(draw(st.integers(0, 3000))))


@st.composite
def streams(draw, max_events: int = 12) -> list[tuple[dict, str]]:
    """Deliveries (event, acceptance id) in arrival order: duplicates re-sent with a new
    acceptance id, redeliveries of the same record with the same one, any order."""
    count = draw(st.integers(1, max_events))
    events = [draw(plan_events(i) if draw(st.booleans()) else update_events(i)) for i in range(count)]
    deliveries = [(e, f"a{i}") for i, e in enumerate(events)]
    extra = draw(st.lists(st.tuples(st.integers(0, count - 1), st.booleans()), max_size=4))
    for index, same_record in extra:
        deliveries.append((events[index], f"a{index}" if same_record else f"a{index}-again{len(deliveries)}"))
    return draw(st.permutations(deliveries))


@dataclass
class Model:
    tasks: dict[str, dict] = field(default_factory=dict)
    plans: dict[str, str] = field(default_factory=dict)          # plan key -> version
    plan_tasks: dict[str, list[str]] = field(default_factory=dict)
    outcomes: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # event key -> (outcome, code)
    first_accept: dict[str, str] = field(default_factory=dict)
    held: dict[str, tuple[dict, str]] = field(default_factory=dict)
    published: list[tuple[str, str]] = field(default_factory=list)  # (event key, outcome) as announced
    accept_id: str = ""  # of the delivery being decided

    def deliver(self, event: dict, accept_id: str) -> None:
        key = f"{event['source']}:{event['id']}"
        if key in self.outcomes:  # the same record again repeats its outcome; a re-send is a duplicate
            same = self.first_accept[key] == accept_id
            self.published.append((key, self.outcomes[key][0] if same else "duplicate"))
            return
        if key in self.held:  # waiting for its plan: another submission is a duplicate already
            if self.held[key][1] != accept_id:
                self.published.append((key, "duplicate"))
            return
        self.accept_id = accept_id
        if event["source"] not in UNITS:
            self._decide(key, "rejected", "unknown_unit")
        elif event["data"]["programme"] not in PROGRAMMES:
            self._decide(key, "rejected", "unknown_programme")
        elif event["type"] == "plan.submitted":
            self._plan(key, event)
        else:
            self._update(key, event, accept_id)

    def _decide(self, key: str, outcome: str, code: str | None = None, accept_id: str | None = None) -> None:
        self.outcomes[key] = (outcome, code)
        self.first_accept[key] = accept_id or self.accept_id
        self.published.append((key, outcome))

    def _plan(self, key: str, event: dict) -> None:
        data = event["data"]
        plan_key = f"{event['source']}|{data['plan_id']}"
        version = _version(event)
        if plan_key in self.plans and self.plans[plan_key] > version:
            return self._decide(key, "rejected", "superseded")
        ids = [t["task_id"] for t in data["tasks"]]
        broken = any(
            not t["milestones"] or t["lead_unit"] not in UNITS
            or (t["task_id"] in self.tasks and self.tasks[t["task_id"]]["plan"] != plan_key)
            for t in data["tasks"])
        if broken or len(set(ids)) != len(ids):
            return self._decide(key, "rejected", "invalid_plan")
        for t in data["tasks"]:
            task = self.tasks.get(t["task_id"])
            # seq counts the changes of a task: one per plan that names it (two when it
            # brings back a task it had dropped: restarted, then updated), one per drop,
            # one per status report that is the latest by event time
            seq = 1 if task is None else task["seq"] + (2 if task["dropped"] else 1)
            if task is None or task["dropped"]:
                task = self.tasks[t["task_id"]] = {"status": "not_started", "progress": 0.0, "version": ""}
            task.update(plan=plan_key, programme=data["programme"], lead_unit=t["lead_unit"], dropped=False, seq=seq)
        for task_id in self.plan_tasks.get(plan_key, []):
            if task_id not in ids and not self.tasks[task_id]["dropped"]:
                self.tasks[task_id].update(status="cancelled", dropped=True, seq=self.tasks[task_id]["seq"] + 1)
        self.plans[plan_key] = version
        self.plan_tasks[plan_key] = ids
        self._decide(key, "applied")
        # held updates are applied in event-time order, so each one that is the latest so far counts as a change
        for held_key, (held, accept_id) in sorted(self.held.items(), key=lambda kv: _version(kv[1][0])):
            if held["data"]["task_id"] in ids:
                del self.held[held_key]
                self._update(held_key, held, accept_id)

    def _update(self, key: str, event: dict, accept_id: str) -> None:
        data = event["data"]
        task = self.tasks.get(data["task_id"])
        if task is None:
            self.held[key] = (event, accept_id)
        elif task["programme"] != data["programme"]:
            self._decide(key, "rejected", "unknown_task", accept_id)
        elif event["source"] not in (task["lead_unit"], "VPTU"):
            self._decide(key, "rejected", "forbidden", accept_id)
        elif task["dropped"]:
            self._decide(key, "rejected", "task_cancelled", accept_id)
        else:
            version = _version(event)
            if version > task["version"]:
                task.update(status=data["status"], progress=float(data["progress"]), version=version,
                            seq=task["seq"] + 1)
            self._decide(key, "applied", accept_id=accept_id)

    def state(self) -> dict:
        return {t: {k: v for k, v in s.items() if k not in ("version", "seq")} for t, s in self.tasks.items()}

    def seqs(self) -> dict[str, int]:
        """How many changes each task went through: the service's `seq` must say the same."""
        return {t: s["seq"] for t, s in self.tasks.items()}


def _version(event: dict) -> str:
    from services.programs.domain import version_of  # the ordering key is part of the contract
    from shared.events import parse_event
    return version_of(parse_event(event))


TASK_FIELDS = ("status", "progress", "plan", "programme", "lead_unit", "dropped")


def service_state(tasks: list[dict]) -> dict:
    return {t["_id"]: {k: t[k] for k in TASK_FIELDS} for t in tasks}
