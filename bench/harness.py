"""What every bench script shares: the real infrastructure, the services as processes,
statistics and printing, a peak-RSS sampler and the results file.

    from bench import harness
    with harness.infrastructure() as infra:                      # Kafka + FerretDB, or NQT_* ones
        with harness.services(infra, ["ingest", "programs", "reports"], logs=...) as running:
            with harness.RssSampler(running.pids()) as rss:
                ...
            print(harness.row("figure", values, unit="ms", baseline=..., target=...))
    harness.write_results({"freshness_p99_ms": ...})            # merged into bench/results/latest.json

Nothing here asserts a figure: scripts measure and print, `make bench` runs them.
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Iterable, Iterator, Sequence

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from deploy.local import infra as local_infra, provision, stack  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "latest.json"
PROFILES = ROOT / "bench" / "results" / "profiles"
INFRA_PROCESSES = ("kafka", "ferretdb")
PACKAGES = ("fastapi", "starlette", "uvicorn", "h11", "faststream", "aiokafka", "pymongo", "pydantic", "orjson")


# --- statistics and printing -------------------------------------------------------------

def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear between closest ranks (numpy's default)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def spread(values: Iterable[float]) -> tuple[float, float, float]:
    """min, median, max of the runs that gave a figure (NaN: a run that could not; all NaN: NaN)."""
    values = [v for v in values if v == v]
    if not values:
        return float("nan"), float("nan"), float("nan")
    return min(values), statistics.median(values), max(values)


def peak_rss(runs: Iterable[dict[str, float]]) -> dict[str, float]:
    """Each process's peak RSS (MB) over several runs' peaks."""
    peaks: dict[str, float] = {}
    for run in runs:
        for name, mb in run.items():
            peaks[name] = max(peaks.get(name, 0.0), mb)
    return peaks


def summary(values: Iterable[float]) -> dict[str, float]:
    lo, mid, hi = spread(values)
    return {"min": lo, "median": mid, "max": hi}


def human(value: float, unit: str) -> str:
    """A figure in its unit: 's' prints ms below one second; '/s' prints thousands separated."""
    if value != value:  # NaN
        return "-"
    if unit == "s":
        return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"
    if unit == "ms":
        return f"{value:.1f} ms" if 1 <= value < 100 else f"{value:.3f} ms" if value < 1 else f"{value:,.0f} ms"
    if unit == "MB":
        return f"{value:,.0f} MB"
    return f"{value:,.0f}{unit}" if abs(value) >= 100 else f"{value:.2f}{unit}"


HEAD = f"{'figure':<40}{'min':>12}{'median':>12}{'max':>12}{'baseline':>12}{'ratio':>8}  {'target':<14}{'met':<4}"


def header() -> str:
    return HEAD + "\n" + "-" * len(HEAD)


def row(label: str, values: Sequence[float], *, unit: str = "", baseline: float | None = None,
        target: str | None = None, met: bool | None = None) -> str:
    """One line of a figure: min/median/max over the runs, the baseline's median and the
    ratio of the medians, the target and whether it was met (judged by the caller)."""
    lo, mid, hi = spread(values)
    base = human(baseline, unit) if baseline is not None else "-"
    ratio = (f"{mid / baseline:.2f}x" if mid / baseline < 100 else f"{mid / baseline:,.0f}x") if baseline else "-"
    verdict = "" if met is None else ("yes" if met else "NO")
    return (f"{label:<40}{human(lo, unit):>12}{human(mid, unit):>12}{human(hi, unit):>12}{base:>12}{ratio:>8}  "
            f"{target or '-':<14}{verdict:<4}")


# --- infrastructure ------------------------------------------------------------------------

@dataclass
class Infra:
    kafka: str
    mongo: str
    prefix: str  # isolates this run's topics and databases on shared infrastructure
    workdir: Path
    servers: dict[str, local_infra.Server] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        """The NQT_ variables a process needs to use this run's topics and databases."""
        return {"NQT_KAFKA_BOOTSTRAP": self.kafka, "NQT_MONGO_URL": self.mongo,
                "NQT_TOPIC_PREFIX": f"{self.prefix}.", "NQT_DB_PREFIX": self.prefix}

    def pids(self) -> dict[str, int]:
        return {name.lower(): server.proc.pid for name, server in self.servers.items()}


