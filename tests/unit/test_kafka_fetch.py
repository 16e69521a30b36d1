"""How the services' batch consumers fetch: a busy partition's records must not wait behind a
fetch of idle partitions that the broker holds (bench/freshness.py, bench/HISTORY.md, freshness)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from shared import kafka
from shared.settings import CommonSettings


@pytest.fixture(autouse=True)
def _no_outside_settings(monkeypatch):
    import os
    for name in [n for n in os.environ if n.startswith("NQT_")]:
        monkeypatch.delenv(name)


async def test_a_batch_consumer_waits_at_most_a_tenth_of_a_second_behind_a_fetch_of_idle_partitions():
    """aiokafka sends one fetch per broker at a time; while a partition's records wait for a handler
    slower than the prefetch backoff (100 ms), it fetches the other partitions alone, and the broker
    holds that fetch until `fetch_max_wait_ms` when they are idle: the busy partition's next records
    wait as long. At aiokafka's default (500 ms) programs and reports each stalled 0.4-0.6 s a few
    times per run at 500 events/s, most of the freshness p99."""
    runtime = SimpleNamespace(broker=kafka.make_broker(CommonSettings(), service="reports"))
    subscriber = kafka.batch_subscriber(runtime, "programs.changes", group_id="nqt-reports", max_records=1000)
    consumer = subscriber.builder(group_id="nqt-reports", **subscriber._connection_args)  # as FastStream starts it
    try:
        assert consumer._fetch_max_wait_ms <= 100
        assert consumer._max_partition_fetch_bytes == kafka.FETCH_PARTITION_BYTES
    finally:
        await consumer.stop()
