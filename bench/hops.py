"""Where a probe's freshness goes, hop by hop, from what the pipeline already leaves behind
(bench/freshness.py; nothing is added per event for it):

    202       ingest's answer to the probe's POST (the bench's clock)
    accepted  the probe's record in `events.accepted` (its Kafka timestamp: when ingest sent it,
              before the 202, which also waits for the broker's ack and ingest's own insert)
    changed   its change in `programs.changes` (the record's timestamp: programs decided and
              wrote the batch, then sent its changes)
    applied   the reports line "changes applied" of the batch that held that change's offset
    made      the reports line "status made" of the first status of that batch's generation or later
    seen      the end of the first status answer that showed the probe (the bench's clock)

Every service runs on this machine, so the clocks are one. Each hop is the time between two
of these; `202 -> changed` beside them, since the record is written before the 202."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson

# (name, from, to): the hops printed, in the order an event meets them.
HOPS = (("ingest: record -> 202", "accepted", "ack"),
        ("programs: record -> change", "accepted", "changed"),
        ("  from the 202 -> change", "ack", "changed"),
        ("reports: change -> applied", "changed", "applied"),
        ("status: applied -> made", "applied", "made"),
        ("poller: made -> seen", "made", "seen"))


@dataclass
class Stamped:
    """A probe's times (wall-clock seconds) at each point; None where it was not found."""
    ack: float
    seen: float
    accepted: float | None = None
    changed: float | None = None
    applied: float | None = None
    made: float | None = None


async def records(kafka: str, topic: str, since_s: float) -> list:
    """Every record of `topic` appended from `since_s` (wall clock) to its current end."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from shared.kafka import end_offsets

    ends = {TopicPartition(*where): end for where, end in (await end_offsets({"bootstrap_servers": kafka},
                                                                             [topic])).items()}
    parts = sorted(ends)
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(parts)
        starts = await consumer.offsets_for_times({tp: int(since_s * 1000) for tp in parts})
        found = []
        for tp in parts:
            start = starts[tp].offset if starts.get(tp) else ends[tp]
            if start >= ends[tp]:
                continue
            consumer.seek(tp, start)
            while await consumer.position(tp) < ends[tp]:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                found += [r for r in batch.get(tp, ()) if r.offset < ends[tp]]
        return found
    finally:
        await consumer.stop()


def log_lines(path: Path, message: str, since_s: float) -> list[tuple[float, dict]]:
    """(wall time, line) of the JSON log lines of `path` saying `message`, from `since_s` on."""
    found = []
    for raw in path.read_bytes().splitlines():
        if message.encode() not in raw:
            continue
        try:
            line = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if line.get("event") != message:
            continue
        at = datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00")).timestamp()
        if at >= since_s:
            found.append((at, line))
    return found


def stamp(probes: dict[str, Stamped], accepted: list, changes: list, applied: list, made: list) -> None:
    """Fill in each probe's (by event key, source:id) points from the records and log lines."""
    for record in accepted:
        value = orjson.loads(record.value)
        probe = probes.get(f"{value.get('source')}:{value.get('id')}")
        if probe is not None:
            probe.accepted = record.timestamp / 1000
    where: dict[str, tuple[int, int]] = {}
    for record in changes:
        value = orjson.loads(record.value)
        probe = probes.get(value.get("event_key", ""))
        if probe is not None and value.get("kind") == "task":
            probe.changed = record.timestamp / 1000
            where[value["event_key"]] = (record.partition, record.offset)
    made_at = [at for at, _ in made]
    made_gen = [line["generation"] for _, line in made]
    for key, (partition, offset) in where.items():
        batch = next(((at, line) for at, line in applied
                      if line.get("upto", {}).get(str(partition), -1) >= offset), None)
        if batch is None:
            continue
        probe = probes[key]
        probe.applied = batch[0]
        # the first status made at or after that batch, of its generation or a later one
        for i in range(bisect.bisect_left(made_at, batch[0]), len(made_at)):
            if made_gen[i] >= batch[1]["generation"]:
                probe.made = made_at[i]
                break


def percentiles(probes: list[Stamped], percentile) -> dict[str, dict[str, float]]:
    """p50 and p99 (ms) of each hop over the probes that have both of its ends."""
    figures = {}
    for name, start, end in HOPS:
        values = [getattr(p, end) - getattr(p, start) for p in probes
                  if getattr(p, start) is not None and getattr(p, end) is not None]
        if values:
            figures[name.strip()] = {"p50": round(1000 * percentile(values, 50), 1),
                                     "p99": round(1000 * percentile(values, 99), 1), "n": len(values)}
    return figures


def medians(runs: list[dict], median) -> dict[str, dict[str, float]]:
    """Per hop, the `median` over runs of each run's p50 and p99."""
    return {name.strip(): {q: round(median([r[name.strip()][q] for r in runs if name.strip() in r]), 1)
                           for q in ("p50", "p99")} for name, _, _ in HOPS}


def lines(figures: dict[str, dict[str, float]]) -> list[str]:
    """The hops as the bench prints them."""
    return ["  hops, medians of the runs (ms; bench/hops.py says where each begins and ends):"] + [
        f"    {name:<32} p50 {figures[name.strip()]['p50']:>8.1f}   p99 {figures[name.strip()]['p99']:>8.1f}"
        for name, _, _ in HOPS]


async def measure(seen: dict[str, tuple[float, float]], *, kafka: str, prefix: str, reports_log: Path,
                  since_s: float, percentile) -> dict[str, dict[str, float]]:
    """The hops of the probes `seen` (event key -> wall-clock 202 and first answer showing it)
    of a run that began at `since_s`: read back from the topics (prefix `prefix`) and the log."""
    from shared.topics import Topics

    topics = Topics(prefix)
    probes = {key: Stamped(ack=ack, seen=shown) for key, (ack, shown) in seen.items()}
    stamp(probes, await records(kafka, topics.accepted, since_s), await records(kafka, topics.changes, since_s),
          log_lines(reports_log, "changes applied", since_s), log_lines(reports_log, "status made", since_s))
    return percentiles(list(probes.values()), percentile)
