"""Where a status answer under load spends its time: the probe's client times set against
reports' own timestamps of the same requests and of its garbage collections.

    NQT_BENCH_KEEP=1 NQT_STATUS_TRACE_DIR=/tmp/trace PYTHONPATH=bench/statustrace_site:. \\
        .venv/bin/python bench/pipeline.py --scale 0.2 --repeat 1      # prints "kept WORKDIR"
    .venv/bin/python bench/statustrace.py WORKDIR/statusprobe-*.txt /tmp/trace

`bench/statustrace_site/sitecustomize.py` makes the reports service write when each ready answer
entered and left its app (`shared.lanes.Lanes`) and each collection longer than 0.5 ms; the probe
(`bench/statusprobe.py`) wrote when it sent each request and how long the answer took, on the
same monotonic clock. Each answer is split into: before it entered the app (the client's send,
the server's wake-up, the interpreter's lock, parsing), in the app, and after (the body's
writes, the client's reading), beside the floor's answer in the same round.
"""

from __future__ import annotations

import bisect
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.harness import percentile  # noqa: E402

PARTS = ("total", "before entering the app", "in the app", "after leaving it", "a collection overlapping")


def probed(path: Path) -> dict[str, list[tuple[float, float]]]:
    """name -> (sent, answered) of each answer the probe timed."""
    out: dict[str, list[tuple[float, float]]] = {}
    for line in path.read_text().splitlines():
        fields = line.split(" ")
        if len(fields) == 3:
            out.setdefault(fields[0], []).append((float(fields[2]), float(fields[2]) + float(fields[1])))
    return out


def traced(folder: Path) -> tuple[list[tuple[float, float]], list[tuple[int, float, float]], list[str]]:
    """reports' (entered, left) per ready answer, (generation, start, end) per long collection, totals."""
    answers, collections, totals = [], [], []
    for path in sorted(folder.glob("reports-*.txt")):
        for line in path.read_text().splitlines():
            kind, *fields = line.split(" ")
            if kind == "req":
                answers.append((float(fields[0]), float(fields[1])))
            elif kind == "gc":
                collections.append((int(fields[0]), float(fields[1]), float(fields[2])))
            elif kind == "gctotal":
                totals.append(f"{path.stem} gen. {fields[0]}: {int(fields[1]):,} collections, {float(fields[2]):.1f} s")
    return sorted(answers), sorted(collections, key=lambda c: c[1]), totals


def split(client: list[tuple[float, float]], answers: list[tuple[float, float]],
          collections: list[tuple[int, float, float]]) -> list[tuple[float, ...]]:
    """Per answer the server saw: seconds in each of PARTS."""
    entered = [a[0] for a in answers]
    rows = []
    for sent, got in client:
        i = bisect.bisect_left(entered, sent)
        if i == len(answers) or answers[i][0] > got:
            continue  # not one reports traced (another instance, or the trace was cut)
        start, end = answers[i]
        overlap = sum(max(0.0, min(got, e) - max(sent, s)) for _, s, e in collections if s < got and e > sent)
        rows.append((got - sent, start - sent, end - start, got - end, overlap))
    return rows


def line(label: str, values_s: list[float]) -> str:
    ms = [v * 1000 for v in values_s]
    return (f"  {label:<28} p50 {percentile(ms, 50):7.2f} ms   p90 {percentile(ms, 90):7.2f}   "
            f"p99 {percentile(ms, 99):7.2f}   max {max(ms, default=float('nan')):7.2f}")


def paired(client: dict[str, list[tuple[float, float]]]) -> list[float]:
    """reports' seconds minus the floor's, answer by answer within the same round."""
    floor = client.get("floor", [])
    sent = [f[0] for f in floor]
    out = []
    for start, got in client.get("reports", []):
        i = bisect.bisect_left(sent, start)
        near = [floor[j] for j in (i - 1, i) if 0 <= j < len(floor) and abs(floor[j][0] - start) < 0.15]
        if near:
            out.append((got - start) - (near[0][1] - near[0][0]))
    return out


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    client = probed(Path(sys.argv[1]))
    answers, collections, totals = traced(Path(sys.argv[2]))
    rows = split(client.get("reports", []), answers, collections)
    print(f"{len(rows)} of {len(client.get('reports', []))} answers of reports traced; "
          f"{len(client.get('floor', []))} of the floor")
    for k, label in enumerate(PARTS):
        print(line(label, [r[k] for r in rows]))
    print(line("the floor, total", [got - sent for sent, got in client.get("floor", [])]))
    print(line("reports minus the floor", paired(client)))
    slow = sorted(rows, reverse=True)[:max(1, len(rows) // 50)]
    shares = ", ".join(f"{label} {sum(r[k] for r in slow) / sum(r[0] for r in slow):.0%}"
                       for k, label in enumerate(PARTS) if k)
    print(f"the slowest 2% ({len(slow)} answers), their time: {shares}")
    for generation in (0, 1, 2):
        took = [e - s for g, s, e in collections if g == generation]
        if took:
            print(line(f"collections of gen. {generation} > 0.5 ms ({len(took)})", took))
    print("every collection: " + "; ".join(totals))
    return 0


if __name__ == "__main__":
    sys.exit(main())
