"""L2 order books per (venue, instrument), kept in sync with Binance-style update ids.

`BookDecider` is the decider (one instance holds every book); the functions below it are pure helpers that
the simulated venue reuses on books it owns. Rules:

* `BookSnapshot` replaces the book and remembers its `last_update_id` L.
* The first delta after a snapshot: `final_update_id <= L` is stale and dropped; it is applied when
  `first_update_id <= L + 1 <= final_update_id`; anything later is a gap.
* Afterwards spot deltas need `first_update_id == previous final + 1`; futures deltas (those carrying
  `previous_final_update_id`, Binance `pu`) need `previous_final_update_id == previous final`. A delta whose
  `final_update_id` is not beyond the previous final is a stale duplicate and is dropped.
* A gap, a delta that would cross (or lock) the book, or a level with a non-positive price or negative
  quantity: `decide` emits one `BookResyncNeeded`; the book is then out of sync and ignores deltas until the
  next snapshot, so it is never corrupted. A delta before any snapshot is reported the same way, once.

Each side is a dict price -> quantity plus the prices sorted ascending (kept with bisect), so a level update
costs a dict write and, when a level appears or disappears, one list insert or delete.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum

from domain.events import (
    BookDelta,
    BookResyncNeeded,
    BookSnapshot,
    EventBase,
    Level,
    QuoteTick,
    derive_envelope,
)

BookKey = tuple[str, str]
"""(venue, instrument)"""

_ZERO = Decimal(0)
_TWO = Decimal(2)


@dataclass(slots=True)
class BookSide:
    """One side of a book: `levels` price -> quantity and `prices` sorted ascending (best bid last, best ask first)."""

    is_bid: bool
    levels: dict[Decimal, Decimal] = field(default_factory=dict)
    prices: list[Decimal] = field(default_factory=list)

    def set_level(self, price: Decimal, quantity: Decimal) -> None:
        """Set a level; quantity 0 removes it."""
        levels = self.levels
        if quantity == _ZERO:
            if price in levels:
                del levels[price]
                prices = self.prices
                del prices[bisect_left(prices, price)]
            return
        if price not in levels:
            insort(self.prices, price)
        levels[price] = quantity

    def replace(self, new_levels: tuple[Level, ...]) -> None:
        levels: dict[Decimal, Decimal] = {}
        for price, quantity in new_levels:
            if quantity == _ZERO:
                levels.pop(price, None)
            else:
                levels[price] = quantity
        self.levels = levels
        self.prices = sorted(levels)

    def best(self) -> Decimal | None:
        prices = self.prices
        if not prices:
            return None
        return prices[-1] if self.is_bid else prices[0]

    def top(self, n: int) -> list[Level]:
        """The best `n` levels, best first."""
        if n <= 0:
            return []
        prices = self.prices[-n:][::-1] if self.is_bid else self.prices[:n]
        return [(price, self.levels[price]) for price in prices]

    def quantity_at(self, price: Decimal) -> Decimal:
        return self.levels.get(price, _ZERO)

    def best_after(self, updates: tuple[Level, ...]) -> Decimal | None:
        """Best price this side would have after `updates`, without changing it."""
        changed: dict[Decimal, Decimal] = {}
        for price, quantity in updates:
            changed[price] = quantity
        best: Decimal | None = None
        is_bid = self.is_bid
        for price, quantity in changed.items():  # insertion order; max/min is order independent anyway
            if quantity > _ZERO and (best is None or (price > best if is_bid else price < best)):
                best = price
        prices = self.prices
        walk = reversed(prices) if is_bid else iter(prices)
        for price in walk:
            if price in changed:
                continue  # removed, or already counted among the updates
            if best is None or (price > best if is_bid else price < best):
                best = price
            break
        return best


@dataclass(slots=True)
class L2Book:
    venue: str
    instrument: str
    bids: BookSide = field(default_factory=lambda: BookSide(is_bid=True))
    asks: BookSide = field(default_factory=lambda: BookSide(is_bid=False))
    last_update_id: int = 0
    """The snapshot's lastUpdateId until the first delta applies, then the last applied final_update_id."""
    awaiting_first_delta: bool = True
    in_sync: bool = False
    has_snapshot: bool = False
    top_of_book_only: bool = False
    """Built from a QuoteTick (no L2 seen for this book): only the best level of each side is known."""
    deltas_applied: int = 0

    def side(self, is_bid: bool) -> BookSide:
        return self.bids if is_bid else self.asks


@dataclass(slots=True)
class BookState:
    books: dict[BookKey, L2Book] = field(default_factory=dict)

    def book(self, venue: str, instrument: str) -> L2Book | None:
        return self.books.get((venue, instrument))


