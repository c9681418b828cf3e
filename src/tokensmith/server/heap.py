"""Garbage-collector settings for a serving process.

Python's cyclic collector walks every tracked object of the generation it collects. After start-up the heap holds
hundreds of thousands of long-lived objects (SQLAlchemy, Alembic, pydantic, joserfc, the configuration), so each
full collection, triggered every so often by the allocations of ordinary requests, paused the event loop for tens
of milliseconds and set the token endpoint's p99 (docs/performance.md). Freezing the start-up heap moves those
objects out of the collector's sight for good; a larger first-generation threshold makes the young collections,
which request garbage triggers, rarer. Requests create almost no reference cycles, so reference counting still
frees their garbage at once.
"""

from __future__ import annotations

import gc
from typing import Final

# Allocations between two young collections (CPython's default is 700).
YOUNG_GENERATION_THRESHOLD: Final = 10_000


def settle_heap_for_serving() -> None:
    """Call once, when start-up is done: collect, freeze what survived, and make young collections rarer."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, old)