@contextmanager
def infrastructure(*, kafka: bool = True, mongo: bool = True, label: str = "bench",
                   kafka_heap: str = "512m") -> Iterator[Infra]:
    """Kafka and FerretDB on free 127.0.0.1 ports in a temporary directory, removed at the end;
    or the running ones NQT_KAFKA_BOOTSTRAP / NQT_MONGO_URL point at (then this run uses topics
    and databases of its own, under a random prefix)."""
    workdir = Path(tempfile.mkdtemp(prefix=f"nqt-{label}-"))
    found = Infra(kafka=os.environ.get("NQT_KAFKA_BOOTSTRAP", ""), mongo=os.environ.get("NQT_MONGO_URL", ""),
                  prefix=f"b{secrets.token_hex(4)}", workdir=workdir)
    try:
        if kafka and not found.kafka:
            server = local_infra.start_kafka(workdir / "kafka", local_infra.free_port(), local_infra.free_port(),
                                             heap=kafka_heap)
            found.servers["Kafka"] = server
            found.kafka = f"127.0.0.1:{server.port}"
        if mongo and not found.mongo:
            server = local_infra.start_ferretdb(workdir / "ferretdb", local_infra.free_port())
            found.servers["FerretDB"] = server
            found.mongo = f"mongodb://127.0.0.1:{server.port}"
        yield found
    finally:
        for server in reversed(list(found.servers.values())):
            server.stop()
        if os.environ.get("NQT_BENCH_KEEP"):  # the services' logs, for a run that went wrong
            print(f"kept {workdir}", flush=True)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


# --- the services as processes -------------------------------------------------------------

@dataclass
class Running:
    ports: dict[str, int]
    env: dict[str, str]
    keys: dict[str, str]  # unit -> development API key
    procs: dict[str, subprocess.Popen]
    logs: Path

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def pids(self) -> dict[str, int]:
        return {name: proc.pid for name, proc in self.procs.items()}

    def cli(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        """`nqt ...` against this deployment (e.g. `registry load FILE`)."""
        return subprocess.run([sys.executable, "-m", "nqt.cli", *args], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=timeout)


def dev_keys(units: Iterable[str]) -> dict[str, str]:
    """unit -> a fresh development API key."""
    return {unit: f"bench-{unit.lower()}-{secrets.token_hex(6)}" for unit in units}


@contextmanager
def services(infra: Infra, names: Sequence[str], *, units: Iterable[str] = ("VPTU",),
             extra: dict[str, str] | None = None, logs: Path | None = None,
             timeout: float = 120) -> Iterator[Running]:
    """Start `names` (of ingest, programs, reports, notify) as processes with stack.service_env,
    development keys for `units`, on free ports; wait for /readyz; stop them (SIGTERM) at the end."""
    logs = logs or infra.workdir / "logs"
    ports = {name: local_infra.free_port() for name in stack.SERVICES}
    keys = dev_keys(units)
    env = stack.service_env(kafka=infra.kafka, mongo=infra.mongo, smtp_port=local_infra.free_port(), ports=ports,
                            dev_keys={key: unit for unit, key in keys.items()},
                            extra={**infra.env(), "NQT_ENV": "test", **(extra or {})})
    procs: dict[str, subprocess.Popen] = {}
    try:
        for name in names:
            procs[name] = stack.start_service(name, env, logs / f"{name}.log")
        for name, proc in procs.items():
            stack.wait_ready(name, ports[name], proc, logs / f"{name}.log", timeout=timeout)
        yield Running(ports={n: ports[n] for n in names}, env=env, keys=keys, procs=procs, logs=logs)
    finally:
        stop_processes(procs.values())


def stop_processes(procs: Iterable[subprocess.Popen], timeout: float = 30) -> None:
    procs = list(procs)
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def python_process(args: Sequence[str], *, env: dict[str, str] | None = None, log: Path | None = None,
                   ) -> subprocess.Popen:
    """A Python child process (a baseline server, a load generator) in the repository root."""
    out = open(log, "ab") if log else subprocess.DEVNULL
    try:
        return subprocess.Popen([sys.executable, *args], cwd=ROOT, env={**os.environ, **(env or {})},
                                stdout=out, stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
                                stdin=subprocess.DEVNULL)
    finally:
        if log:
            out.close()


# --- memory --------------------------------------------------------------------------------

def rss_mb(pid: int, field_name: str = "VmRSS") -> float | None:
    """Resident set size (VmRSS) or its high-water mark (VmHWM) of a process, in MB; None if gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None


def cpu_s(pid: int) -> float | None:
    """CPU time (user + system) a process has used, in seconds; None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class RssSampler:
    """Samples the RSS of processes (by name -> pid) every `interval` seconds in a thread and
    keeps each one's peak. The kernel's own high-water mark (VmHWM) is read too, so a peak
    between two samples is not missed; the larger of the two is reported. The CPU time each
    used between the first and the last sample is kept too (`cpu`): what bounds a run."""

    def __init__(self, pids: dict[str, int], interval: float = 0.2):
        self.pids = dict(pids)
        self.interval = interval
        self.peak: dict[str, float] = {}
        self.cpu_first: dict[str, float] = {}
        self.cpu_last: dict[str, float] = {}
        self.started = self.stopped = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def add(self, name: str, pid: int) -> None:
        self.pids[name] = pid

    def _sample(self) -> None:
        for name, pid in list(self.pids.items()):
            for field_name in ("VmRSS", "VmHWM"):
                value = rss_mb(pid, field_name)
                if value is not None and value > self.peak.get(name, 0.0):
                    self.peak[name] = value
            if (used := cpu_s(pid)) is not None:
                self.cpu_first.setdefault(name, used)
                self.cpu_last[name] = used

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def start(self) -> "RssSampler":
        self.started = time.perf_counter()
        self._sample()
        self._thread.start()
        return self

    def stop(self) -> dict[str, float]:
        """Stop sampling; the peak RSS per process name, in MB."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._sample()
        self.stopped = time.perf_counter()
        return dict(self.peak)

    @property
    def cpu(self) -> dict[str, float]:
        """CPU seconds each process used while sampled."""
        return {name: self.cpu_last[name] - first for name, first in self.cpu_first.items()}

    def cpu_line(self) -> str:
        """Each process's CPU time while sampled, as seconds and as cores busy on average."""
        window = max(self.stopped - self.started, 1e-9)
        return f"CPU over {window:.1f} s: " + ", ".join(
            f"{name} {used:.1f} s ({used / window:.2f} cores)" for name, used in sorted(self.cpu.items()))

    def __enter__(self) -> "RssSampler":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def line(self) -> str:
        return "peak RSS: " + ", ".join(f"{name} {mb:,.0f} MB" for name, mb in sorted(self.peak.items()))


# --- results -------------------------------------------------------------------------------

def environment() -> dict:
    """What the figures were measured on: CPUs, load, Python, Kafka, FerretDB, packages."""
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, timeout=10).stdout.strip()
    except OSError:
        commit = ""
    return {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "cpu_count": os.cpu_count(),
            "load_average": [round(x, 2) for x in os.getloadavg()], "machine": platform.machine(),
            "python": platform.python_version(), "kafka": provision.KAFKA_VERSION,
            "ferretdb": f"{provision.FERRETDB_VERSION}+{provision.FERRETDB_PATCH}", "packages": versions, "commit": commit}