class DeltaAction(Enum):
    APPLY = "apply"
    STALE = "stale"
    """Already covered by the snapshot or a previous delta: dropped silently."""
    IGNORE = "ignore"
    """The book is out of sync and waits for a snapshot (the resync was already reported)."""
    RESYNC = "resync"
    """Gap, crossing or invalid level: report once, then the book is out of sync."""


@dataclass(frozen=True, slots=True)
class DeltaVerdict:
    action: DeltaAction
    reason: str = ""
    expected_update_id: int = 0


_APPLY = DeltaVerdict(DeltaAction.APPLY)
_STALE = DeltaVerdict(DeltaAction.STALE)
_IGNORE = DeltaVerdict(DeltaAction.IGNORE)


# ---- pure helpers ---------------------------------------------------------------------------------------


def best_bid(book: L2Book) -> Level | None:
    price = book.bids.best()
    return None if price is None else (price, book.bids.levels[price])


def best_ask(book: L2Book) -> Level | None:
    price = book.asks.best()
    return None if price is None else (price, book.asks.levels[price])


def mid(book: L2Book) -> Decimal | None:
    bid, ask = book.bids.best(), book.asks.best()
    if bid is None or ask is None:
        return None
    return (bid + ask) / _TWO


def depth(book: L2Book, n: int) -> tuple[list[Level], list[Level]]:
    """Top `n` levels: (bids best first = descending, asks best first = ascending)."""
    return book.bids.top(n), book.asks.top(n)


def is_crossed(book: L2Book) -> bool:
    bid, ask = book.bids.best(), book.asks.best()
    return bid is not None and ask is not None and bid >= ask


def _invalid_levels(levels: tuple[Level, ...], allow_zero: bool) -> str:
    for price, quantity in levels:
        if price <= _ZERO:
            return f"non-positive price {price}"
        if quantity < _ZERO or (not allow_zero and quantity == _ZERO):
            return f"invalid quantity {quantity} at price {price}"
    return ""


def check_snapshot(snapshot: BookSnapshot) -> str:
    """Why a snapshot cannot be used ('' when it can)."""
    reason = _invalid_levels(snapshot.bids, True) or _invalid_levels(snapshot.asks, True)
    if reason:
        return f"invalid snapshot: {reason}"
    bids = [p for p, q in snapshot.bids if q > _ZERO]
    asks = [p for p, q in snapshot.asks if q > _ZERO]
    if bids and asks and max(bids) >= min(asks):
        return f"crossed snapshot: best bid {max(bids)} >= best ask {min(asks)}"
    return ""


def check_delta(book: L2Book | None, delta: BookDelta) -> DeltaVerdict:
    """What to do with `delta` on `book` (None: no book yet). Pure."""
    if book is None or not book.has_snapshot:
        if book is not None and not book.in_sync:
            return _IGNORE
        return DeltaVerdict(DeltaAction.RESYNC, "no snapshot yet", 0)
    if not book.in_sync:
        return _IGNORE
    last = book.last_update_id
    if delta.final_update_id <= last:
        return _STALE
    if book.awaiting_first_delta:
        if not delta.first_update_id <= last + 1 <= delta.final_update_id:
            return DeltaVerdict(
                DeltaAction.RESYNC,
                f"gap after snapshot: first delta must span {last + 1}, got {delta.first_update_id}"
                f"..{delta.final_update_id}",
                last + 1,
            )
    elif delta.previous_final_update_id is not None:
        if delta.previous_final_update_id != last:
            return DeltaVerdict(
                DeltaAction.RESYNC,
                f"futures gap: pu {delta.previous_final_update_id} != previous final {last}",
                last,
            )
    elif delta.first_update_id != last + 1:
        return DeltaVerdict(
            DeltaAction.RESYNC,
            f"spot gap: first_update_id {delta.first_update_id} != previous final + 1 = {last + 1}",
            last + 1,
        )
    # One pass over the updates: validity, and bounds on the new best prices (removals only move a best
    # price away from the other side, so best bid <= max(current, highest new bid) and likewise for asks).
    bid_bound = book.bids.best()
    for price, quantity in delta.bids:
        if price <= _ZERO or quantity < _ZERO:
            return DeltaVerdict(DeltaAction.RESYNC, f"invalid delta: bid {quantity} at {price}", last + 1)
        if quantity and (bid_bound is None or price > bid_bound):
            bid_bound = price
    ask_bound = book.asks.best()
    for price, quantity in delta.asks:
        if price <= _ZERO or quantity < _ZERO:
            return DeltaVerdict(DeltaAction.RESYNC, f"invalid delta: ask {quantity} at {price}", last + 1)
        if quantity and (ask_bound is None or price < ask_bound):
            ask_bound = price
    if bid_bound is None or ask_bound is None or bid_bound < ask_bound:
        return _APPLY  # cannot cross, whatever the removals
    bid = book.bids.best_after(delta.bids) if delta.bids else book.bids.best()
    ask = book.asks.best_after(delta.asks) if delta.asks else book.asks.best()
    if bid is not None and ask is not None and bid >= ask:
        return DeltaVerdict(
            DeltaAction.RESYNC, f"delta would cross the book: best bid {bid} >= best ask {ask}", last + 1
        )
    return _APPLY


