"""After a batch, reports keeps what survives out of the full garbage collections (they held
every request 100-600 ms under load), without keeping the batch's own garbage for ever."""

from __future__ import annotations

import gc
import weakref

from services.reports.handlers import Collections


class Node:
    def __init__(self):
        self.me = self  # a reference cycle: only the collector frees it


def test_a_batchs_cyclic_garbage_is_freed_and_what_survives_is_frozen():
    gc.unfreeze()
    kept, dropped = Node(), Node()
    gone = weakref.ref(dropped)
    del dropped
    try:
        Collections().after_batch()
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
        Collections().after_batch()
        assert gone() is None  # otherwise frozen for ever, a little more memory after every batch
    finally:
        gc.unfreeze()


def test_a_cycle_frozen_while_a_batch_held_it_is_freed_once_the_frozen_objects_have_grown():
    # The batch's records and the consumer's objects around them are still referred to when the
    # batch's end freezes what survives; dropped afterwards, a cycle among them is frozen garbage.
    gc.unfreeze()
    collections = Collections(growth=1.0, floor=1)
    collections.after_batch()  # a thorough start: what is frozen now is the base
    in_use = Node()
    gone = weakref.ref(in_use)
    try:
        collections.after_batch()  # in use while frozen
        del in_use
        collections.after_batch()
        assert gone() is not None  # frozen garbage, until the frozen objects grow enough
        growth = [Node() for _ in range(gc.get_freeze_count() + 1)]  # what later batches keep
        collections.after_batch()
        assert gone() is None
        assert growth[0].me is growth[0]  # what is still referred to stays
    finally:
        gc.unfreeze()


def test_the_frozen_objects_are_counted_only_when_they_may_have_grown_past_the_limit(monkeypatch):
    # Counting them walks every one (some 30 ms at a whole term's state): once per batch, that was
    # CPU per change growing with the term.
    gc.unfreeze()
    counted = []
    count = gc.get_freeze_count
    monkeypatch.setattr(gc, "get_freeze_count", lambda: counted.append(1) or count())
    collections = Collections(growth=1.0, floor=1)
    kept = [Node() for _ in range(20_000)]
    try:
        collections.after_batch()  # the first: counted, a thorough collection
        first = len(counted)
        for _ in range(30):  # batches that keep little
            kept.append(Node())
            collections.after_batch()
        assert len(counted) == first
        kept += [Node() for _ in range(2 * count())]  # the frozen objects more than doubled
        collections.after_batch()
        assert len(counted) > first and collections.settled >= len(kept)
    finally:
        gc.unfreeze()
