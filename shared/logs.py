"""Structured JSON logs: one JSON object per line, from our loggers and from the
libraries' (uvicorn, FastStream, aiokafka) alike. Lines written while an event is
handled carry its id and unit (bound with `about_event`). Secrets never go in:
API keys, passwords and signing secrets are not logged anywhere, and a field
whose name says it is one is masked as a second line of defence."""

from __future__ import annotations

import logging
import sys
from contextlib import contextmanager

import structlog

SECRET_WORDS = ("password", "secret", "api_key", "authorization", "token")


def _mask_secrets(_, __, event_dict: dict) -> dict:
    for key in event_dict:
        if any(word in key.lower() for word in SECRET_WORDS):
            event_dict[key] = "***"
    return event_dict


def configure(level: str, *, service: str) -> None:
    shared = [structlog.contextvars.merge_contextvars, structlog.stdlib.add_log_level,
              structlog.stdlib.add_logger_name, structlog.processors.TimeStamper(fmt="iso", utc=True),
              _mask_secrets]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, structlog.processors.JSONRenderer(ensure_ascii=False)])
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    structlog.configure(processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
                        logger_factory=structlog.stdlib.LoggerFactory(), cache_logger_on_first_use=True)
    structlog.contextvars.bind_contextvars(service=service)


@contextmanager
def about_event(*, event_id: str | None, unit: str | None, **more):
    """Every log line inside carries the event's id and unit."""
    with structlog.contextvars.bound_contextvars(event_id=event_id, unit=unit, **more):
        yield
