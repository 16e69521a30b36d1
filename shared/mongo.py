"""MongoDB access with PyMongo's async client; indexes are created at start-up.

Only the portable subset that runs on MongoDB 7+ and on FerretDB 1.24 is used
(see the conventions): no transactions, no change streams, no $lookup."""

from __future__ import annotations

import asyncio
import random
import threading
import zlib
from typing import Any

import orjson
import zstandard
from bson import Binary
from pymongo import AsyncMongoClient, IndexModel, monitoring
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import AutoReconnect, BulkWriteError, DuplicateKeyError, OperationFailure

from shared import metrics

DUPLICATE_KEY = 11000

IndexSpec = dict[str, list[IndexModel]]


class CommandMetrics(monitoring.CommandListener):
    """Durations and failures of MongoDB commands, labelled by command name and database only."""

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        pass

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        metrics.MONGO_SECONDS.labels(event.command_name, event.database_name).observe(event.duration_micros / 1e6)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        metrics.MONGO_SECONDS.labels(event.command_name, event.database_name).observe(event.duration_micros / 1e6)
        metrics.MONGO_ERRORS.labels(event.command_name, event.database_name).inc()


def connect(url: str) -> AsyncMongoClient:
    return AsyncMongoClient(url, tz_aware=True, serverSelectionTimeoutMS=10_000, appname="nq-tracker",
                            event_listeners=[CommandMetrics()])


async def ensure_indexes(db: AsyncDatabase, spec: IndexSpec, attempts: int = 8) -> None:
    """Create the indexes that do not exist yet. Only the missing ones are asked for:
    FerretDB 1.24 drops the connection when createIndexes re-sends existing ones, which
    also happens when replicas starting together race to create the same index; so a
    dropped connection is followed by a fresh look at what exists, a few times."""
    for collection, indexes in spec.items():
        for attempt in range(1, attempts + 1):
            try:
                await _create_missing(db[collection], indexes)
                break
            except (AutoReconnect, OperationFailure):
                if attempt == attempts:
                    raise
                await asyncio.sleep(random.uniform(0.05, 0.2) * attempt)


async def _create_missing(collection, indexes: list[IndexModel]) -> None:
    if not indexes:
        return
    existing = {index["name"] async for index in await collection.list_indexes()}
    missing = [index for index in indexes if index.document["name"] not in existing]
    if missing:
        await collection.create_indexes(missing)


async def ping(db: AsyncDatabase) -> bool:
    try:
        await db.command("ping")
        return True
    except Exception:
        return False


# zstd at level 1 packs a thousand outcomes (1.6 MB of JSON) six times faster than zlib did at its
# fastest level, and to a third of the size (35 KB, not 101 KB): programs packs every outcome and
# every task state it changes, and FerretDB stores and reads the smaller blobs. Values packed with
# zlib before are still read (`unpack` tells them apart by zstd's frame magic).
ZSTD_LEVEL = 1
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_codecs = threading.local()  # a zstd context serves one thread at a time; packing runs in worker threads too


def pack(value: Any, *, sort_keys: bool = True) -> Binary:
    """A value as one compressed field, for what is only ever read whole. FerretDB 1.24 spends
    its time per field, not per byte: an outcome of a dozen fields (some nested) inserts at a
    quarter of the rate of the same outcome packed. Keys sorted (unless `sort_keys` is False, for
    what is only ever compared unpacked): one value, one byte string."""
    option = orjson.OPT_SORT_KEYS if sort_keys else None
    return Binary(_codec("compressor", lambda: zstandard.ZstdCompressor(level=ZSTD_LEVEL)).compress(
        orjson.dumps(value, option=option)))


def unpack(packed: bytes) -> Any:
    if packed[:4] == _ZSTD_MAGIC:
        return orjson.loads(_codec("decompressor", zstandard.ZstdDecompressor).decompress(packed))
    return orjson.loads(zlib.decompress(packed))


PACKED_PER_REPLY = 20  # documents of packed values per reply: each may hold a megabyte or more


def find_packed(collection, query: dict):
    """A cursor over documents of packed values. FerretDB 1.24 answers a getMore with 250
    documents whatever their size, and a reply over 48 MB is refused by the client: 250 packs
    of a thousand outcomes each (zlib, before zstd) were 73 MB."""
    return collection.find(query, batch_size=PACKED_PER_REPLY)


def _codec(kind: str, make):
    codec = getattr(_codecs, kind, None)
    if codec is None:
        codec = make()
        setattr(_codecs, kind, codec)
    return codec


async def insert_once(collection, doc: dict) -> bool:
    """Insert `doc`; False when a document with its `_id` is already there (already applied)."""
    try:
        await collection.insert_one(doc)
        return True
    except DuplicateKeyError:
        return False


async def insert_many_once(collection, docs: list[dict]) -> list[int]:
    """Insert `docs` in one round trip; those whose `_id` is already there (or earlier in
    `docs`) stay as they are, and their positions in `docs` are returned."""
    if not docs:
        return []
    try:
        await collection.insert_many(docs, ordered=False)
        return []
    except BulkWriteError as err:
        if not is_duplicate(err):
            raise
        return [error["index"] for error in err.details["writeErrors"]]


async def together(*writes) -> None:
    """Await writes that do not depend on one another at once (a round trip for all, not one each).
    Every one settles before the first failure is raised: a retry of the batch never runs beside a
    write of the attempt before it."""
    for result in await asyncio.gather(*writes, return_exceptions=True):
        if isinstance(result, BaseException):
            raise result


async def tolerating_duplicate(write) -> None:
    """Await a write for which a duplicate key means "already there" (applied, or a newer state)."""
    try:
        await write
    except Exception as err:
        if not is_duplicate(err):
            raise


def is_duplicate(err: Exception) -> bool:
    """True when a write failed only because the document is already there (already applied)."""
    if isinstance(err, DuplicateKeyError):
        return True
    if isinstance(err, BulkWriteError):
        errors = err.details.get("writeErrors", [])
        return bool(errors) and all(e.get("code") == DUPLICATE_KEY for e in errors)
    return False


class GroupInsert:
    """Inserts from concurrent callers written together: while one `insert_many` is in flight
    the next callers' documents gather, then go in the next one (a group commit). Each caller
    returns once its own documents are written; a duplicate `_id` means "already there"."""

    def __init__(self, collection):
        self.collection = collection
        self.waiting: list[tuple[list[dict], asyncio.Future]] = []
        self.writer: asyncio.Task | None = None

    async def insert(self, docs: list[dict]) -> None:
        done = asyncio.get_running_loop().create_future()
        self.waiting.append((docs, done))
        if self.writer is None:
            self.writer = asyncio.create_task(self._write_while_waiting())
        await done

    async def _write_while_waiting(self) -> None:
        try:
            while self.waiting:
                group, self.waiting = self.waiting, []
                docs: dict = {}
                for batch, _ in group:
                    for doc in batch:
                        docs.setdefault(doc["_id"], doc)  # the first of an _id, as separate inserts keep it
                try:
                    await insert_many_once(self.collection, list(docs.values()))
                    outcome = None
                except Exception as err:
                    outcome = err
                for _, done in group:
                    if done.done():  # its caller gave up waiting
                        continue
                    if outcome is None:
                        done.set_result(None)
                    else:
                        done.set_exception(outcome)
        finally:
            self.writer = None
