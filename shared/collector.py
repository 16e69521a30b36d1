"""Python's cyclic garbage collector, tuned for a process that works in batches.

Measured in-process over batches of 2,000 status reports: 38 us of collections per event as
CPython ships it, 15 with the freeze alone, under 1 with both; in `nqt replay`'s processes, which
keep a whole term's state, the collections were a quarter to a third of their CPU:
- what start-up made (the imported modules: some 100,000 objects) lives as long as the process:
  frozen, it is no longer walked by every full collection;
- a batch keeps tens of thousands of objects alive until its effects are written (records,
  envelopes, outcomes, changes): collected every 700 new objects, as by default, they were walked
  again and again while the batch was decided. Garbage in cycles, rare here, waits a little longer.

Reports' live service keeps its own policy (`services/reports/handlers.py`, `Collections`): it
freezes what survives each batch, so its full collections do not hold requests."""

from __future__ import annotations

import gc

THRESHOLDS = (50_000, 20, 20)


def for_batches() -> None:
    """Call once start-up's imports are done."""
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
