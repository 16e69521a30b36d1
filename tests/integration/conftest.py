from __future__ import annotations

import secrets
from contextlib import asynccontextmanager

import httpx
import pytest

from shared import accepted
from shared.events import parse_event
from tests import kafkatools


class Isolated:
    """Settings for one test: its own topics and databases on the session's real infrastructure."""

    def __init__(self, infra_stack):
        self.kafka = infra_stack.kafka
        self.mongo = infra_stack.mongo
        self.prefix = f"{infra_stack.prefix}{secrets.token_hex(3)}"

    def settings(self, cls, **overrides):
        fields = dict(kafka_bootstrap=self.kafka, mongo_url=self.mongo, topic_prefix=f"{self.prefix}.",
                      db_prefix=self.prefix, topic_partitions=3, env="test")
        return cls(**(fields | overrides))

    async def publish_accepted(self, topics, raw_events: list[dict]) -> None:
        records = [accepted.stamp(parse_event(raw)) for raw in raw_events]
        for key, value in records:
            await kafkatools.produce(self.kafka, topics.accepted, [value], key=key.encode())


    async def load_registry(self, topics, raw_events: list[dict]) -> None:
        """Publish reference data and wait until the programs service applied it, as an operator does
        before units start sending (registry entries and events travel on different partitions)."""
        await self.publish_accepted(topics, raw_events)
        await kafkatools.read_topic(self.kafka, topics.outcomes, until=lambda rs: len(rs) >= len(raw_events))


@pytest.fixture
def isolated(infra_stack) -> Isolated:
    return Isolated(infra_stack)


@asynccontextmanager
async def running(app):
    """Run a service app's lifespan (Mongo, indexes, topics, subscribers) and give an HTTP client to it."""
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://service") as client:
            yield client
