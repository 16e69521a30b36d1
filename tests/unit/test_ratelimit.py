"""The moving window remembers a bounded number of keys, and the stalest go first."""

from __future__ import annotations

from shared.ratelimit import MovingWindow


def test_a_flood_of_new_keys_keeps_memory_bounded():
    window = MovingWindow(limit=2, seconds=60.0, max_keys=100)
    for n in range(10_000):
        assert window.hit(f"10.0.{n // 250}.{n % 250}", n / 1e3) is None
    assert len(window.hits) == 100
    assert [window.hit("nguyen.an", 11.0) for _ in range(3)][2] is not None  # each key still limited


def test_keys_whose_hits_left_the_window_are_dropped_first():
    window = MovingWindow(limit=1, seconds=10.0, max_keys=2)
    window.hit("old", 0.0)
    window.hit("busy", 15.0)
    window.hit("new", 16.0)  # over the bound: "old" is quiet for 10 s and goes, "busy" stays
    assert set(window.hits) == {"busy", "new"}
    assert window.hit("busy", 16.0) is not None


def test_blocked_counts_nothing():
    window = MovingWindow(limit=1, seconds=10.0)
    assert window.blocked("a", 0.0) is None
    assert window.hit("a", 0.0) is None
    assert window.blocked("a", 5.0) == 5.0
