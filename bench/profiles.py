"""Profiles of a running service process with py-spy (a dev dependency): the raw
collapsed stacks, and a short text summary of where the samples fall.

    with profiles.recording(pid, Path("bench/results/profiles/ingest-single"), duration=12):
        ...  # drive the load

writes ingest-single.folded (raw, not committed) and ingest-single.txt (the summary)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

PY_SPY = Path(sys.executable).with_name("py-spy")


@contextmanager
def recording(pid: int, stem: Path, *, duration: float, rate: int = 250) -> Iterator[None]:
    """Record `pid` for `duration` seconds (py-spy's --duration) while the body runs."""
    exe = str(PY_SPY) if PY_SPY.exists() else shutil.which("py-spy")
    if not exe:
        raise RuntimeError("py-spy is not installed: `uv sync` installs the dev dependencies")
    stem.parent.mkdir(parents=True, exist_ok=True)
    folded = stem.with_suffix(".folded")
    proc = subprocess.Popen([exe, "record", "--pid", str(pid), "--duration", str(int(duration)), "--rate", str(rate),
                             "--format", "raw", "--output", str(folded), "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        yield
    finally:
        _, err = proc.communicate(timeout=duration + 60)
        if proc.returncode != 0 or not folded.exists():
            raise RuntimeError(f"py-spy failed ({proc.returncode}): {err[-1000:]}")
        stem.with_suffix(".txt").write_text(summarise(folded.read_text()))


def _frame(frame: str) -> str:
    """`name (path/to/file.py:LINE)` -> `name (file.py)`; shortened paths of site-packages."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    if "site-packages/" in where:
        where = where.split("site-packages/", 1)[1]
    elif "/lib/python" in where:
        where = "stdlib/" + where.split("/lib/python", 1)[1].split("/", 1)[-1]
    else:
        where = where.split("/bench/", 1)[-1]
    return f"{name} ({where})"


def summarise(folded: str, top: int = 40) -> str:
    """Self time by function, inclusive time by function and by module, as % of all samples."""
    own, inclusive, modules = Counter(), Counter(), Counter()
    total = idle = 0
    for line in folded.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_frame(f) for f in stack.split(";") if f]
        if not frames:
            continue
        total += n
        if any(f.startswith(("select (", "poll (", "epoll")) or "selectors.py" in f for f in frames[-2:]):
            idle += n
        own[frames[-1]] += n
        for f in set(frames):
            inclusive[f] += n
        top_module = {f.split(" (", 1)[1].split("/", 1)[0].rstrip(")") for f in frames}
        for m in top_module:
            modules[m] += n
    if not total:
        return "no samples\n"
    pct = lambda n: f"{100 * n / total:5.1f}%"  # noqa: E731
    lines = [f"{total} samples; waiting in the event loop's selector (idle): {pct(idle)}", "",
             "self time (the function itself):"]
    lines += [f"  {pct(n)}  {name}" for name, n in own.most_common(top)]
    lines += ["", "inclusive time (the function and what it calls):"]
    lines += [f"  {pct(n)}  {name}" for name, n in inclusive.most_common(top)]
    lines += ["", "inclusive time by top-level package/module:"]
    lines += [f"  {pct(n)}  {name}" for name, n in modules.most_common(25)]
    return "\n".join(lines) + "\n"
