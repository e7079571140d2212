"""Keep the garbage collector off the objects a process makes while it starts.

A started bot holds some 430 000 long-lived objects (the imports: litellm alone is most of
them). CPython's oldest-generation collection walks every one of them each time it runs:
about 250 ms of CPU, and the event loop stopped for as long, a few times per thousand answers
under load (measured in docs/performance.md). Freezing the heap once start-up is done moves
those objects where the collector no longer walks them, as the `gc.freeze` documentation
suggests for servers; objects made afterwards are collected as before, and frozen ones are
still freed when nothing refers to them (only a cycle among them would stay).
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger(__name__)


def freeze_start_up_heap() -> int:
    """Collect what start-up left behind, then freeze the rest; the count frozen."""
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.debug("froze %d start-up objects out of the garbage collector's walks", frozen)
    return frozen
