"""A steady load of mixed events, sent the way departmental systems send them: over HTTP
with the unit's API key (single events and small batches), and some straight to Kafka
(`inbound.events`). A failed send (503, a refused or cut connection, a timeout) is sent
again with the same ids, so a retry is a duplicate, never a new event. Every id that got
a 202 (or was acknowledged by Kafka) is recorded, and so is every failed send that may have
got in all the same: the checker holds the system to them."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx
import orjson
from aiokafka import AIOKafkaProducer

from tests import kafkatools, samples
from tests.faults.harness import Deployment

LEADS = ("SO-KHDT", "SO-TC")
OTHER = "Q-BADINH"      # a registered unit that leads no task: its updates are forbidden
OFFICE = "VPTU"         # may update any task
GIVE_UP_S = 240.0       # a send still failing after this long fails the scenario
WINDOW = 10             # events shuffled among themselves: some updates go before their plan
NEVER_IN = ("ConnectError",)  # failures of a send that cannot have reached ingest


@dataclass(frozen=True)
class Send:
    events: tuple[dict, ...]
    route: str  # "http" or "kafka" (one event per record)

    @property
    def source(self) -> str:
        return self.events[0]["source"]


def stream(tag: str, plans: int, updates: int, seed: int) -> list[Send]:
    """Plans (a tenth invalid, a fifth revised a little later), updates by the lead unit, the
    Office or a unit that may not (some sent just before their plan, some after a revision
    dropped their task), updates about a programme that does not exist, events sent twice."""
    rng = random.Random(seed)
    valid, events, n_plan = [], [], 0
    revisions: dict[int, dict] = {}  # position in the stream -> a revision due there
    for n in range(plans + updates):
        if len(events) in revisions:
            events.append(revisions.pop(len(events)))
        if n_plan < plans and (not valid or rng.random() < plans / (plans + updates) * 1.5):
            plan, revision = _plan_and_revision(rng, tag, n_plan, valid)
            events.append(plan)
            if revision:  # well after the original, beyond the shuffle below, so it revises it
                revisions[len(events) + WINDOW + rng.randint(3, 10)] = revision
            n_plan += 1
            continue
        plan = rng.choice(valid[-8:] if rng.random() < 0.5 else valid)  # mostly recent plans
        task = rng.choice(plan["data"]["tasks"])
        roll = rng.random()
        source = plan["source"] if roll < 0.8 else OFFICE if roll < 0.9 else OTHER
        programme = "09" if rng.random() < 0.03 else plan["data"]["programme"]
        time_ = f"2021-03-{rng.randint(2, 28):02d}T{rng.randint(8, 17):02d}:{rng.randint(0, 59):02d}:00+07:00"
        events.append(samples.task_update(source, f"{tag}-U{n}", task["task_id"], programme,
                                          rng.choice(("in_progress", "completed", "blocked")),
                                          rng.randint(0, 100), time=time_))
    events += [revisions[k] for k in sorted(revisions)]
    # Shuffled within windows: some updates before their plan.
    ordered = []
    for i in range(0, len(events), WINDOW):
        window = events[i:i + WINDOW]
        rng.shuffle(window)
        ordered += window
    for event in rng.sample(ordered, max(1, len(ordered) // 30)):  # sent again on purpose, a little later
        ordered.insert(min(len(ordered), ordered.index(event) + rng.randint(1, 20)), event)
    sends, i = [], 0
    while i < len(ordered):
        if rng.random() < 0.15:
            sends.append(Send((ordered[i],), "kafka"))
            i += 1
            continue
        batch, size = [ordered[i]], rng.randint(1, 4)
        i += 1
        while i < len(ordered) and len(batch) < size and ordered[i]["source"] == batch[0]["source"] \
                and ordered[i] not in batch:
            batch.append(ordered[i])
            i += 1
        sends.append(Send(tuple(batch), "http"))
    return sends


def _plan_and_revision(rng: random.Random, tag: str, n: int, valid: list[dict]) -> tuple[dict, dict | None]:
    source, programme = rng.choice(LEADS), rng.choice(("01", "02"))
    broken = rng.random() < 0.1
    tasks = [samples.task(f"{tag}-P{n}-T{k}", lead_unit=source, milestones=0 if broken and k == 0 else 1)
             for k in range(rng.randint(2, 4))]
    plan = samples.plan(source, f"{tag}-P{n}", f"KH-{tag}-{n}", programme, tasks,
                        time=f"2021-02-{1 + n % 27:02d}T09:{n % 60:02d}:00+07:00")
    if broken:
        return plan, None
    valid.append(plan)
    if rng.random() < 0.2:  # a revision drops the last task: its later updates are refused
        return plan, samples.plan(source, f"{tag}-P{n}-R", plan["data"]["plan_id"], programme, tasks[:-1],
                                  time="2021-03-01T09:00:00+07:00")
    return plan, None


@dataclass
class Load:
    deployment: Deployment
    sends: list[Send]
    rate: float                      # events per second
    workers: int = 3
    accepted: Counter = field(default_factory=Counter)   # event key -> 202s / Kafka acks
    unsure: Counter = field(default_factory=Counter)     # event key -> failed sends that may have got in
    route: dict[str, str] = field(default_factory=dict)  # event key -> http | kafka
    events: dict[str, dict] = field(default_factory=dict)
    retries: int = 0
    in_flight: int = 0                                   # HTTP requests waiting for their answer
    failures: Counter = field(default_factory=Counter)   # why a send had to be retried
    started: float = 0.0
    finished: float = 0.0
    _next_url: itertools.cycle | None = None
    _index: dict[int, int] = field(default_factory=dict)  # id(send) -> events sent before it
    _safe: list[bool] = field(default_factory=list)       # may the load stop before send i?
    _stop_at: int | None = None
    _next: int = 0
    _going: asyncio.Event = field(default_factory=asyncio.Event)  # cleared while paused
    _paused_at: float = 0.0

    def stop(self) -> None:
        """Stop at the next point where every update sent so far has had its plan sent too
        (so none waits for ever), once what is in hand got through."""
        i = self._next
        while i < len(self.sends) and not self._safe[i]:
            i += 1
        self._stop_at = i

    def pause(self) -> None:
        """Send nothing new until `resume` (sends in hand go on, retries included)."""
        if self._going.is_set():
            self._going.clear()
            self._paused_at = time.monotonic()

    def resume(self) -> None:
        if not self._going.is_set():
            self.started += time.monotonic() - self._paused_at  # the pace goes on, no burst to catch up
            self._going.set()

    async def run(self) -> None:
        """Send at `rate`, from `workers` concurrent clients, until stopped or all is sent;
        return when every send in hand got through."""
        self.started = time.monotonic()
        producer = AIOKafkaProducer(bootstrap_servers=self.deployment.kafka, acks="all", enable_idempotence=True,
                                    request_timeout_ms=15_000)
        await producer.start()
        try:
            async with httpx.AsyncClient(timeout=httpx.Timeout(20.0, connect=3.0)) as client:
                await asyncio.gather(*(self._worker(client, producer) for _ in range(self.workers)))
        finally:
            await producer.stop()
        self.finished = time.monotonic()

    async def _worker(self, client: httpx.AsyncClient, producer: AIOKafkaProducer) -> None:
        while self._next < min(len(self.sends), len(self.sends) if self._stop_at is None else self._stop_at):
            send = self.sends[self._next]
            self._next += 1
            # Pace the whole load: the n-th event goes out no earlier than n / rate.
            due = self.started + self._sent_before(send) / self.rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            await self._going.wait()
            if send.route == "kafka":
                await self._produce(producer, send)
            else:
                await self._post(client, send)

    def _sent_before(self, send: Send) -> int:
        return self._index[id(send)]

    def __post_init__(self) -> None:
        count, planned, waiting = 0, set(), set()
        for send in self.sends:
            self._index[id(send)] = count
            count += len(send.events)
            self._safe.append(not waiting)
            for event in send.events:
                if event["type"] == "plan.submitted":
                    planned.update(t["task_id"] for t in event["data"]["tasks"])
                    waiting -= planned
                elif event["data"]["task_id"] not in planned:
                    waiting.add(event["data"]["task_id"])
        self._next_url = itertools.cycle(self.deployment.ingest_urls())
        self._going.set()
        for send in self.sends:
            for event in send.events:
                key = f"{event['source']}:{event['id']}"
                self.events[key] = event
                self.route.setdefault(key, send.route)

    def _record(self, send: Send) -> None:
        for event in send.events:
            self.accepted[f"{event['source']}:{event['id']}"] += 1

    def _failed(self, send: Send, why: str) -> None:
        """A send failed: if it may have got in all the same (all but a refused connection),
        its events may be on Kafka once more than they were acknowledged."""
        self.failures[why] += 1
        if why not in NEVER_IN:
            for event in send.events:
                self.unsure[f"{event['source']}:{event['id']}"] += 1

    async def _post(self, client: httpx.AsyncClient, send: Send) -> None:
        body = orjson.dumps(list(send.events) if len(send.events) > 1 else send.events[0])
        headers = {"Authorization": f"Bearer {self.deployment.keys[send.source]}",
                   "Content-Type": "application/json"}
        deadline, attempt = time.monotonic() + GIVE_UP_S, 0
        while True:
            attempt += 1
            self.in_flight += 1
            try:
                response = await client.post(f"{next(self._next_url)}/v1/events", content=body, headers=headers)
            except httpx.TransportError as err:
                why = type(err).__name__
            else:
                if response.status_code == 202:
                    assert response.json()["ids"] == [e["id"] for e in send.events]
                    self._record(send)
                    return
                if response.status_code not in (500, 502, 503, 504):
                    raise AssertionError(f"POST refused with {response.status_code}: {response.text[:500]}")
                why = str(response.status_code)
            finally:
                self.in_flight -= 1
            self._failed(send, why)
            if time.monotonic() > deadline:
                raise AssertionError(f"a send kept failing for {GIVE_UP_S:.0f}s ({why}); ids "
                                     f"{[e['id'] for e in send.events]}")
            self.retries += 1
            await asyncio.sleep(min(0.1 * 2 ** attempt, 1.0))

    async def _produce(self, producer: AIOKafkaProducer, send: Send) -> None:
        event = send.events[0]
        value = orjson.dumps(event)
        # Signed once: a retry is the same record again (one of the two is taken, the other is a replay).
        headers = kafkatools.signature(value, self.deployment.signing_secrets[event["source"]])
        deadline, attempt = time.monotonic() + GIVE_UP_S, 0
        while True:
            attempt += 1
            try:
                await asyncio.wait_for(producer.send_and_wait(self.deployment.topics.inbound, value,
                                                              key=event["source"].encode(), headers=headers), 20)
                self._record(send)
                return
            except Exception as err:  # broker down, timed out, connection cut: send the same bytes again
                why = f"kafka {type(err).__name__}"
            self._failed(send, why)
            if time.monotonic() > deadline:
                raise AssertionError(f"producing {event['id']} kept failing for {GIVE_UP_S:.0f}s ({why})")
            self.retries += 1
            await asyncio.sleep(min(0.1 * 2 ** attempt, 1.0))

    @property
    def retried(self) -> int:
        """Sends repeated after a failure that may have come after ingest had them (an answer
        lost, a 503); a refused connection never reached it, so it is no redelivery."""
        return sum(n for why, n in self.failures.items() if why not in NEVER_IN)

    @property
    def total_events(self) -> int:
        return sum(len(s.events) for s in self.sends)
