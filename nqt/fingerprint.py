"""Fingerprints of the state that the Kafka log determines, per service: a SHA-256 over each
collection that counts, its documents in `_id` order as canonical JSON (keys sorted), leaving
out the fields that depend on when the service ran rather than on the log.

`STATE` says, per service, which collections count and which of their fields do not: when a
service changes its storage, this table is the one place to adapt. What is not listed does not
count: claims, dead letters, API keys, the delivery log, the cycles a scheduler opened and the
reports it issued (both follow the service's clock), and the like."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Iterable

import orjson


@dataclass(frozen=True)
class Counted:
    """A collection whose documents the log determines, but for the fields in `leave_out`."""
    name: str
    leave_out: frozenset[str] = frozenset()


def _counted(*names: str, **leave_out: tuple[str, ...]) -> tuple[Counted, ...]:
    return tuple(Counted(n, frozenset(leave_out.get(n, ()))) for n in names)


STATE: dict[str, tuple[Counted, ...]] = {
    # `decided_at`: when the event was decided, which a replay does again, later.
    "programs": _counted("units", "programmes", "indicators", "settings", "plans", "tasks", "history", "held",
                         "issuances", "indicator_values", "unit_reports", "supervisions", "outcomes",
                         outcomes=("decided_at",)),
    "reports": _counted("units", "programmes", "indicators", "settings", "plans", "tasks", "history", "issued",
                        "indicator_values", "unit_reports", "supervisions"),
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


@dataclass
class CollectionPrint:
    name: str
    docs: dict[Any, bytes] = field(default_factory=dict)  # _id -> SHA-256 of the document as counted

    def add(self, doc: dict, leave_out: frozenset[str]) -> None:
        kept = {k: v for k, v in doc.items() if k not in leave_out}
        self.docs[doc["_id"]] = hashlib.sha256(canonical(kept)).digest()

    def ids(self) -> list[Any]:
        return sorted(self.docs, key=_order)

    @property
    def digest(self) -> str:
        whole = hashlib.sha256()
        for key in self.ids():
            whole.update(self.docs[key])
        return whole.hexdigest()


def collection_print(counted: Counted, docs: Iterable[dict]) -> CollectionPrint:
    printed = CollectionPrint(counted.name)
    for doc in docs:
        printed.add(doc, counted.leave_out)
    return printed


@dataclass
class ServicePrint:
    service: str
    database: str
    collections: list[CollectionPrint]

    @property
    def digest(self) -> str:
        whole = hashlib.sha256()
        for c in self.collections:
            whole.update(f"{c.name}:{len(c.docs)}:{c.digest}\n".encode())
        return whole.hexdigest()


async def fingerprint(db, service: str) -> ServicePrint:
    """The fingerprint of `service`'s state in database `db` (read in any order, hashed in `_id` order)."""
    collections = []
    for counted in STATE[service]:
        printed = CollectionPrint(counted.name)
        async for doc in db[counted.name].find({}, batch_size=5000):
            printed.add(doc, counted.leave_out)
        collections.append(printed)
    return ServicePrint(service, db.name, collections)


@dataclass(frozen=True)
class Difference:
    collection: str
    id: Any
    how: str  # "differs", "only in <database>"


def first_difference(a: ServicePrint, b: ServicePrint) -> Difference | None:
    """The first collection (in the table's order) whose documents differ, and there the first
    `_id` that differs or is in one database only; None when the two are the same."""
    for ca, cb in zip(a.collections, b.collections):
        if ca.docs == cb.docs:
            continue
        for key in sorted(ca.docs.keys() | cb.docs.keys(), key=_order):
            if key not in cb.docs:
                return Difference(ca.name, key, f"only in {a.database}")
            if key not in ca.docs:
                return Difference(ca.name, key, f"only in {b.database}")
            if ca.docs[key] != cb.docs[key]:
                return Difference(ca.name, key, "differs")
    return None
