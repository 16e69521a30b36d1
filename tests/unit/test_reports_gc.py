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
