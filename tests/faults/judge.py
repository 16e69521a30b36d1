"""The verdict on a scenario's history, without I/O: what the load generator was told (each
202, each Kafka acknowledgement) and what the system shows afterwards.

Expected is what the load was acknowledged, not what reached `events.accepted`: every
acknowledged event is decided once, as the reference model decides the events the load
sent (in the order programs read them), and each rejection told to its unit once.

An event's submissions that reached Kafka are its copies on `events.accepted`, each with its
own acceptance id. The publisher knows a range of them: at least its acknowledged sends, at
most those plus its failed sends that may have got in (a 503, a lost answer, a timeout). Its
`duplicates` at ingest (`GET /v1/events/{id}`) must count every copy after the first.

lost    = acknowledged but not on `events.accepted` (or fewer copies than acknowledgements),
          never decided, its decision not readable at ingest, a task, held update or notice missing;
doubled = more copies than the publisher sent, a `duplicates` count off, decided otherwise than
          the model, a task state or counter off, a notice under two identities or not due."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from tests.faults.load import Load
from tests.programs_model import PROGRAMMES, Model

ENVELOPE = ("specversion", "id", "source", "type", "time", "datacontenttype", "data")
ACCEPT_ID = "nqtacceptid"
STATUSES = ("not_started", "in_progress", "completed", "blocked", "cancelled")


@dataclass
class Verdict:
    lost: list[str] = field(default_factory=list)
    doubled: list[str] = field(default_factory=list)
    redeliveries: dict[str, int] = field(default_factory=dict)
    facts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.lost and not self.doubled

    def summary(self, limit: int = 8) -> str:
        return (f"lost {len(self.lost)}: {self.lost[:limit]}; doubled {len(self.doubled)}: {self.doubled[:limit]}; "
                f"redeliveries {self.redeliveries}; {self.facts}")


@dataclass
class History:
    """What the system shows once the scenario settled."""

    accepted: dict[int, list[dict]]  # stamped events on events.accepted (not the registry's), per partition
    outcomes: dict[str, dict]        # programs' outcome per event key
    tasks: dict[str, dict]           # programs' task documents
    held: set[str]                   # event keys programs keeps for their plan
    statuses: dict[str, dict]        # GET /v1/events/{id} of each acknowledged event (absent: 404)
    status: dict                     # reports' GET /v1/status
    notices: list[str]               # X-NQT-Notification of each message the receivers got
    deliveries: dict[str, str] = field(default_factory=dict)  # notify's record of a rejection's delivery


def judge(history: History, load: Load) -> Verdict:
    """The verdict on `history` against what `load` was acknowledged."""
    verdict = Verdict()
    model, copies = _model(history, load, verdict)
    _check_copies(history, load, copies, verdict)
    _check_decisions(history, model, verdict)
    _check_tasks(history, model, verdict)
    _check_reports(history, load, model, verdict)
    _check_notices(history, model, verdict)
    verdict.redeliveries["resent"] = sum(max(0, len(copies[k]) - n) for k, n in load.accepted.items())
    outcomes = Counter(o for o, _ in model.outcomes.values())
    verdict.facts.update(generated=len(load.events), acknowledged=len(load.accepted),
                         records=sum(map(len, copies.values())), retries=load.retries,
                         unsure=sum(load.unsure.values()), applied=outcomes["applied"], rejected=outcomes["rejected"])
    return verdict


def _model(history: History, load: Load, verdict: Verdict) -> tuple[Model, dict[str, set[str]]]:
    """The model fed each event the load sent, as the load sent it, once, where programs first
    read it; and the acceptance ids of each event's copies."""
    model, copies = Model(), defaultdict(set)
    for partition in sorted(history.accepted):
        for record in history.accepted[partition]:
            key = f"{record.get('source')}:{record.get('id')}"
            if key not in load.events:
                verdict.doubled.append(f"{key}: on events.accepted, never sent")
                continue
            if not copies[key]:
                model.deliver({k: load.events[key][k] for k in ENVELOPE if k in load.events[key]}, record[ACCEPT_ID])
            copies[key].add(record[ACCEPT_ID])
    return model, copies


def _check_copies(history: History, load: Load, copies: dict[str, set[str]], verdict: Verdict) -> None:
    """Each acknowledged send is a copy on events.accepted, no copy is one the publisher did not
    send, and ingest counts the copies after the first as the event's duplicates."""
    for key, acked in load.accepted.items():
        n, unsure = len(copies.get(key, ())), load.unsure[key]
        if n < acked:
            verdict.lost.append(f"{key}: acknowledged {acked} time(s), {n} on events.accepted")
        elif n > acked + unsure:
            verdict.doubled.append(f"{key}: {n} copies on events.accepted, sent {acked} time(s) "
                                   f"(+{unsure} that may have got in)")
        counted = history.statuses.get(key, {}).get("duplicates", 0)
        if n and counted != n - 1:
            verdict.doubled.append(f"{key}: ingest counts {counted} duplicate(s); the publisher sent it "
                                   f"{acked} time(s) (+{unsure} that may have got in), {n} reached events.accepted")


