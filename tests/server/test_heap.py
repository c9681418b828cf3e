"""settle_heap_for_serving: the start-up heap is frozen for the collector and young collections become rarer."""

from __future__ import annotations

import gc

from tokensmith.server.heap import YOUNG_GENERATION_THRESHOLD, settle_heap_for_serving


def test_settling_freezes_the_heap_and_raises_the_young_threshold() -> None:
    saved = gc.get_threshold()
    try:
        settle_heap_for_serving()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (YOUNG_GENERATION_THRESHOLD, saved[1], saved[2])
    finally:
        # A process setting: give the test run its collector back.
        gc.unfreeze()
        gc.set_threshold(*saved)
