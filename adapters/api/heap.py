"""The API server's heap and Python's cyclic garbage collector.

A full (generation 2) collection walks every tracked object of the process. After start-up (FastAPI,
strawberry, graphql-core, SQLAlchemy, the schema, the composition) that is ~225,000 objects, and one such
collection took 0.2-0.45 s of the server's one core: every request in flight waited for it (orders query at
200 requests/s: p50 6 ms, p99 364 ms). Those objects live as long as the process, so they are collected
once and frozen out of the collector's generations (`gc.freeze`): a full collection then walks only what was
allocated since.

That alone is not enough. With the start-up heap frozen, the collector's other condition for a full
collection ("the objects promoted since the last one are a quarter of the long-lived heap") is met at once,
so one ran every ten collections of the middle generation, every few seconds under load, and what comes
after start-up can be large too: 1,000 open websockets (protocol objects, tasks, buffers) took 50-150 ms
to walk. So full collections wait for 100 middle-generation collections instead of 10 (about a minute or
two under the benchmarks' load). The young generations keep CPython's thresholds: their collections stay
short (a few milliseconds at most) and frequent, and most garbage is freed by reference counting anyway."""

from __future__ import annotations

import gc

FULL_COLLECTION_EVERY = 100
"""Collections of the middle generation between two full collections (CPython's default: 10)."""


def freeze_startup_heap() -> None:
    """Call once the server is composed, before it serves: what exists now is never walked again."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)