def _check_decisions(history: History, model: Model, verdict: Verdict) -> None:
    """Every event the model decides is decided so by programs and readable at ingest; every
    one it holds is held."""
    for key, (outcome, code) in model.outcomes.items():
        mine = history.outcomes.get(key)
        if mine is None:
            verdict.lost.append(f"{key}: no outcome (model: {outcome})")
        elif (mine["outcome"], mine.get("code")) != (outcome, code):
            verdict.doubled.append(f"{key}: decided {mine['outcome']}/{mine.get('code')}, model {outcome}/{code}")
        told = history.statuses.get(key, {}).get("status")
        if told != outcome:
            verdict.lost.append(f"{key}: ingest tells the publisher {told!r}, not {outcome!r}")
    for key in model.held:
        if key not in history.held:
            verdict.lost.append(f"{key}: should wait for its plan, is not held")


def _check_tasks(history: History, model: Model, verdict: Verdict) -> None:
    """The state of every task, its change counter (`seq`) included, is the model's."""
    seqs = model.seqs()
    for task_id, state in model.state().items():
        mine = history.tasks.get(task_id)
        if mine is None:
            verdict.lost.append(f"task {task_id}: missing")
            continue
        got = {k: mine.get(k) for k in state}
        if got != state:
            verdict.doubled.append(f"task {task_id}: {got} != model {state}")
        if mine.get("seq") != seqs[task_id]:
            verdict.doubled.append(f"task {task_id}: seq {mine.get('seq')} != model {seqs[task_id]}")


def _check_reports(history: History, load: Load, model: Model, verdict: Verdict) -> None:
    """The live status per programme: task counts, progress and plans as the model has them."""
    submitted, rejected = defaultdict(set), defaultdict(set)
    for key, (outcome, _) in model.outcomes.items():
        event = load.events[key]
        if event["type"] == "plan.submitted":
            plan_key = f"{event['source']}|{event['data']['plan_id']}"
            (submitted if outcome == "applied" else rejected)[event["data"]["programme"]].add(plan_key)
    for code in PROGRAMMES:
        mine = next(p for p in history.status["programmes"] if p["code"] == code)
        tasks = [t for t in model.state().values() if t["programme"] == code]
        counts = Counter(t["status"] for t in tasks)
        want = {"total": len(tasks), **{s: counts.get(s, 0) for s in STATUSES}}
        got = {k: mine["tasks"][k] for k in want}
        if got != want:
            verdict.doubled.append(f"reports programme {code} tasks {got} != model {want}")
        open_ = [100.0 if t["status"] == "completed" else t["progress"] for t in tasks if t["status"] != "cancelled"]
        if open_ and mine["progress_pct"] is not None and abs(mine["progress_pct"] - sum(open_) / len(open_)) > 0.051:
            verdict.doubled.append(f"reports programme {code} progress {mine['progress_pct']} != "
                                   f"model {sum(open_) / len(open_):.2f}")
        plans = len(submitted[code])
        if mine["plans"]["submitted"] != plans:
            verdict.doubled.append(f"reports programme {code} plans submitted {mine['plans']['submitted']} != {plans}")
        refused = len(rejected[code] - submitted[code])
        if mine["plans"]["rejected"] != refused:
            verdict.doubled.append(f"reports programme {code} plans rejected {mine['plans']['rejected']} != {refused}")


def _check_notices(history: History, model: Model, verdict: Verdict) -> None:
    """Each rejection is told to its unit under one identity; repeats of that identity are
    redeliveries (the receiver drops them by Message-ID), a second identity is a doubling.
    A notice never told says what notify's own record of its delivery holds."""
    identities: dict[str, Counter] = defaultdict(Counter)
    for ident in history.notices:
        kind, _, rest = (ident or "").partition("|")
        if kind == "rejected":
            identities[rest.rsplit("|", 2)[0]][ident] += 1
    rejected = {k for k, (o, _) in model.outcomes.items() if o == "rejected"}
    for key in sorted(rejected):
        seen = identities.get(key, Counter())
        if not seen:
            record = history.deliveries.get(key, "notify has no delivery for it")
            verdict.lost.append(f"{key}: rejected, never told to its unit ({record})")
        elif len(seen) > 1:
            verdict.doubled.append(f"{key}: told under {len(seen)} identities {sorted(seen)}")
    verdict.doubled += [f"{a}: told it was rejected, but it was not" for a in identities if a not in rejected]
    verdict.redeliveries["notices"] = sum(n - 1 for seen in identities.values() for n in seen.values() if n > 1)
    verdict.facts["notices"] = sum(len(seen) for seen in identities.values())