def write_results(figures: dict, *, script: str, rss: dict[str, float] | None = None,
                  path: Path | None = None) -> Path:
    """Merge `figures` (top-level keys, e.g. freshness_p99_ms) into the results file, next to
    the other scripts' keys; record under `runs[script]` the environment it was measured in.
    `rss` (peak MB by process name) lands in `rss_mb[script]`, and `max_rss_mb` is the
    largest peak of any service process (not Kafka or FerretDB) over every script's run."""
    path = path or results_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        results = json.loads(path.read_text())
    except (OSError, ValueError):
        results = {}
    env = environment()
    results.update(figures)
    if rss:
        results.setdefault("rss_mb", {})[script] = {name: round(mb, 1) for name, mb in sorted(rss.items())}
        peaks = [mb for by_name in results["rss_mb"].values() for name, mb in by_name.items()
                 if name not in INFRA_PROCESSES]
        if peaks:
            results["max_rss_mb"] = max(peaks)
    results.update({k: env[k] for k in ("cpu_count", "python", "kafka", "ferretdb", "packages", "date")})
    results.setdefault("runs", {})[script] = env | {"keys": sorted(figures)}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)
    return path


def results_path() -> Path:
    """Where this run writes: NQT_BENCH_RESULTS (the quick test points it elsewhere) or latest.json."""
    return Path(os.environ.get("NQT_BENCH_RESULTS", RESULTS))


def wait_until(check, timeout: float, interval: float = 0.2, what: str = "a condition"):
    """Poll `check()` until it returns something truthy; that value. TimeoutError otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout:.0f} s")
        time.sleep(interval)


async def ensure_topic(kafka: str, topic: str, partitions: int = 12) -> None:
    """Create `topic` on the local broker unless it exists (for the raw baselines)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    await admin.start()
    try:
        if topic not in await admin.list_topics():
            await admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()
