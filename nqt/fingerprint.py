"""Fingerprints of the state that the Kafka log determines, per service: a SHA-256 over each
collection that counts, its documents in `_id` order as canonical JSON (keys sorted), leaving
out the fields that depend on when the service ran rather than on the log.

`STATE` says, per service, which collections count and which of their fields do not: when a
service changes its storage, this table is the one place to adapt. What is not listed does not
count: claims, dead letters, API keys, the delivery log, the cycles a scheduler opened and the
reports it issued (both follow the service's clock), and the like."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, Iterable

import orjson

from services.programs.store import ProgramsStore
from shared.statelog import StateLog


@dataclass(frozen=True)
class Counted:
    """A collection whose documents the log determines, but for the fields in `leave_out`. A
    collection of states kept as a changelog plus checkpoints (`states`: the field naming what a
    state is of, see `shared.statelog`) counts each one's current state: how they are chunked
    into documents depends on how the records fell into batches and when folds ran, not on the log.
    A collection whose documents are read through their service (`read`: database -> its
    documents, one at a time) counts what that reads, for the same reason (programs' outcomes,
    packed by the batch)."""
    name: str
    leave_out: frozenset[str] = frozenset()
    states: str | None = None
    read: Callable[[Any], AsyncIterator[dict]] | None = None


def _counted(*names: str, **leave_out: tuple[str, ...]) -> tuple[Counted, ...]:
    return tuple(Counted(n, frozenset(leave_out.get(n, ()))) for n in names)


STATE: dict[str, tuple[Counted, ...]] = {
    # `decided_at`: when the event was decided, which a replay does again, later.
    "programs": (*_counted("units", "programmes", "indicators", "settings", "plans", "held",
                           "issuances", "indicator_values", "unit_reports", "supervisions"),
                 Counted("outcomes", frozenset({"decided_at"}), read=lambda db: ProgramsStore(db).each_outcome()),
                 Counted("task_states", states="_id")),
    "reports": (*_counted("units", "programmes", "indicators", "settings", "plans", "history", "issued",
                          "indicator_values", "unit_reports", "supervisions", "tallies", "task_log"),
                Counted("task_states", states="task_id")),
    "ingest": _counted("units", "settings", "events", events=("decided_at",)),
    "notify": _counted("units", "settings", "tasks", "unit_reports", "cycles"),
}
SERVICES = tuple(STATE)


def _other(value: Any) -> Any:
    """What JSON has no type for: bytes (e.g. BSON Binary) as hex, anything else (ObjectId) as text."""
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    return str(value)


def canonical(value: Any) -> bytes:
    """One byte string per value, whatever the order of its keys."""
    return orjson.dumps(value, default=_other, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)


def _order(key: Any) -> tuple[int, Any]:
    """`_id` order: strings (every `_id` of ours) by their text, any other type after, by its JSON."""
    return (0, key) if isinstance(key, str) else (1, canonical(key).decode())


def _digest(counted: Counted, doc: dict) -> bytes:
    return hashlib.sha256(canonical({k: v for k, v in doc.items() if k not in counted.leave_out})).digest()


def documents(counted: Counted, docs: Iterable[dict]) -> dict[Any, bytes]:
    """`_id` -> SHA-256 of each document as it counts (without the fields left out)."""
    return {doc["_id"]: _digest(counted, doc) for doc in docs}


@dataclass(frozen=True)
class CollectionPrint:
    name: str
    count: int
    digest: str  # SHA-256 over the documents' own, in `_id` order


def collection_print(counted: Counted, docs: Iterable[dict] | dict[Any, bytes]) -> CollectionPrint:
    """The fingerprint of a collection's documents (or of their `documents` digests), in any order."""
    each = docs if isinstance(docs, dict) else documents(counted, docs)
    whole = hashlib.sha256()
    for key in sorted(each, key=_order):
        whole.update(each[key])
    return CollectionPrint(counted.name, len(each), whole.hexdigest())


@dataclass
class ServicePrint:
    service: str
    database: str
    collections: list[CollectionPrint]

    @property
    def count(self) -> int:
        return sum(c.count for c in self.collections)

    @property
    def digest(self) -> str:
        whole = hashlib.sha256()
        for c in self.collections:
            whole.update(f"{c.name}:{c.count}:{c.digest}\n".encode())
        return whole.hexdigest()


async def _documents(db, counted: Counted) -> dict[Any, bytes]:
    """`_id` -> digest of each document that counts (of states: what they are of -> the current one's)."""
    if counted.states is not None:
        current = await StateLog(db[counted.name], key=counted.states, group=lambda state: None).read()
        return {key: _digest(counted, state) for key, state in current.items()}
    if counted.read is not None:
        return {doc["_id"]: _digest(counted, doc) async for doc in counted.read(db)}
    each: dict[Any, bytes] = {}
    async for doc in db[counted.name].find({}, batch_size=5000):
        each[doc["_id"]] = _digest(counted, doc)
    return each


async def fingerprint(db, service: str) -> ServicePrint:
    """The fingerprint of `service`'s state in database `db`; one collection in memory at a time."""
    return ServicePrint(service, db.name, [collection_print(c, await _documents(db, c)) for c in STATE[service]])


@dataclass(frozen=True)
class Difference:
    collection: str
    id: Any
    how: str  # "differs", "only in <database>"


def first_differing_id(a: dict[Any, bytes], b: dict[Any, bytes], a_name: str, b_name: str) -> tuple[Any, str] | None:
    """In `_id` order, the first `_id` whose document differs or is in one of the two only."""
    for key in sorted(a.keys() | b.keys(), key=_order):
        if key not in b:
            return key, f"only in {a_name}"
        if key not in a:
            return key, f"only in {b_name}"
        if a[key] != b[key]:
            return key, "differs"
    return None


async def first_difference(a_db, a: ServicePrint, b_db, b: ServicePrint) -> Difference | None:
    """The first collection (in the table's order) whose fingerprints differ, and there the first
    `_id` that differs (read again, that collection alone); None when the two are the same."""
    for counted, ca, cb in zip(STATE[a.service], a.collections, b.collections):
        if ca.digest == cb.digest:
            continue
        found = first_differing_id(await _documents(a_db, counted), await _documents(b_db, counted),
                                   a.database, b.database)
        return Difference(counted.name, *(found or (None, "changed while it was read: compare with the services idle")))
    return None
