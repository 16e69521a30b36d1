"""After a batch, reports keeps what survives out of the full garbage collections (they held
every request 100-600 ms under load), without keeping the batch's own garbage for ever."""

from __future__ import annotations

import gc
import weakref

from services.reports.handlers import keep_out_of_collections


class Node:
    def __init__(self):
        self.me = self  # a reference cycle: only the collector frees it


def test_a_batchs_cyclic_garbage_is_freed_and_what_survives_is_frozen():
    gc.unfreeze()
    kept, dropped = Node(), Node()
    gone = weakref.ref(dropped)
    del dropped
    try:
        keep_out_of_collections()
        assert gone() is None  # not frozen with the rest, so not kept for ever
        assert gc.get_freeze_count() > 0 and kept.me is kept
    finally:
        gc.unfreeze()


def test_cyclic_garbage_that_outlived_the_young_collections_of_a_batch_is_freed_too():
    # A batch of a thousand changes runs many automatic collections: what it holds until its end
    # (decoded changes, their writes) reaches the oldest generation before it becomes garbage.
    gc.unfreeze()
    held = Node()
    gone = weakref.ref(held)
    gc.collect(1)  # as the automatic collections during a batch do: it survives them into the oldest
    gc.collect(1)
    del held
    try:
        keep_out_of_collections()
        assert gone() is None  # otherwise frozen for ever, a little more memory after every batch
    finally:
        gc.unfreeze()
