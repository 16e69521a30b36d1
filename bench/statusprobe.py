"""`GET /v1/status` under load, and its floor, timed by a client in a process of its own.

    python bench/statusprobe.py --out FILE --interval 0.2 reports=URL floor=URL

While a bench loads the pipeline, a dashboard's request is timed against two servers at the same
cadence, one after the other in each round (the order swapped every round, so neither always
goes first): reports' `/v1/status`, and the floor, a bare responder (`bench/bare.py static`:
uvicorn, as the services serve, with a one-route ASGI app answering the very bytes of the status
taken at the end of the setup) in a process of its own. The floor is what the machine allows a
ready answer under the same load; the gap between the two is what the reports process adds.

The client is a process of its own, not a task or a thread of the bench: the bench's own work
(generating and publishing load, polling offsets, parsing pages of the status) would otherwise
hold its event loop or its interpreter's lock while a response waits to be read. Each answer is
appended to FILE as `name seconds sent` and flushed, so the bench reads whatever was timed when
it stops the probe (`sent`: `time.perf_counter()`, the system's monotonic clock on Linux, which
other processes' timestamps of the same request can be set against).

`bench/freshness.py` polls with it too (`running`, `--interval 0 --pollers 2 --overdue`): back to
back, each line then also carries what the answer shows of the overdue tasks, so that the bench
tells when a change became visible from the probe's clock, not from its own busy loop.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import harness  # noqa: E402
from deploy.local import infra as local_infra  # noqa: E402

PATH = "/v1/status"


async def probe(targets: dict[str, str], out: Path, interval: float, *, pollers: int = 1,
                overdue: bool = False) -> None:
    """GET PATH of every target once per `interval` (until killed), from `pollers` loops (staggered);
    each 200's seconds into `out`, and with `overdue` what it shows of the overdue tasks."""
    clients = {name: httpx.AsyncClient(base_url=url, timeout=600) for name, url in targets.items()}
    with out.open("a") as log:
        loops = []
        for _ in range(pollers):
            loops.append(asyncio.create_task(_loop(clients, log, interval, overdue)))
            await asyncio.sleep(0.005)
        await asyncio.gather(*loops)


async def _loop(clients: dict[str, httpx.AsyncClient], log, interval: float, overdue: bool) -> None:
    order = list(clients)
    while True:
        started = time.perf_counter()
        for name in order:
            sent = time.perf_counter()
            try:
                response = await clients[name].get(PATH)
            except httpx.TransportError:
                continue  # not up yet, or going away: no answer to time
            if response.status_code == 200:
                ended = time.perf_counter()
                shown = f" {_overdue(response.content).decode()}" if overdue else ""
                log.write(f"{name} {ended - sent:.6f} {sent:.6f}{shown}\n")
                log.flush()
        order.reverse()
        await asyncio.sleep(max(0.0, interval - (time.perf_counter() - started)))


def _overdue(body: bytes) -> bytes:
    """The overdue tasks' progress an answer shows, task id -> progress in thousandths (JSON)."""
    return orjson.dumps({t["task_id"]: round(t["progress"] * 1000) for t in orjson.loads(body)["overdue_tasks"]})


@dataclass
class Answer:
    name: str
    sent: float   # time.perf_counter() when the request was sent
    ended: float  # and when its answer was read
    overdue: dict[str, int]  # with --overdue: task id -> progress in thousandths


def answers(out: Path, offset: int = 0) -> tuple[list[Answer], int]:
    """The answers appended to `out` from byte `offset` on (whole lines), and the offset after them."""
    if not out.exists():
        return [], offset
    with out.open("rb") as file:
        file.seek(offset)
        chunk = file.read()
    whole = chunk[:chunk.rfind(b"\n") + 1]
    found = []
    for line in whole.splitlines():
        fields = line.split(b" ", 3)
        if len(fields) >= 3:
            seconds, sent = float(fields[1]), float(fields[2])
            found.append(Answer(fields[0].decode(), sent, sent + seconds,
                                orjson.loads(fields[3]) if len(fields) == 4 else {}))
    return found, offset + len(whole)


def read(out: Path, names: list[str]) -> dict[str, list[float]]:
    """The seconds timed per target, in the order they were timed."""
    latencies: dict[str, list[float]] = {name: [] for name in names}
    for answer in answers(out)[0]:
        if answer.name in latencies:
            latencies[answer.name].append(answer.ended - answer.sent)
    return latencies


@contextmanager
def floor(body: bytes, workdir: Path) -> Iterator[str]:
    """The bare responder (bench/bare.py static) answering `body`, in a process of its own: its URL."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"status-floor-{time.monotonic_ns()}.json"
    path.write_bytes(body)
    port = local_infra.free_port()
    proc = harness.python_process(["bench/bare.py", "static", "--port", str(port), "--body", str(path)])
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"the floor's responder exited ({proc.returncode})")
        try:
            return httpx.get(url + PATH, timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    try:
        harness.wait_until(answers, 60, 0.1, "the floor's responder")
        yield url
    finally:
        harness.stop_processes([proc])


@contextmanager
def probing(targets: dict[str, str], workdir: Path, interval: float) -> Iterator[dict[str, list[float]]]:
    """Time `targets` (name -> base URL) from a probe process while the body runs; the dict
    yielded is filled, name -> seconds of each answer, once the body is done."""
    latencies: dict[str, list[float]] = {}
    with running(targets, workdir, interval) as out:
        yield latencies
    latencies.update(read(out, list(targets)))  # the file stays in `workdir` (NQT_BENCH_KEEP keeps it)


@contextmanager
def running(targets: dict[str, str], workdir: Path, interval: float, *, pollers: int = 1,
            overdue: bool = False) -> Iterator[Path]:
    """The probe process (see `probe`) while the body runs, from its first round of answers on: the
    file it appends its answers to (`answers` reads them), whole once the body is done."""
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / f"statusprobe-{time.monotonic_ns()}.txt"
    proc = harness.python_process(["bench/statusprobe.py", "--out", str(out), "--interval", str(interval),
                                   "--pollers", str(pollers), *(["--overdue"] if overdue else []),
                                   *(f"{name}={url}" for name, url in targets.items())])
    answered = lambda: proc.poll() is not None or all(read(out, list(targets)).values())  # noqa: E731
    try:
        # from a round of answers on: the body's first second is timed too, not the probe's start-up
        harness.wait_until(answered, 60, 0.05, "a round of answers from the status probe")
        yield out
    finally:
        harness.stop_processes([proc])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="file the timed answers are appended to")
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between rounds (0.2)")
    parser.add_argument("--pollers", type=int, default=1, help="loops asking at once, staggered (1)")
    parser.add_argument("--overdue", action="store_true", help="log each answer's overdue tasks' progress too")
    parser.add_argument("targets", nargs="+", help="name=URL, e.g. reports=http://127.0.0.1:8003")
    args = parser.parse_args()
    targets = dict(target.split("=", 1) for target in args.targets)
    try:
        asyncio.run(probe(targets, args.out, args.interval, pollers=args.pollers, overdue=args.overdue))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
