"""The consumer-lag gauge, from what a running consumer already knows."""

from __future__ import annotations

from types import SimpleNamespace

from aiokafka import TopicPartition
from aiokafka.errors import IllegalStateError

from prometheus_client import REGISTRY

from shared import lag

T = "nqt.events.accepted"


class Consumer:
    def __init__(self, highwater: dict, positions: dict, revoked=()):
        self.highwaters, self.positions, self.revoked = highwater, positions, set(revoked)

    def assignment(self):
        return set(self.highwaters)

    def highwater(self, tp):
        assert tp not in self.revoked, "Partition is not assigned"
        return self.highwaters[tp]

    async def position(self, tp):
        if tp in self.revoked:
            raise IllegalStateError("not assigned")
        return self.positions[tp]


def gauge(partition: int) -> float | None:
    return REGISTRY.get_sample_value("nqt_consumer_lag", {"service": "programs", "group": "g",
                                                                  "topic": T, "partition": str(partition)})


async def test_lag_is_what_the_last_fetch_saw_beyond_the_position_and_given_up_partitions_vanish():
    tps = [TopicPartition(T, p) for p in range(4)]
    consumer = Consumer({tps[0]: 10, tps[1]: 5, tps[2]: None, tps[3]: 8}, {tps[0]: 7, tps[1]: 5, tps[3]: 2},
                        revoked=[tps[3]])
    broker = SimpleNamespace(subscribers=[SimpleNamespace(consumer=consumer, group_id="g")])
    await lag.measure(broker, "programs")
    assert [gauge(p) for p in range(4)] == [3, 0, None, None]   # not fetched yet, or revoked meanwhile: left out
    consumer.highwaters = {tps[1]: 9}
    consumer.positions = {tps[1]: 6}
    await lag.measure(broker, "programs")
    assert [gauge(p) for p in range(4)] == [None, 3, None, None]  # partition 0 was given up: its series goes
