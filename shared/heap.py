"""Where a process's peak memory comes from, phase by phase (`NQT_HEAP_PROFILE_DIR`; off unless set).

Each phase (reading a batch, applying it, a fold, ...) starts by resetting the kernel's high-water
mark of the process's RSS (`/proc/self/clear_refs`, "5") and ends by reading it (`VmHWM`), so the
peak a phase reached is known at the cost of two small reads, cheap enough to leave on for a whole
term. The process's RSS when the phase began is kept too: what was held before it (the live state,
the libraries, the consumer's fetched records). With `NQT_HEAP_TRACE_FRAMES` > 0, tracemalloc runs
as well (slow: for a small term) and each new highest peak of a phase writes where the memory the
phase still held was allocated. Written to `<dir>/<service>-<pid>.json` after every phase that
reached a new high. While it records, the process's VmHWM is no longer its peak since start (what
a bench's sampler also reads): the file's `peak_mb` is."""

from __future__ import annotations

import json
import os
import sys
import time
import tracemalloc
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

TOP_SITES = 25
TRAIL = 500
TRACE_STEP = 10.0  # MB the peak must rise by before another snapshot (each takes seconds)


@dataclass
class Phase:
    runs: int = 0
    peak_mb: float = 0.0         # the highest VmHWM reached inside the phase
    rss_before_mb: float = 0.0   # the RSS when that run began
    rise_mb: float = 0.0         # the largest rise of a run above its starting RSS
    sites: list[str] = field(default_factory=list)


@dataclass
class Recorder:
    path: Path
    trace: bool
    phases: dict[str, Phase] = field(default_factory=dict)
    start_mb: float = 0.0
    started: float = field(default_factory=time.monotonic)
    # [seconds, where, MB, thousands of blocks]: each rise of the RSS by 2 MB or more; the blocks
    # in use flat while the RSS rises mean memory the allocators hold but the program does not
    trail: list[list] = field(default_factory=list)
    high: float = 0.0
    traced_mb: float = 0.0

    def rose(self, where: str, mb: float) -> None:
        """Note where the RSS stood higher than ever (by 2 MB): before a phase, or inside it."""
        if mb >= self.high + 2 and len(self.trail) < TRAIL:  # with the thousands of Python objects' blocks in use
            self.trail.append([round(time.monotonic() - self.started, 1), where, round(mb, 1),
                               sys.getallocatedblocks() // 1000])
        self.high = max(self.high, mb)

    def write(self) -> None:
        body = {"pid": os.getpid(), "start_mb": self.start_mb,
                "peak_mb": max((p.peak_mb for p in self.phases.values()), default=0.0),
                "phases": {name: vars(p) for name, p in sorted(self.phases.items(), key=lambda kv: -kv[1].peak_mb)},
                "trail": self.trail}
        self.path.write_text(json.dumps(body, indent=1))


_recorder: Recorder | None = None


def configure(directory: Path | None, *, service: str, trace_frames: int = 0) -> None:
    """Record this process's phases into `directory` (None: record nothing)."""
    global _recorder
    if directory is None:
        _recorder = None
        return
    directory.mkdir(parents=True, exist_ok=True)
    if trace_frames > 0 and not tracemalloc.is_tracing():
        tracemalloc.start(trace_frames)
    _recorder = Recorder(directory / f"{service}-{os.getpid()}.json", trace=trace_frames > 0, start_mb=_mb("VmRSS"))
    _recorder.write()


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Measure the peak RSS reached while the block runs (nothing when not configured). Phases
    nest, and those of other tasks run meanwhile (a job beside the consumer): every reading of the
    high-water mark (before a phase resets it, and as one ends) goes to every phase under way."""
    recorder = _recorder
    if recorder is None:
        yield
        return
    _seen(_mb("VmHWM"))  # what the phases under way reached so far, before it is reset
    _reset_peak()
    before = _mb("VmRSS")
    recorder.rose(f"before {name}", before)
    token = object()
    _open[token] = before  # raised by each reading of the high-water mark while it runs
    try:
        yield
    finally:
        _seen(_mb("VmHWM"))  # reached since the last reset: by every phase under way since
        _record(recorder, name, _open.pop(token), before)


_open: dict[object, float] = {}  # the highest RSS seen so far by each phase under way


def _seen(mb: float) -> None:
    for token, held in _open.items():
        _open[token] = max(held, mb)


def _record(recorder: Recorder, name: str, peak: float, before: float) -> None:
    recorder.rose(f"in {name}", peak)
    seen = recorder.phases.setdefault(name, Phase())
    seen.runs += 1
    seen.rise_mb = max(seen.rise_mb, peak - before)
    if peak <= seen.peak_mb:
        return
    seen.peak_mb, seen.rss_before_mb = peak, before
    if recorder.trace and peak >= recorder.traced_mb + TRACE_STEP:  # what is held as the phase ends, by where
        recorder.traced_mb = peak
        stats = tracemalloc.take_snapshot().statistics("traceback")[:TOP_SITES]
        seen.sites = [f"{s.size / 2**20:.1f} MB in {s.count} blocks: " +
                      " <- ".join(f"{f.filename.rsplit('site-packages/', 1)[-1]}:{f.lineno}" for f in s.traceback)
                      for s in stats]
    recorder.write()


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:  # not Linux, or not allowed: the peaks are then since the start
        pass


def _mb(field_name: str) -> float:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0
