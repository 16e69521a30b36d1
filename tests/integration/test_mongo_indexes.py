"""Replicas starting together each create the service's indexes at the same moment."""

from __future__ import annotations

import asyncio

from services.notify.store import INDEXES as NOTIFY
from services.programs.store import INDEXES as PROGRAMS
from shared import mongo


async def test_replicas_starting_together_all_get_their_indexes(isolated):
    clients = [mongo.connect(isolated.mongo) for _ in range(4)]
    try:
        for name, spec in (("notify", NOTIFY), ("programs", PROGRAMS)):
            dbs = [client[f"{isolated.prefix}_{name}"] for client in clients]
            await asyncio.gather(*(mongo.ensure_indexes(db, spec) for db in dbs))
            for collection, indexes in spec.items():
                names = {index["name"] async for index in await dbs[0][collection].list_indexes()}
                assert {index.document["name"] for index in indexes} <= names, (name, collection)
    finally:
        await asyncio.gather(*(client.close() for client in clients))
