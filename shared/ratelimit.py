"""A moving-window rate limit kept in one process's memory, bounded in the keys it remembers.

Each key keeps the times of its hits still inside the window (at most `limit`), so a hit
costs no thread and no timer. The keys are bounded too (`max_keys`): keys whose hits have
all left the window go first, then the least recently hit, so a flood of new keys (login
attempts from many addresses, say) costs bounded memory; what it can do is make the limiter
forget the oldest quiet keys early."""

from __future__ import annotations

import math
from collections import deque


class MovingWindow:
    """At most `limit` hits per key in any `seconds`."""

    def __init__(self, *, limit: int, seconds: float, max_keys: int = 100_000):
        self.limit, self.seconds, self.max_keys = limit, seconds, max_keys
        self.hits: dict[str, deque[float]] = {}  # in order of last hit: the first is the stalest

    def hit(self, key: str, now: float) -> float | None:
        """Count a hit at `now` (monotonic seconds); None when admitted, else the seconds
        until a slot frees (a refused hit is not counted)."""
        free_in = self.blocked(key, now)
        if free_in is not None:
            return free_in
        hits = self.hits.pop(key, None) or deque()
        hits.append(now)
        self.hits[key] = hits  # last hit: to the end
        if len(self.hits) > self.max_keys:
            self._shrink(now)
        return None

    def blocked(self, key: str, now: float) -> float | None:
        """The seconds until `key` may hit again, None when it may now; counts nothing."""
        hits = self.hits.get(key)
        if hits is None:
            return None
        while hits and hits[0] <= now - self.seconds:
            hits.popleft()
        if len(hits) < self.limit:
            return None
        return hits[0] + self.seconds - now

    def _shrink(self, now: float) -> None:
        for key in [k for k, hits in self.hits.items() if not hits or hits[-1] <= now - self.seconds]:
            del self.hits[key]
        while len(self.hits) > self.max_keys:
            del self.hits[next(iter(self.hits))]


def retry_after(seconds: float) -> int:
    """The Retry-After for a slot that frees in `seconds`: whole seconds, at least 1."""
    return max(1, math.ceil(seconds))
