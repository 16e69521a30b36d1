"""Pure decisions of ingest about an event's status. No I/O here.

An event is `accepted` once Kafka has it, then gets one outcome from the programs
service. The first `applied`/`rejected` outcome of a key is its status for good. A
`duplicate` outcome is about a later submission of the same key: it is counted and
never hides the original outcome; it only shows as the status while the original
outcome is unknown here (e.g. the key was first published by another route)."""

from __future__ import annotations

ACCEPTED, APPLIED, DUPLICATE, REJECTED = "accepted", "applied", "duplicate", "rejected"
FINAL = (APPLIED, DUPLICATE, REJECTED)
OPTIONAL = ("decided_at", "code", "message_vi", "message_en", "findings")


def replaceable(outcome: str) -> tuple[str | None, ...]:
    """The statuses that `outcome` may replace (None: no status recorded yet)."""
    if outcome == DUPLICATE:
        return (None, ACCEPTED)
    return (None, ACCEPTED, DUPLICATE)


def view(doc: dict) -> dict:
    """The answer to the publisher: its event's status, what decided it, and repeats."""
    duplicates = len(doc.get("duplicate_accept_ids", ()))
    status = doc.get("status") or (DUPLICATE if duplicates else ACCEPTED)
    body = {"id": doc["id"], "source": doc["source"], "type": doc.get("type"), "status": status,
            "accepted_at": doc.get("accepted_at")}
    body |= {f: doc[f] for f in OPTIONAL if doc.get(f) is not None}
    return body | {"duplicates": duplicates}
