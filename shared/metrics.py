"""Prometheus metrics shared by the services: one `nqt_` prefix, low-cardinality labels.

Each service runs in its own process, so the default registry is per service. Labels
never carry event, task or report ids: `type` is an event type (or `change.<kind>`
for a state change, a bounded set), `code` a rejection code, `route` a route template,
`command` a MongoDB command name. The scrape adds `job` and `instance`."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# What a service did with the events it saw: received (taken in from HTTP or a topic),
# published (acknowledged by Kafka), applied, duplicate, rejected (with its code), held.
EVENTS = Counter("nqt_events", "Events by service, type and outcome; rejections by code.",
                 ["service", "type", "outcome", "code"])
DEAD_LETTERS = Counter("nqt_dead_letters", "Records moved to a dead-letter topic.", ["topic", "error"])
HANDLER_SECONDS = Histogram("nqt_handler_seconds", "Time to process one record.", ["service", "handler"])
CONSUMER_LAG = Gauge("nqt_consumer_lag", "Records not yet read by the group: end offset minus position.",
                     ["service", "group", "topic", "partition"])

HTTP_REQUESTS = Counter("nqt_http_requests", "HTTP requests by route and status.", ["service", "route", "status"])
HTTP_SECONDS = Histogram("nqt_http_request_seconds", "Time to answer an HTTP request, by route.",
                         ["service", "route"])

MONGO_SECONDS = Histogram("nqt_mongo_command_seconds", "MongoDB command durations.", ["command", "database"],
                          buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
MONGO_ERRORS = Counter("nqt_mongo_command_errors", "MongoDB commands that failed.", ["command", "database"])

JOB_RUNS = Counter("nqt_job_runs", "Runs of a periodic job (scan, scheduler, lag) by result.",
                   ["service", "what", "result"])
JOB_SECONDS = Histogram("nqt_job_seconds", "Time one run of a periodic job took.", ["service", "what"],
                        buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120))

NOTIFICATIONS = Counter("nqt_notifications", "Notifications by channel and result.", ["channel", "result"])

REPORT_SECONDS = Histogram("nqt_report_generation_seconds", "Time to build and render a report, by format "
                           "and trigger (request: asked over HTTP; issue: issued by the scheduler).",
                           ["format", "trigger"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120))
REPORT_LAST_SUCCESS = Gauge("nqt_report_last_success_timestamp_seconds",
                            "When a report was last rendered (request) or issued (issue) successfully.",
                            ["trigger"])
REPORTS_OVERDUE = Gauge("nqt_report_overdue_cycles",
                        "Reporting cycles whose due date has passed (service clock) without an issued report.")
REPORT_OVERDUE_SECONDS = Gauge("nqt_report_overdue_seconds",
                               "How long (service clock) the oldest overdue cycle has been past its due date; "
                               "0 when none is.")

PROGRAMME_TASKS = Gauge("nqt_programme_tasks", "Tasks of a programme by status (overdue: past due, not done).",
                        ["programme", "status"])
PROGRAMME_PROGRESS = Gauge("nqt_programme_progress_pct", "Mean progress of a programme's tasks, percent.",
                           ["programme"])
PROGRAMME_PLANS = Gauge("nqt_programme_plans", "Plans of a programme: expected, submitted, rejected.",
                        ["programme", "state"])
PROGRAMME_ISSUED = Gauge("nqt_programme_issued", "1 when the programme has been issued, else 0.", ["programme"])


def event(service: str, type: str, outcome: str, code: str = "", n: int = 1) -> None:
    """Count `n` events of `type` that reached `outcome` in `service` (`code` only for rejections)."""
    EVENTS.labels(service=service, type=type or "unknown", outcome=outcome, code=code or "").inc(n)
