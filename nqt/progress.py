"""Progress of a long read, per topic: records done of the total, records per second, lag
(records left) and the time left. A rich progress bar on a terminal; elsewhere (a log, a CI
job) one plain line per topic every few seconds."""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager
from typing import AsyncIterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

PLAIN_EVERY_S = 5.0


class Meter:
    """One per topic, from `Meters.meter`."""

    def __init__(self, meters: "Meters", name: str, total: int):
        self.meters, self.name, self.total = meters, name, total
        self.done, self.started = 0, time.monotonic()
        self.task = meters.bars.add_task(name, total=total, rate="", lag=f"{total:,}")

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def line(self) -> str:
        left = self.total - self.done
        eta = f"{left / self.rate:,.0f} s" if self.rate else "?"
        return (f"{self.name}: {self.done:,}/{self.total:,} records, {self.rate:,.0f}/s, lag {left:,}, "
                f"ETA {eta if left else 'done'}")

    def advance(self, n: int) -> None:
        self.done += n
        self.meters.bars.update(self.task, completed=self.done, rate=f"{self.rate:,.0f}/s",
                                lag=f"{self.total - self.done:,}")
        if self.meters.plain and self.done >= self.total:
            self.meters.show(self)


class Meters:
    def __init__(self, console: Console):
        self.console = console
        self.plain = not console.is_terminal
        self.bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TextColumn("{task.fields[rate]}"), TextColumn("lag {task.fields[lag]}"),
                             TimeRemainingColumn(), console=console, disable=self.plain)
        self.meters: list[Meter] = []

    def meter(self, name: str, total: int) -> Meter:
        self.meters.append(Meter(self, name, total))
        return self.meters[-1]

    def show(self, meter: Meter) -> None:
        self.console.print(meter.line(), highlight=False, soft_wrap=True)

    async def every(self, seconds: float) -> None:
        """A plain line per unfinished topic every `seconds` (not on a terminal)."""
        while True:
            await asyncio.sleep(seconds)
            for meter in self.meters:
                if meter.done < meter.total:
                    self.show(meter)


@asynccontextmanager
async def meters(console: Console) -> AsyncIterator[Meters]:
    shown = Meters(console)
    ticking = asyncio.create_task(shown.every(PLAIN_EVERY_S)) if shown.plain else None
    try:
        with shown.bars:
            yield shown
    finally:
        if ticking is not None:
            ticking.cancel()
