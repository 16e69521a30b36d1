"""Keyed states kept as a changelog plus checkpoints, in one collection (the way Kafka Streams and
Quix Streams keep a partition's state): FerretDB 1.24 spends its time per document and per field,
so a batch's changed states go in ONE packed document rather than one insert and one delete per
state, and a cold load reads a few checkpoints rather than a document per state.

Every state carries `seq`, increasing per key; a state belongs to one group (what loading asks by,
e.g. its programme) and is found by its tags: its group and the groups its `left` field lists
(loading a group a key left must see that it left, so a state keeps them once it moved). Documents are `{_id, g: tags, z: states packed}`, each
`_id` new per write, so a batch written again after a crash (bounded differently, perhaps) adds
a copy and never skips one; copies are harmless, as loading keeps the highest `seq` per key.

Now and then the owner folds: one checkpoint per group changed (`cp`: the group, every state of
it), written before the documents it replaces are deleted, so a crash between any two writes
leaves every state in some document. Only the owner of a group's partition writes, between
batches, under the lock its batches take; what it knows of the documents (`Known`) it forgets
with the rest of its memory."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable, Collection, Iterable

from bson import ObjectId
from pymongo import ASCENDING, IndexModel

from shared import heap, mongo

STATES_PER_DOC = 2000  # a few hundred kB packed: far below 16 MB, and one insert for most batches
FOLD_DOCS = 100        # changelog documents a load may have to read, at most, before a fold
FOLD_FLOOR = 1000      # states logged that make a fold worth it however small the checkpoints

INDEXES = [IndexModel([("g", ASCENDING)])]
log = logging.getLogger("nqt.statelog")


@dataclass
class Known:
    """What an owner knows of the documents that hold its groups' states: the changelog documents
    (id -> the keys in them) and the checkpoints (group -> their ids), read at load or written."""
    logged: dict[str, frozenset] = field(default_factory=dict)
    checkpoints: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def logged_states(self) -> int:
        return sum(len(keys) for keys in self.logged.values())


class StateLog:
    """States of `key` in `collection`; `group` says a state's group."""

    def __init__(self, collection, *, key: str, group: Callable[[dict], str]):
        self.collection = collection
        self.key, self.group = key, group

    def tags(self, state: dict) -> list[str]:
        """The groups a state is found by: its own and those it left."""
        return [self.group(state), *state.get("left", ())]

    async def read(self, groups: Iterable[str] | None = None, known: Known | None = None) -> dict:
        """The current state (highest `seq`) of every key of these groups (None: of every group);
        `known` learns the documents read, so that a later fold replaces them."""
        wanted = None if groups is None else sorted(set(groups))
        if wanted == []:
            return {}
        latest: dict = {}
        async for doc in mongo.find_packed(self.collection, {} if wanted is None else {"g": {"$in": wanted}}):
            states = mongo.unpack(doc["z"])
            if known is not None:
                _learn(known, doc, [s[self.key] for s in states])
            for state in states:
                held = latest.get(state[self.key])
                if held is None or held["seq"] < state["seq"]:
                    latest[state[self.key]] = state
        if wanted is None:
            return latest
        return {k: s for k, s in latest.items() if self.group(s) in wanted}

    async def append(self, states: list[dict], known: Known) -> None:
        """Log the states a batch changed: one document (a few for a very big batch)."""
        docs = await asyncio.to_thread(lambda: [self._doc("log", chunk) for chunk in _chunks(states)])
        if docs:
            await self.collection.insert_many(docs, ordered=False)  # new ids: nothing is skipped
        for doc, chunk in zip(docs, _chunks(states)):
            known.logged[doc["_id"]] = frozenset(s[self.key] for s in chunk)

    def due(self, known: Known, held: int) -> bool:
        """Fold now? When a load would read many changelog documents, or the changelog holds
        about as many states as the checkpoints (`held`): the fold's cost is then amortised."""
        return len(known.logged) >= FOLD_DOCS or known.logged_states() >= max(FOLD_FLOOR, held)

    async def fold(self, states: Iterable[dict], groups: set[str], known: Known) -> None:
        """Write a checkpoint of each of `groups` that the changelog changed, from `states` (the
        owner's current states of `groups`), then delete the changelog documents it covers and the
        checkpoints it replaces. A changelog document with a key of a group not held stays."""
        started = time.perf_counter()
        by_group: defaultdict[str, list[dict]] = defaultdict(list)
        for state in states:
            if self.group(state) in groups:
                by_group[self.group(state)].append(state)
        current = {s[self.key]: s for members in by_group.values() for s in members}
        folded = [doc for doc, keys in known.logged.items() if keys <= current.keys()]
        touched = sorted({self.group(current[k]) for doc in folded for k in known.logged[doc]})
        del current
        written: dict[str, set[str]] = {}
        for g in touched:  # a document at a time: a whole term's states packed at once are tens of MB
            written[g] = set()
            for chunk in _chunks(sorted(by_group[g], key=lambda s: s[self.key])):
                doc = await asyncio.to_thread(self._doc, "cp", chunk, g)  # packing: the loop answers meanwhile
                await self.collection.insert_many([doc], ordered=False)
                written[g].add(doc["_id"])
        replaced = folded + [doc for g in touched for doc in known.checkpoints[g]]
        if replaced:
            await self.collection.delete_many({"_id": {"$in": replaced}})
        for doc in folded:
            del known.logged[doc]
        for g, ids in written.items():
            known.checkpoints[g] = ids
        log.info("folded %d changelog documents into %d checkpoints in %.0f ms", len(folded), len(touched),
                 1000 * (time.perf_counter() - started))

    async def fold_if_due(self, states: Collection[dict], groups: set[str], known: Known) -> None:
        """Fold when it is due (see `due`)."""
        if known.logged and self.due(known, held=len(states)):
            with heap.phase("statelog.fold"):
                await self.fold(states, groups, known)

    async def adopt(self, states: Iterable[dict]) -> dict:
        """Take states kept some other way (a database from before, a bench's read model): the
        highest `seq` of each key becomes part of its group's checkpoint; return those."""
        latest: dict = {}
        for state in states:
            if state[self.key] not in latest or latest[state[self.key]]["seq"] < state["seq"]:
                latest[state[self.key]] = state
        known = Known()
        await self.append(list(latest.values()), known)
        await self.fold(latest.values(), {self.group(s) for s in latest.values()}, known)
        return latest

    async def take_over(self, versions, state: Callable[[dict], dict], then=None) -> None:
        """A collection from before the changelog, a document per version of a state (`state`
        makes it one): its latest states adopted, `then` awaited with them, then its documents
        deleted (a crash before: taken over again)."""
        adopted = await self.adopt([state(doc) async for doc in versions.find({})])
        if adopted:
            if then is not None:
                await then(list(adopted.values()))
            await versions.delete_many({})

    # Packing is pure CPU (tens of ms for a batch, more for a fold): done in a worker thread, it lets
    # the event loop answer requests meanwhile (the interpreter switches threads every few ms).
    # The states are lists made on the loop; their owner changes none while the batch is in hand.
    def _doc(self, kind: str, states: list[dict], checkpoint: str | None = None) -> dict:
        tags = sorted({tag for state in states for tag in self.tags(state)})
        doc = {"_id": f"{kind}|{ObjectId()}", "g": tags, "z": mongo.pack(states)}
        return {**doc, "cp": checkpoint} if checkpoint is not None else doc


def _learn(known: Known, doc: dict, keys: list) -> None:
    if "cp" in doc:
        known.checkpoints[doc["cp"]].add(doc["_id"])
    else:
        known.logged[doc["_id"]] = frozenset(keys)


def _chunks(states: list[dict]) -> list[list[dict]]:
    return [states[i:i + STATES_PER_DOC] for i in range(0, len(states), STATES_PER_DOC)]
