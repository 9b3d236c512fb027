"""Tuning of a long-running Hookline process (``hookline serve``, ``hookline worker``)."""

from __future__ import annotations

import gc

#: Net allocations of container objects between two collections of the youngest generation
#: (Python's default is 700). A webhook call allocates a few hundred objects that die with it,
#: nearly all freed by reference counting; at 700, the dozens of calls in flight at once trip a
#: collection every few calls, which promotes their still-live objects to the older
#: generations, where only a full collection frees them again.
YOUNG_GENERATION_THRESHOLD = 10_000


def settle_heap() -> None:
    """Once a server or worker process has started: collect, then move every object alive
    (modules, plugins, the ORM's models, compiled workflows) to the permanent generation, which
    the garbage collector no longer walks; and collect the youngest generation less often.

    Measured (``bench/``, a sync webhook at c=32 on SQLite): without it, each full collection
    walked the whole startup heap for about 60 ms, stalling every call in flight, more than once
    a second under load: p99 73 ms against 14 ms at the median. Frozen objects are still freed by
    reference counting; only cycles among them are kept, and those were made at startup.
    """
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, oldest)
