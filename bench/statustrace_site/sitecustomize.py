"""Loaded by every Python process started with this directory on PYTHONPATH (bench/statustrace.py
says how); does something only in a reports service with NQT_STATUS_TRACE_DIR set: writes, at
exit, when each ready answer (shared/lanes.py) entered and left the app and when each garbage
collection longer than half a millisecond ran, on `time.perf_counter()` (the system's monotonic
clock, as the status probe's), to NQT_STATUS_TRACE_DIR/reports-PID.txt. A diagnostic, never
part of a deployment."""

import os
import sys

if "services.reports" in getattr(sys, "orig_argv", ()) and os.environ.get("NQT_STATUS_TRACE_DIR"):
    import atexit
    import gc
    import threading
    import time

    from shared import lanes

    _rows: list[str] = []
    _totals: dict[int, list[float]] = {}
    _started: list[float] = [0.0]

    def _on_gc(phase: str, info: dict) -> None:
        now = time.perf_counter()
        if phase == "start":
            _started[0] = now
            return
        took, generation = now - _started[0], info["generation"]
        total = _totals.setdefault(generation, [0, 0.0])
        total[0] += 1
        total[1] += took
        if took > 0.0005:
            _rows.append(f"gc {generation} {_started[0]:.6f} {now:.6f} {threading.current_thread().name}")

    _call = lanes.Lanes.__call__

    async def _traced(self, scope, receive, send):
        if scope.get("type") != "http" or scope.get("path") not in self.ready:
            return await _call(self, scope, receive, send)
        entered = time.perf_counter()
        await _call(self, scope, receive, send)
        _rows.append(f"req {entered:.6f} {time.perf_counter():.6f}")

    def _dump() -> None:
        path = os.path.join(os.environ["NQT_STATUS_TRACE_DIR"], f"reports-{os.getpid()}.txt")
        with open(path, "w") as out:
            out.writelines(row + "\n" for row in _rows)
            out.writelines(f"gctotal {g} {n} {s:.6f}\n" for g, (n, s) in sorted(_totals.items()))

    gc.callbacks.append(_on_gc)
    lanes.Lanes.__call__ = _traced
    atexit.register(_dump)
