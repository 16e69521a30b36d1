"""Prometheus metrics shared by the services: one `nqt_` prefix, low-cardinality labels.

Each service runs in its own process, so the default registry is per service."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

EVENTS = Counter("nqt_events", "Events by service, type and outcome.", ["service", "type", "outcome"])
DEAD_LETTERS = Counter("nqt_dead_letters", "Records moved to a dead-letter topic.", ["topic", "error"])
HANDLER_SECONDS = Histogram("nqt_handler_seconds", "Time to process one record.", ["service", "handler"])
HTTP_REQUESTS = Counter("nqt_http_requests", "HTTP requests by route and status.", ["service", "route", "status"])
NOTIFICATIONS = Counter("nqt_notifications", "Notifications by channel and result.", ["channel", "result"])
