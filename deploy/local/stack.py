"""The whole local stack in the background: Kafka, FerretDB, a development mail
sink, the four services and Prometheus scraping them, on 127.0.0.1.

    python -m deploy.local.stack up       # start (idempotent), write .local/stack.env
    python -m deploy.local.stack down     # stop exactly what `up` started
    python -m deploy.local.stack status

With NQT_KAFKA_BOOTSTRAP / NQT_MONGO_URL set, those are used instead of starting
Kafka / FerretDB. Ports come from NQT_KAFKA_PORT, NQT_KAFKA_CONTROLLER_PORT, NQT_MONGO_PORT,
NQT_SMTP_PORT, NQT_PROMETHEUS_PORT (9090) and NQT_<SERVICE>_PORT (defaults below)."""

from __future__ import annotations

import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

from deploy.local import infra, prometheus, provision
from services.ingest.domain import new_signing_secret

ROOT = Path(__file__).resolve().parents[2]
LOCAL = Path(os.environ.get("NQT_LOCAL_DIR", ROOT / ".local"))
PIDS = LOCAL / "pids.json"
REGISTRY = ROOT / "deploy" / "registry" / "hanoi-xvii.yaml"
SERVICES = {"ingest": 8081, "reports": 8082, "notify": 8083, "programs": 8084}


def _port(name: str, default: int) -> int:
    return int(os.environ.get(f"NQT_{name.upper()}_PORT", default))


def service_env(*, kafka: str, mongo: str, smtp_port: int, ports: dict[str, int], dev_keys: dict[str, str],
                extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a service process; every setting is an NQT_ variable. Settings already
    in the environment (e.g. NQT_SMTP_HOST, NQT_CLOCK_FIXED) pass through; the stack's own win."""
    env = dict(os.environ)
    env.update({
        "NQT_KAFKA_BOOTSTRAP": kafka,
        "NQT_MONGO_URL": mongo,
        "NQT_SMTP_HOST": "127.0.0.1",
        "NQT_SMTP_PORT": str(smtp_port),
        "NQT_INGEST_DEV_KEYS": json.dumps(dev_keys),
        # notify asks ingest whose API key a request for the delivery log carries
        "NQT_NOTIFY_INGEST_URL": f"http://127.0.0.1:{ports['ingest']}",
        "PYTHONUNBUFFERED": "1",
        **{f"NQT_{name.upper()}_PORT": str(port) for name, port in ports.items()},
        # Reports links issued reports under its own address; notify fetches them only from there.
        **({"NQT_REPORTS_PUBLIC_URL": f"http://127.0.0.1:{ports['reports']}",
            "NQT_NOTIFY_REPORTS_URL": f"http://127.0.0.1:{ports['reports']}"} if "reports" in ports else {}),
        **(extra or {}),
    })
    return env


def start_service(name: str, env: dict[str, str], log: Path, *, detach: bool = False) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", f"services.{name}"], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=detach)


def start_mail_sink(port: int, maildir: Path, log: Path, *, detach: bool = False) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "deploy.local.mailsink", "--port", str(port),
                                 "--dir", str(maildir)], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=detach)


def wait_ready(name: str, port: int, proc: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    """Wait for the service's /readyz (MongoDB and Kafka reachable, indexes created)."""
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{port}/readyz"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"service {name} exited with code {proc.returncode}; log {log}:\n"
                               + log.read_text(errors="replace")[-3000:])
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"service {name} not ready at {url} within {timeout:.0f}s; see {log}")


def dev_keys(registry: Path = REGISTRY) -> dict[str, str]:
    """One development API key per unit of the registry, kept in .local/dev-keys.json."""
    return _kept(LOCAL / "dev-keys.json", lambda units: {f"dev-{code.lower()}-{secrets.token_hex(8)}": code
                                                          for code in units}, registry)


def dev_signing_secrets(registry: Path = REGISTRY) -> dict[str, str]:
    """One development signing secret per unit of the registry (what its records on
    inbound.events are signed with), kept in .local/dev-signing-secrets.json."""
    return _kept(LOCAL / "dev-signing-secrets.json",
                 lambda units: {code: new_signing_secret() for code in units}, registry)


