"""Topic names, in one place. A prefix lets several deployments (or test runs) share a cluster."""

from __future__ import annotations

from dataclasses import dataclass

DLQ_SUFFIX = ".dlq"


@dataclass(frozen=True)
class Topics:
    prefix: str = ""

    def _name(self, base: str) -> str:
        return f"{self.prefix}{base}"

    @property
    def inbound(self) -> str:
        """Untrusted CloudEvents from systems that publish straight to Kafka."""
        return self._name("inbound.events")

    @property
    def accepted(self) -> str:
        """Validated envelopes stamped with acceptance time; key: programme, else unit/indicator."""
        return self._name("events.accepted")

    @property
    def outcomes(self) -> str:
        """One outcome per event (applied, duplicate, rejected); key: source unit."""
        return self._name("programs.outcomes")

    @property
    def changes(self) -> str:
        """State changes made by the programs service; key: programme (or registry entry)."""
        return self._name("programs.changes")

    @property
    def due(self) -> str:
        return self._name("reports.due")

    @property
    def generated(self) -> str:
        return self._name("reports.generated")

    @staticmethod
    def dlq(topic: str) -> str:
        return topic + DLQ_SUFFIX

    def history(self) -> list[str]:
        """The topics every state is rebuilt from (`nqt replay`): kept for ever, never deleted by age."""
        return [self.accepted, self.outcomes, self.changes, self.due, self.generated]

    def config(self, topic: str) -> dict[str, str]:
        """Topic settings beyond the broker's defaults. `inbound.events` stamps each record with the
        broker's clock on arrival, so that a signature's age is judged by it, not by the publisher's;
        the history is kept for ever (a broker deletes records after 7 days unless told otherwise)."""
        if topic == self.inbound:
            return {"message.timestamp.type": "LogAppendTime"}
        return {"retention.ms": "-1"} if topic in self.history() else {}

    def all(self) -> list[str]:
        main = [self.inbound, self.accepted, self.outcomes, self.changes, self.due, self.generated]
        return main + [self.dlq(t) for t in main]
