"""Test support for the compiled core: market events as the core's input columns (`adapters.market_core`'s
row builder), and the Python reference (`domain.book.SyncedBook`) read back in the core's integer terms, so a
test compares the two after every message. Amounts go in as the event's own Decimal (mantissa, exponent),
whatever exponent the source wrote, so mixed exponents reach the core exactly as they reach the reference."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

import numpy as np

from adapters.market_core import RowBuilder, parts
from domain.book import OutOfSyncCause, SyncedBook, SyncOutcome, SyncStatus
from domain.events import EventBase

STATUS = {SyncStatus.APPLIED: 0, SyncStatus.BUFFERED: 1, SyncStatus.STALE: 2, SyncStatus.OUT_OF_SYNC: 3}
CAUSE = {None: 0, OutOfSyncCause.GAP: 1, OutOfSyncCause.CROSSED: 2, OutOfSyncCause.INVALID: 3}


def level(price: Decimal, size: Decimal) -> tuple[int, int, int, int]:
    return (*parts(price), *parts(size))


def columns_of(events: Iterable[EventBase], key_of: dict[tuple[str, str], int]) -> dict[str, np.ndarray]:
    builder = RowBuilder(key_of)
    for event in events:
        builder.add(event, key_of[(event.venue, event.instrument)])  # type: ignore[attr-defined]
    return builder.columns()


def outcome(o: SyncOutcome) -> tuple[int, int, int, int, int]:
    """The reference outcome in the core's terms (status, cause, expected, received, replayed)."""
    return STATUS[o.status], CAUSE[o.cause], o.expected_update_id, o.received_update_id, o.replayed


def book_state(book: SyncedBook) -> tuple[bool, bool, bool, int, int, int, int, int]:
    return (book.in_sync, book.has_snapshot, book.awaiting_first_delta, book.applied_update_id,
            book.applied_time_ns, book.deltas_applied, len(book.buffer), book.buffer_overflows)  # fmt: skip


def side_levels(book: SyncedBook, is_bid: bool, depth: int | None = None) -> list[tuple[int, int, int, int]]:
    walk = book.side(is_bid).walk()
    return [
        level(p, q) for _, (p, q) in zip(range(depth if depth is not None else 1 << 62), walk, strict=False)
    ]
