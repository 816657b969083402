"""Venues with no capture of their own (Bybit v5, Kraken v2) play a Binance capture's market translated into
their documented formats: the true book starts at the capture's REST snapshot and moves with its depth
updates; the venue's depth-limited book view changes are sent as that venue's deltas; trades and top of book
are re-encoded. Real market dynamics, the venue's own message format and sequence rules."""

from __future__ import annotations

from decimal import Decimal

from tests.local_exchange.capture import CaptureLine, TrueBook

Levels = list[tuple[Decimal, Decimal]]


def quantize(value: str, places: int) -> str:
    return f"{Decimal(value):.{places}f}"


class TranslatedMarket:
    """The capture from its REST snapshot on: the true book and the top-`depth` view a venue publishes."""

    def __init__(self, lines: list[CaptureLine], depth: int) -> None:
        start = next(i for i, line in enumerate(lines) if line.is_snapshot)
        self.lines = lines[start + 1 :]
        self.start_ms = lines[start].receive_ns // 1_000_000
        self.book = TrueBook()
        self.book.reset(lines[start].message)
        self.depth = depth
        self.view = self.top()

    def top(self) -> tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]:
        bids, asks = self.book.top(self.depth)
        return ({Decimal(p): Decimal(q) for p, q in bids}, {Decimal(p): Decimal(q) for p, q in asks})

    def move(self, line: CaptureLine, *, delete_pushed_out: bool) -> tuple[Levels, Levels] | None:
        """Apply a depth update to the true book; the changes of the top-`depth` view as (bids, asks) with
        quantity 0 for a removed level, or None when the view did not change. Levels pushed out of the view
        by better ones are sent as removals only if `delete_pushed_out` (Bybit); Kraken leaves them to the
        client's truncation."""
        if not self.book.apply(line.message["data"]):
            return None
        before, self.view = self.view, self.top()
        changes = tuple(
            _side_changes(old, new, self.book.bids if is_bid else self.book.asks, delete_pushed_out)
            for old, new, is_bid in ((before[0], self.view[0], True), (before[1], self.view[1], False))
        )
        bids, asks = changes
        return (bids, asks) if bids or asks else None


def _side_changes(old: dict[Decimal, Decimal], new: dict[Decimal, Decimal], truth: dict[Decimal, object],
                  delete_pushed_out: bool) -> Levels:  # fmt: skip
    changes: Levels = []
    for price in sorted(set(old) | set(new)):
        if price in new:
            if old.get(price) != new[price]:
                changes.append((price, new[price]))
        elif price not in truth or delete_pushed_out:
            changes.append((price, Decimal(0)))
    return changes