def _kept(path: Path, make, registry: Path) -> dict[str, str]:
    """What `make` makes of the registry's unit codes, made once and kept (owner-only) in `path`."""
    if path.exists():
        return json.loads(path.read_text())
    made = make([u["code"] for u in yaml.safe_load(registry.read_text(encoding="utf-8"))["units"]])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(made, indent=1))
    path.chmod(0o600)
    return made


def web_view_env(ports: dict[str, int]) -> dict[str, str]:
    """The web view's settings: its session secret (NQT_UI_SECRET if set, else the one the last
    `up` wrote to stack.env, else a new one, so sessions survive a restart) and where it reads
    units' notifications (notify, with the Office's development key)."""
    previous = LOCAL / "stack.env"
    kept = read_env(previous).get("NQT_UI_SECRET") if previous.exists() else None
    secret = os.environ.get("NQT_UI_SECRET") or kept or secrets.token_urlsafe(32)
    office = next((key for key, unit in dev_keys().items() if unit == "VPTU"), "")
    return {"NQT_UI_SECRET": secret, "NQT_UI_NOTIFY_URL": f"http://127.0.0.1:{ports['notify']}",
            "NQT_UI_NOTIFY_KEY": office}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def _read_pids() -> dict[str, int]:
    return json.loads(PIDS.read_text()) if PIDS.exists() else {}


def up() -> None:
    running = {n: p for n, p in _read_pids().items() if _alive(p)}
    if running:
        print(f"stack: already running ({', '.join(running)}); `make down` first to restart")
        return
    external_kafka, external_mongo = os.environ.get("NQT_KAFKA_BOOTSTRAP"), os.environ.get("NQT_MONGO_URL")
    ports = {name: _port(name, default) for name, default in SERVICES.items()}
    kafka_port, mongo_port = _port("kafka", 9092), _port("mongo", 27017)
    smtp_port, prometheus_port = _port("smtp", 1025), _port("prometheus", 9090)
    wanted = [("SMTP sink", smtp_port), ("Prometheus", prometheus_port), *ports.items()]
    wanted += [] if external_kafka else [("Kafka", kafka_port)]
    wanted += [] if external_mongo else [("MongoDB", mongo_port)]
    for what, port in wanted:
        if infra.port_open(port):
            raise RuntimeError(f"port {port} for {what} is already in use on 127.0.0.1; stop what holds it "
                               f"or set NQT_*_PORT")
    pids: dict[str, int] = {}
    started = time.monotonic()
    try:
        if not external_kafka:
            kafka = infra.start_kafka(LOCAL / "kafka", kafka_port, _port("kafka_controller", 9093), detach=True)
            pids["kafka"] = kafka.proc.pid
        if not external_mongo:
            ferret = infra.start_ferretdb(LOCAL / "ferretdb", mongo_port, detach=True)
            pids["ferretdb"] = ferret.proc.pid
        sink = start_mail_sink(smtp_port, LOCAL / "mail", LOCAL / "logs" / "mailsink.log", detach=True)
        pids["mailsink"] = sink.pid
        kafka_url = external_kafka or f"127.0.0.1:{kafka_port}"
        mongo_url = external_mongo or f"mongodb://127.0.0.1:{mongo_port}"
        # Development pace: cycles, reports and reminders show up within seconds, not minutes.
        pace = {k: os.environ.get(k, v) for k, v in (("NQT_REPORTS_SCHEDULE_SECONDS", "5"),
                                                      ("NQT_NOTIFY_SCAN_SECONDS", "5"))}
        env = service_env(kafka=kafka_url, mongo=mongo_url, smtp_port=smtp_port, ports=ports, dev_keys=dev_keys(),
                          extra={**pace, "NQT_INGEST_DEV_SIGNING_SECRETS": json.dumps(dev_signing_secrets()),
                                 **web_view_env(ports)})
        procs = {}
        for name in SERVICES:
            procs[name] = start_service(name, env, LOCAL / "logs" / f"{name}.log", detach=True)
            pids[name] = procs[name].pid
        for name, proc in procs.items():
            wait_ready(name, ports[name], proc, LOCAL / "logs" / f"{name}.log")
        scraper = prometheus.start(config_file=LOCAL / "prometheus.yml", data=LOCAL / "prometheus",
                                   log=LOCAL / "logs" / "prometheus.log", port=prometheus_port, ports=ports,
                                   detach=True)
        pids["prometheus"] = scraper.proc.pid
    finally:
        PIDS.parent.mkdir(parents=True, exist_ok=True)
        PIDS.write_text(json.dumps(pids))
    stack_env = {
        "NQT_KAFKA_BOOTSTRAP": kafka_url,
        "NQT_MONGO_URL": mongo_url,
        "NQT_INGEST_URL": f"http://127.0.0.1:{ports['ingest']}",
        "NQT_REPORTS_URL": f"http://127.0.0.1:{ports['reports']}",
        "NQT_NOTIFY_URL": f"http://127.0.0.1:{ports['notify']}",
        "NQT_PROGRAMS_URL": f"http://127.0.0.1:{ports['programs']}",
        "NQT_PROMETHEUS_URL": f"http://127.0.0.1:{prometheus_port}",
        "NQT_SMTP_SINK": f"127.0.0.1:{smtp_port}",
        "NQT_MAIL_DIR": str(LOCAL / "mail"),
        "NQT_DEV_KEYS_FILE": str(LOCAL / "dev-keys.json"),
        "NQT_DEV_SIGNING_SECRETS_FILE": str(LOCAL / "dev-signing-secrets.json"),
        "NQT_UI_URL": f"http://127.0.0.1:{ports['reports']}/ui/",
        "NQT_UI_SECRET": env["NQT_UI_SECRET"],
    }
    write_env(LOCAL / "stack.env", stack_env)
    (LOCAL / "stack.env").chmod(0o600)  # it holds the web view's session secret
    print(f"stack: up in {time.monotonic() - started:.1f}s; URLs in {LOCAL / 'stack.env'}, logs in {LOCAL / 'logs'}")


