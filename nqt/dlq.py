"""`nqt dlq`: look at dead letters and send one back to the topic it came from.

A dead letter is the failed record's bytes, unchanged, on `<topic>.dlq`, with
headers that say why (`nqt-dlq-error-class`, `-message`, `-attempts`,
`-first-failure`) and where it came from (`nqt-dlq-original-topic`, `-partition`,
`-offset`); see `shared.kafka`. Reading needs no consumer group, so looking
changes nothing."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

import typer
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared.kafka import client_options
from shared.settings import CommonSettings

dlq_app = typer.Typer(help="Dead letters: records a consumer could not process.", no_args_is_help=True)

DLQ_HEADER = "nqt-dlq-"
REPLAYED_FROM = "nqt-replayed-from"
PREVIEW_CHARS = 160
READ_TIMEOUT_S = 60.0

TopicArg = typer.Argument(None, help="Dead-letter topic; default inbound.events.dlq. NQT_TOPIC_PREFIX is added "
                                     "when the name lacks it.")


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, str]

    def header(self, name: str) -> str:
        return self.headers.get(DLQ_HEADER + name, "?")

    @property
    def where(self) -> str:
        return f"{self.partition}@{self.offset}"


def _topic(settings: CommonSettings, topic: str | None) -> str:
    if not topic:
        return settings.topics.dlq(settings.topics.inbound)
    prefix = settings.topic_prefix
    return topic if topic.startswith(prefix) else prefix + topic


def _dead_letter(record) -> DeadLetter:
    headers = {k: v.decode("utf-8", "replace") for k, v in (record.headers or ())}
    return DeadLetter(record.topic, record.partition, record.offset, record.key, record.value or b"", headers)


def _preview(value: bytes) -> str:
    text = value[:PREVIEW_CHARS * 4].decode("utf-8", "replace")
    text = "".join(c if c.isprintable() else "." for c in text)
    return text[:PREVIEW_CHARS] + ("…" if len(text) > PREVIEW_CHARS else "")


async def topic_partitions(settings: CommonSettings, topic: str, *, param_hint: str = "TOPIC") -> list[int]:
    """The partition numbers of `topic`; a precise error when there is no such topic."""
    admin = AIOKafkaAdminClient(**client_options(settings), client_id="nqt-cli-dlq")
    await admin.start()
    try:
        # Asking for the metadata of a missing topic could create it: look first.
        if topic not in await admin.list_topics():
            raise typer.BadParameter(f"no topic {topic!r} on {settings.kafka_bootstrap}", param_hint=param_hint)
        [described] = await admin.describe_topics([topic])
        return sorted(p["partition"] for p in described["partitions"])
    finally:
        await admin.close()


async def _read(settings: CommonSettings, topic: str, *, partition: int | None = None,
                offset: int | None = None) -> list[DeadLetter]:
    """The records of `topic` from the beginning (or from `offset`) up to the end offsets
    seen when reading starts; no consumer group, nothing committed."""
    numbers = await topic_partitions(settings, topic)
    # "earliest": the position an assignment starts from must not race a seek to the end.
    consumer = AIOKafkaConsumer(**client_options(settings), group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", client_id="nqt-cli-dlq")
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in numbers if partition is None or p == partition]
        if not partitions:
            raise typer.BadParameter(f"{topic!r} has partitions {numbers}", param_hint="--partition")
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        if offset is not None:
            for tp in partitions:
                consumer.seek(tp, min(offset, ends[tp]))
        letters: list[DeadLetter] = []
        deadline = time.monotonic() + READ_TIMEOUT_S
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            if time.monotonic() > deadline:
                raise typer.BadParameter(f"could not read {topic!r} to its end within {READ_TIMEOUT_S:.0f}s")
            for tp, records in (await consumer.getmany(*partitions, timeout_ms=500)).items():
                letters += [_dead_letter(r) for r in records if r.offset < ends[tp]]
        return letters
    finally:
        await consumer.stop()


@dlq_app.command("list")
def dlq_list(topic: str | None = TopicArg,
             limit: int = typer.Option(50, min=1, help="Show at most this many, the most recent.")) -> None:
    """Show the dead letters of TOPIC: why each failed, where it came from, its value."""
    settings = CommonSettings()
    topic = _topic(settings, topic)
    letters = asyncio.run(_read(settings, topic))
    shown = sorted(letters, key=lambda d: (d.header("first-failure"), d.partition, d.offset))[-limit:]
    more = f", the last {len(shown)} shown" if len(shown) < len(letters) else ""
    typer.echo(f"{topic}: {len(letters)} dead letter(s){more}")
    for d in shown:
        typer.echo(f"\n{d.where}  {d.header('error-class')}: {d.header('error-message')}")
        typer.echo(f"  attempts {d.header('attempts')}, first failure {d.header('first-failure')}, "
                   f"from {d.header('original-topic')} {d.header('original-partition')}@{d.header('original-offset')}"
                   + (f", replayed from {d.headers[REPLAYED_FROM]}" if REPLAYED_FROM in d.headers else ""))
        typer.echo(f"  value ({len(d.value)} bytes): {_preview(d.value)}")


async def _find(settings: CommonSettings, topic: str, offset: int, partition: int | None) -> DeadLetter:
    found = [d for d in await _read(settings, topic, partition=partition, offset=offset) if d.offset == offset]
    if not found:
        where = f" in partition {partition}" if partition is not None else ""
        raise typer.BadParameter(f"{topic!r} has no record at offset {offset}{where}", param_hint="--offset")
    if len(found) > 1:
        raise typer.BadParameter(f"offset {offset} exists in partitions {[d.partition for d in found]} of {topic!r}; "
                                 "choose one", param_hint="--partition")
    return found[0]


async def _replay(settings: CommonSettings, letter: DeadLetter, value: bytes,
                  replaced: dict[str, str]) -> tuple[str, int, int]:
    target = letter.headers.get(DLQ_HEADER + "original-topic")
    if not target:
        raise typer.BadParameter(f"{letter.topic} {letter.where} has no {DLQ_HEADER}original-topic header: "
                                 "not a dead letter", param_hint="--offset")
    # Keep the publisher's own headers (but those replaced); say where the record comes back from.
    kept = {k: v for k, v in letter.headers.items() if not k.startswith(DLQ_HEADER) and k != REPLAYED_FROM}
    headers = [(k, v.encode()) for k, v in (kept | replaced).items()]
    headers.append((REPLAYED_FROM, f"{letter.topic}:{letter.partition}:{letter.offset}".encode()))
    producer = AIOKafkaProducer(**client_options(settings), acks="all", enable_idempotence=True,
                                client_id="nqt-cli-dlq")
    await producer.start()
    try:
        sent = await producer.send_and_wait(target, value, key=letter.key, headers=headers)
    finally:
        await producer.stop()
    return target, sent.partition, sent.offset


@dlq_app.command("replay")
def dlq_replay(
    topic: str | None = TopicArg,
    offset: int = typer.Option(..., min=0, help="The dead letter's offset (as `nqt dlq list` shows it)."),
    partition: int | None = typer.Option(None, min=0, help="Its partition; needed only when the offset is in several."),
    from_file: Path | None = typer.Option(None, exists=True, dir_okay=False, readable=True,
                                          help="Send this file's bytes instead (a fixed record)."),
    header: list[str] = typer.Option([], help="NAME=VALUE: set this header instead of the original's, e.g. the "
                                              "webhook-* signature a unit made for its fixed record (repeatable)."),
) -> None:
    """Publish a dead letter again to the topic it came from: its original bytes, or a fixed file."""
    settings = CommonSettings()
    topic = _topic(settings, topic)
    try:
        replaced = dict(h.split("=", 1) for h in header)
    except ValueError as err:
        raise typer.BadParameter("a header is NAME=VALUE", param_hint="--header") from err

    async def run():
        letter = await _find(settings, topic, offset, partition)
        value = from_file.read_bytes() if from_file else letter.value
        return letter, value, await _replay(settings, letter, value, replaced)

    letter, value, (target, to_partition, to_offset) = asyncio.run(run())
    source = f"the bytes of {from_file}" if from_file else "its original bytes"
    typer.echo(f"replayed {topic} {letter.where} ({letter.header('error-class')}: {letter.header('error-message')}) "
               f"as {source} ({len(value)} bytes) to {target} {to_partition}@{to_offset}, "
               f"header {REPLAYED_FROM}={letter.topic}:{letter.partition}:{letter.offset}")