def apply_snapshot(book: L2Book, snapshot: BookSnapshot) -> None:
    """Replace the book with a (checked) snapshot."""
    book.bids.replace(snapshot.bids)
    book.asks.replace(snapshot.asks)
    book.last_update_id = snapshot.last_update_id
    book.awaiting_first_delta = True
    book.in_sync = True
    book.has_snapshot = True
    book.top_of_book_only = False


def apply_delta(book: L2Book, delta: BookDelta) -> None:
    """Apply a delta that `check_delta` said to apply."""
    set_bid = book.bids.set_level
    for price, quantity in delta.bids:
        set_bid(price, quantity)
    set_ask = book.asks.set_level
    for price, quantity in delta.asks:
        set_ask(price, quantity)
    book.last_update_id = delta.final_update_id
    book.awaiting_first_delta = False
    book.deltas_applied += 1


def apply_top_of_book(book: L2Book, quote: QuoteTick) -> bool:
    """Make the book the quote's top of book (for venues without L2). False (unchanged) if the quote is
    crossed or has a non-positive price."""
    if quote.bid_price <= _ZERO or quote.ask_price <= _ZERO or quote.bid_price >= quote.ask_price:
        return False
    if quote.bid_size < _ZERO or quote.ask_size < _ZERO:
        return False
    book.bids.replace(((quote.bid_price, quote.bid_size),))
    book.asks.replace(((quote.ask_price, quote.ask_size),))
    book.top_of_book_only = True
    book.in_sync = True
    return True


def mark_out_of_sync(state: BookState, venue: str, instrument: str) -> None:
    book = state.books.get((venue, instrument))
    if book is None:
        book = state.books[(venue, instrument)] = L2Book(venue, instrument)
    book.in_sync = False


class BookDecider:
    """Maintains every L2 book; emits `BookResyncNeeded` once per loss of sync."""

    consumes = (BookDelta, BookSnapshot, BookResyncNeeded)

    def __init__(self, name: str = "book") -> None:
        self.name = name

    def initial_state(self) -> BookState:
        return BookState()

    def decide(self, state: BookState, event: EventBase) -> list[EventBase]:
        if isinstance(event, BookDelta):
            verdict = check_delta(state.books.get((event.venue, event.instrument)), event)
            if verdict.action is DeltaAction.RESYNC:
                return [self._resync(event, event.venue, event.instrument, verdict.expected_update_id,
                                     event.first_update_id, verdict.reason)]  # fmt: skip
        elif isinstance(event, BookSnapshot):
            reason = check_snapshot(event)
            if reason:
                return [self._resync(event, event.venue, event.instrument, event.last_update_id,
                                     event.last_update_id, reason)]  # fmt: skip
        return []

    def _resync(
        self, cause: EventBase, venue: str, instrument: str, expected: int, received: int, reason: str
    ) -> BookResyncNeeded:
        return BookResyncNeeded(
            envelope=derive_envelope(cause.envelope, self.name, 0),
            venue=venue,
            instrument=instrument,
            expected_update_id=expected,
            received_first_update_id=received,
            reason=reason,
        )

    def evolve(self, state: BookState, event: EventBase) -> BookState:
        if isinstance(event, BookDelta):
            key = (event.venue, event.instrument)
            book = state.books.get(key)
            verdict = check_delta(book, event)
            if verdict.action is DeltaAction.APPLY and book is not None:
                apply_delta(book, event)
            elif verdict.action is DeltaAction.RESYNC:
                mark_out_of_sync(state, event.venue, event.instrument)
        elif isinstance(event, BookSnapshot):
            key = (event.venue, event.instrument)
            book = state.books.get(key)
            if book is None:
                book = state.books[key] = L2Book(event.venue, event.instrument)
            if check_snapshot(event):
                book.in_sync = False
            else:
                apply_snapshot(book, event)
        elif isinstance(event, BookResyncNeeded):
            mark_out_of_sync(state, event.venue, event.instrument)
        return state