def write_env(path: Path, values: dict[str, str]) -> None:
    """`KEY=value` lines that a shell sources as they are (`set -a; . .local/stack.env`): each value
    quoted, so a space or a `>` in it (a path) is part of the value, not a command."""
    path.write_text("".join(f"{k}={shlex.quote(v)}\n" for k, v in values.items()))


def read_env(path: Path) -> dict[str, str]:
    """What `write_env` wrote, as the shell reads it."""
    return {k: shlex.split(v)[0] if v else "" for k, _, v in
            (line.partition("=") for line in path.read_text().splitlines() if "=" in line)}


def down() -> None:
    pids = _read_pids()
    # Services first (they finish their batch and commit), infrastructure last.
    order = [n for n in pids if n in SERVICES] + [n for n in ("prometheus", "mailsink", "ferretdb", "kafka")
                                                  if n in pids]
    for name in order:
        _stop(name, pids[name])
    PIDS.unlink(missing_ok=True)
    print("stack: down" if pids else "stack: nothing was running")


def _stop(name: str, pid: int, timeout: float = 30.0) -> None:
    if not _alive(pid):
        return
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        _reap(pid)
        time.sleep(0.2)
    if _alive(pid):
        print(f"stack: {name} did not stop in {timeout:.0f}s; killing it")
        os.killpg(pid, signal.SIGKILL)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def status() -> None:
    for name, pid in _read_pids().items():
        print(f"{name:10} pid {pid:7} {'running' if _alive(pid) else 'stopped'}")


def main(argv: list[str]) -> int:
    commands = {"up": up, "down": down, "status": status}
    if len(argv) != 1 or argv[0] not in commands:
        print(__doc__)
        return 2
    try:
        commands[argv[0]]()
    except (RuntimeError, provision.ProvisionError) as err:
        print(f"stack: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
