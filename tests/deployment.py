"""What the deployment files (docker-compose.yml, deploy/k8s/) are checked against: the
services' settings classes, the topics and consumer groups their subscribers really use,
and the topics they publish to. No Docker or Kubernetes needed: only the code and YAML."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from types import SimpleNamespace

from services.ingest import handlers as ingest_handlers
from services.ingest.settings import IngestSettings
from services.notify import handlers as notify_handlers
from services.notify.settings import NotifySettings
from services.programs import handlers as programs_handlers
from services.programs.settings import ProgramsSettings
from services.reports import handlers as reports_handlers
from services.reports.settings import ReportsSettings
from shared.settings import CommonSettings
from shared.topics import Topics

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {"ingest": IngestSettings, "reports": ReportsSettings, "notify": NotifySettings,
            "programs": ProgramsSettings}
HANDLERS = {"ingest": ingest_handlers, "reports": reports_handlers, "notify": notify_handlers,
            "programs": programs_handlers}
TOPIC_ATTRS = ("inbound", "accepted", "outcomes", "changes", "due", "generated")
# What each service publishes besides dead letters (docs: architecture, README "How events flow").
PUBLISHES = {"ingest": {"accepted"}, "programs": {"changes", "outcomes"}, "reports": {"due", "generated"},
             "notify": set()}


def variables(cls: type[CommonSettings]) -> set[str]:
    """The NQT_ variables a settings class reads (its own fields and CommonSettings')."""
    return {f"NQT_{name.upper()}" for name in cls.model_fields}


def port_default(service: str) -> int:
    return SETTINGS[service].model_fields[f"{service}_port"].default


def group_default(service: str) -> str:
    return SETTINGS[service].model_fields[f"{service}_group"].default


class _Recorder:
    def __init__(self) -> None:
        self.subscriptions: list[tuple[str, str]] = []

    def subscriber(self, topic: str, *, group_id: str | None = None, **_options):
        self.subscriptions.append((topic, group_id))
        return lambda handler: handler


def subscriptions(service: str) -> list[tuple[str, str]]:
    """(topic, consumer group) of every subscriber the service registers, with default settings."""
    recorder = _Recorder()
    runtime = SimpleNamespace(settings=SETTINGS[service](), broker=recorder, db=None)
    register = HANDLERS[service].register
    # what the composition root passes besides (a service factory, a clock, a listener): defaults
    # where the signature has them, else a blank object the registration may set attributes on
    extra = [p.default if p.default is not inspect.Parameter.empty else SimpleNamespace()
             for p in list(inspect.signature(register).parameters.values())[2:]]
    register(runtime, group_default(service), *extra)
    return recorder.subscriptions


def topic_attrs_in_source(service: str) -> set[str]:
    """Which topics (by Topics attribute) the service's code names at all."""
    source = "\n".join(p.read_text() for p in (ROOT / "services" / service).glob("*.py"))
    return set(re.findall(r"topics\.(" + "|".join(TOPIC_ATTRS) + r")\b", source))


def topic_name(attr: str) -> str:
    return getattr(Topics(""), attr)


def module_exists(module: str) -> bool:
    path = ROOT / module.replace(".", "/")
    return path.with_suffix(".py").exists() or (path / "__main__.py").exists()


def settings_from(cls: type[CommonSettings], env: dict[str, str], monkeypatch) -> CommonSettings:
    """The settings a process gets with exactly `env` (nothing else from the environment)."""
    import os
    for name in [n for n in os.environ if n.startswith("NQT_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, str(value))
    return cls()
