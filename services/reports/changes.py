"""The `programs.changes` records as the reports service reads them: what each kind must
carry, with the types the roll-up and the reports compute with (`shared.records`). A record
that does not fit is refused at the door (`consumer.Poison`: dead-lettered with the reason),
so that one malformed change can never make the live status or a report fail for everyone."""

from __future__ import annotations

from shared import records


def read(value: bytes) -> dict:
    """A change that reports can apply; Poison, naming every field that is wrong, otherwise."""
    return records.read_change(value).model_dump()
