"""L2 order books per (venue, instrument), kept in sync exactly as Binance specifies.

`SyncedBook` is one venue+instrument book and the only place the sync rules live; the market view
(`domain.market_view`, read by `domain.book_decider.BookDecider`, which emits `BookResyncNeeded`) and the
simulated venue both hold `SyncedBook`s. `SyncedBook.apply(event)`
returns a `SyncOutcome`: applied, buffered, stale or out of sync (with the reason).

Rules (Binance "how to manage a local order book correctly", spot and USD-M/COIN-M futures):

* Until a snapshot is applied, and whenever the book is out of sync, deltas are buffered (at most
  `max_buffered`; on overflow the oldest is dropped and counted in `buffer_overflows`: the next snapshot
  then bridges only if it is newer than the dropped deltas, otherwise the bridge check below reports a gap
  and the book waits for the following snapshot, it is never silently wrong).
* `BookSnapshot` (lastUpdateId L) replaces the levels, then the buffered deltas are replayed in arrival order
  under the rules below, exactly as if they arrived after it.
* First delta after a snapshot. Spot: drop `u <= L`; the first applied must have `U <= L + 1 <= u`.
  Futures (deltas carrying `pu`): drop `u < L`; the first applied must have `U <= L <= u`.
* Afterwards spot deltas need `U == previous u + 1`; futures deltas need `pu == previous u` (futures ids are
  not contiguous). A delta whose `u` is not beyond the last applied id is a duplicate and dropped (stale).
* A gap, a delta that would cross or lock the book, a non-positive price or a negative quantity (in a delta
  or a snapshot), or a crossed snapshot: the book goes OUT OF SYNC (one outcome carrying the reason, from
  which `BookDecider` derives one `BookResyncNeeded`). The offending delta is not applied, so the levels are
  the last good ones; it and every later delta are buffered, and the next snapshot rebuilds the book.
* A snapshot no newer than what an in-sync book has already applied (L <= applied id) is stale and ignored:
  the book already holds that state, and re-basing on it would make the next futures delta (U > L, `pu == L`)
  fail the first-delta rule.

`applied_update_id` is the final id of the last applied snapshot or delta: the book's levels are the
exchange's book exactly as of that update id (what Binance's bookTicker `u` refers to).

Each side is a dict price -> quantity plus the prices sorted ascending (kept with bisect), so a level update
costs a dict write and, when a level appears or disappears, one list insert or delete.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum

from domain.events import (
    BookDelta,
    BookSnapshot,
    Level,
    QuoteTick,
)

BookKey = tuple[str, str]
"""(venue, instrument)"""

MAX_BUFFERED = 10_000
"""Deltas kept while waiting for a snapshot: Binance futures send ~100 depth messages a second at most per
symbol, so this covers well over a minute of snapshot latency."""

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

    def walk(self) -> Iterator[Level]:
        """Every level, best first (bids descending, asks ascending), for walking the book; lazy, so a
        walk that stops early costs only the levels it saw. Do not change the side while walking it."""
        levels = self.levels
        for price in reversed(self.prices) if self.is_bid else self.prices:
            yield price, levels[price]

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


class OutOfSyncCause(Enum):
    GAP = "gap"
    """An update id is missing (or the snapshot cannot be bridged to the buffered deltas)."""
    CROSSED = "crossed"
    """The delta would cross or lock the book, or the snapshot is crossed."""
    INVALID = "invalid"
    """A non-positive price or a negative quantity."""


class SyncStatus(Enum):
    APPLIED = "applied"
    BUFFERED = "buffered"
    """Kept until the next snapshot (no snapshot yet, or out of sync)."""
    STALE = "stale"
    """Already covered by the snapshot or a previous delta: dropped."""
    OUT_OF_SYNC = "out_of_sync"
    """This event put the book out of sync (reported once per loss of sync); see `reason`."""


@dataclass(frozen=True, slots=True)
class SyncOutcome:
    status: SyncStatus
    reason: str = ""
    expected_update_id: int = 0
    """OUT_OF_SYNC: the update id the book needed next."""
    received_update_id: int = 0
    """OUT_OF_SYNC: the first update id it got instead (a snapshot's lastUpdateId for a bad snapshot)."""
    replayed: int = 0
    """APPLIED snapshot: how many buffered deltas were applied on top of it."""
    cause: OutOfSyncCause | None = None


_APPLIED = SyncOutcome(SyncStatus.APPLIED)
_BUFFERED = SyncOutcome(SyncStatus.BUFFERED)
_STALE_OUTCOME = SyncOutcome(SyncStatus.STALE)

AppliedHook = Callable[["SyncedBook", "BookSnapshot | BookDelta"], None]
"""Called after each snapshot or delta is applied (buffered ones included), with the book as of it."""


@dataclass(slots=True)
class SyncedBook:
    """One venue+instrument L2 book kept in sync with the exchange's update ids (rules: module docstring)."""

    venue: str
    instrument: str
    bids: BookSide = field(default_factory=lambda: BookSide(is_bid=True))
    asks: BookSide = field(default_factory=lambda: BookSide(is_bid=False))
    applied_update_id: int = 0
    """Final update id of the last applied snapshot or delta."""
    applied_time_ns: int = -1
    """Event time of the snapshot or delta whose `apply` last moved `applied_update_id`."""
    awaiting_first_delta: bool = True
    in_sync: bool = False
    has_snapshot: bool = False
    deltas_applied: int = 0
    max_buffered: int = MAX_BUFFERED
    buffer: deque[BookDelta] = field(default_factory=deque)
    buffer_overflows: int = 0

    def side(self, is_bid: bool) -> BookSide:
        return self.bids if is_bid else self.asks

    def best_bid(self) -> Level | None:
        price = self.bids.best()
        return None if price is None else (price, self.bids.levels[price])

    def best_ask(self) -> Level | None:
        price = self.asks.best()
        return None if price is None else (price, self.asks.levels[price])

    def apply(self, event: BookSnapshot | BookDelta, on_applied: AppliedHook | None = None) -> SyncOutcome:
        """Fold one snapshot or delta into the book under the sync rules."""
        before = self.applied_update_id
        if isinstance(event, BookDelta):
            outcome = self._apply_delta(event, on_applied)
        else:
            outcome = self._apply_snapshot(event, on_applied)
        if self.applied_update_id != before:
            self.applied_time_ns = event.envelope.event_time_ns
        return outcome

    def behind(self, quote: QuoteTick) -> bool:
        """Whether `quote` (the exchange's top of book) shows a later state than this book has applied: by
        the exchange's update ids when the quote carries one (ids, not clocks), else by event time."""
        if quote.venue_update_id is not None:
            return quote.venue_update_id > self.applied_update_id
        return quote.envelope.event_time_ns > self.applied_time_ns

    def check(self, event: BookSnapshot | BookDelta) -> SyncOutcome:
        """What `apply(event)` would return, without changing the book (for a decider's `decide`)."""
        if isinstance(event, BookDelta):
            if not self.in_sync:
                return _BUFFERED
            return _outcome(check_delta(self, event), event)
        # A snapshot is rare: apply it to a scratch book with the same sync state and a copy of the buffer.
        scratch = SyncedBook(
            self.venue,
            self.instrument,
            applied_update_id=self.applied_update_id,
            in_sync=self.in_sync,
            buffer=deque(self.buffer),
        )
        return scratch._apply_snapshot(event, None)

    def mark_out_of_sync(self) -> None:
        """Stop applying deltas (buffer them) until the next snapshot, e.g. on a reported disconnect."""
        self.in_sync = False

    def _holds(self, snapshot: BookSnapshot) -> bool:
        return self.in_sync and snapshot.last_update_id <= self.applied_update_id

    def _buffer(self, delta: BookDelta) -> None:
        if len(self.buffer) >= self.max_buffered:
            self.buffer.popleft()
            self.buffer_overflows += 1
        self.buffer.append(delta)

    def _apply_delta(self, delta: BookDelta, on_applied: AppliedHook | None) -> SyncOutcome:
        if not self.in_sync:
            self._buffer(delta)
            return _BUFFERED
        verdict = check_delta(self, delta)
        if verdict.action is DeltaAction.APPLY:
            apply_delta(self, delta)
            if on_applied is not None:
                on_applied(self, delta)
            return _APPLIED
        if verdict.action is DeltaAction.STALE:
            return _STALE_OUTCOME
        self.in_sync = False
        self._buffer(delta)
        return _outcome(verdict, delta)

    def _apply_snapshot(self, snapshot: BookSnapshot, on_applied: AppliedHook | None) -> SyncOutcome:
        problem = _snapshot_problem(snapshot)
        if problem is not None:
            self.in_sync = False
            last = snapshot.last_update_id
            return SyncOutcome(SyncStatus.OUT_OF_SYNC, problem[1], last, last, cause=problem[0])
        if self._holds(snapshot):
            return _STALE_OUTCOME
        apply_snapshot(self, snapshot)
        if on_applied is not None:
            on_applied(self, snapshot)
        buffered, self.buffer = self.buffer, deque()
        replayed = 0
        while buffered:
            delta = buffered.popleft()
            verdict = check_delta(self, delta)
            if verdict.action is DeltaAction.APPLY:
                apply_delta(self, delta)
                replayed += 1
                if on_applied is not None:
                    on_applied(self, delta)
            elif verdict.action is DeltaAction.RESYNC:
                self.in_sync = False
                buffered.appendleft(delta)
                self.buffer = buffered
                outcome = _outcome(verdict, delta)
                return SyncOutcome(
                    SyncStatus.OUT_OF_SYNC,
                    f"{outcome.reason} (replaying deltas buffered before snapshot {snapshot.last_update_id})",
                    outcome.expected_update_id,
                    outcome.received_update_id,
                    replayed,
                    outcome.cause,
                )
        return SyncOutcome(SyncStatus.APPLIED, replayed=replayed)


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
    cause: OutOfSyncCause | None = None


def _resync(cause: OutOfSyncCause, reason: str, expected_update_id: int) -> DeltaVerdict:
    return DeltaVerdict(DeltaAction.RESYNC, reason, expected_update_id, cause)


_APPLY = DeltaVerdict(DeltaAction.APPLY)
_STALE = DeltaVerdict(DeltaAction.STALE)
_IGNORE = DeltaVerdict(DeltaAction.IGNORE)


# ---- pure helpers ---------------------------------------------------------------------------------------

best_bid = SyncedBook.best_bid
best_ask = SyncedBook.best_ask


def mid(book: SyncedBook) -> Decimal | None:
    bid, ask = book.bids.best(), book.asks.best()
    if bid is None or ask is None:
        return None
    return (bid + ask) / _TWO


def depth(book: SyncedBook, n: int) -> tuple[list[Level], list[Level]]:
    """Top `n` levels: (bids best first = descending, asks best first = ascending)."""
    return book.bids.top(n), book.asks.top(n)


def is_crossed(book: SyncedBook) -> bool:
    bid, ask = book.bids.best(), book.asks.best()
    return bid is not None and ask is not None and bid >= ask


def _invalid_levels(levels: tuple[Level, ...]) -> str:
    for price, quantity in levels:
        if price <= _ZERO:
            return f"non-positive price {price}"
        if quantity < _ZERO:
            return f"negative quantity {quantity} at price {price}"
    return ""


def _snapshot_problem(snapshot: BookSnapshot) -> tuple[OutOfSyncCause, str] | None:
    reason = _invalid_levels(snapshot.bids) or _invalid_levels(snapshot.asks)
    if reason:
        return OutOfSyncCause.INVALID, f"invalid snapshot: {reason}"
    bids = [p for p, q in snapshot.bids if q > _ZERO]
    asks = [p for p, q in snapshot.asks if q > _ZERO]
    if bids and asks and max(bids) >= min(asks):
        return OutOfSyncCause.CROSSED, f"crossed snapshot: best bid {max(bids)} >= best ask {min(asks)}"
    return None


_GAP = OutOfSyncCause.GAP


def _sequence(book: SyncedBook, delta: BookDelta) -> DeltaVerdict | None:
    """The id rules: None when `delta` is next in sequence, else STALE or RESYNC."""
    last = book.applied_update_id
    first, final, previous = delta.first_update_id, delta.final_update_id, delta.previous_final_update_id
    if book.awaiting_first_delta:
        if previous is not None:  # futures: U <= L <= u
            if final < last:
                return _STALE
            if first <= last <= final:
                return None
            return _resync(
                _GAP, f"gap after snapshot: first delta must span {last}, got {first}..{final}", last
            )
        if final <= last:  # spot: U <= L + 1 <= u
            return _STALE
        if first <= last + 1:
            return None
        return _resync(
            _GAP, f"gap after snapshot: first delta must span {last + 1}, got {first}..{final}", last + 1
        )
    if final <= last:
        return _STALE  # a re-delivered delta carries nothing new
    if previous is not None:
        if previous == last:
            return None
        return _resync(_GAP, f"futures gap: pu {previous} != previous final {last}", last)
    if first == last + 1:
        return None
    return _resync(_GAP, f"spot gap: first_update_id {first} != previous final + 1 = {last + 1}", last + 1)


def check_delta(book: SyncedBook | None, delta: BookDelta) -> DeltaVerdict:
    """What to do with `delta` on `book` (None: no book yet). Pure."""
    if book is None or not book.in_sync:
        return _IGNORE
    verdict = _sequence(book, delta)
    if verdict is not None:
        return verdict
    last = book.applied_update_id
    # One pass over the updates: validity, and bounds on the new best prices (removals only move a best
    # price away from the other side, so best bid <= max(current, highest new bid) and likewise for asks).
    bid_bound = book.bids.best()
    for price, quantity in delta.bids:
        if price <= _ZERO or quantity < _ZERO:
            return _resync(OutOfSyncCause.INVALID, f"invalid delta: bid {quantity} at {price}", last)
        if quantity and (bid_bound is None or price > bid_bound):
            bid_bound = price
    ask_bound = book.asks.best()
    for price, quantity in delta.asks:
        if price <= _ZERO or quantity < _ZERO:
            return _resync(OutOfSyncCause.INVALID, f"invalid delta: ask {quantity} at {price}", last)
        if quantity and (ask_bound is None or price < ask_bound):
            ask_bound = price
    if bid_bound is None or ask_bound is None or bid_bound < ask_bound:
        return _APPLY  # cannot cross, whatever the removals
    bid = book.bids.best_after(delta.bids) if delta.bids else book.bids.best()
    ask = book.asks.best_after(delta.asks) if delta.asks else book.asks.best()
    if bid is not None and ask is not None and bid >= ask:
        return _resync(
            OutOfSyncCause.CROSSED, f"delta would cross the book: best bid {bid} >= best ask {ask}", last
        )
    return _APPLY


def _outcome(verdict: DeltaVerdict, delta: BookDelta) -> SyncOutcome:
    if verdict.action is DeltaAction.APPLY:
        return _APPLIED
    if verdict.action is DeltaAction.STALE:
        return _STALE_OUTCOME
    if verdict.action is DeltaAction.IGNORE:
        return _BUFFERED
    return SyncOutcome(
        SyncStatus.OUT_OF_SYNC,
        verdict.reason,
        verdict.expected_update_id,
        delta.first_update_id,
        cause=verdict.cause,
    )


def apply_snapshot(book: SyncedBook, snapshot: BookSnapshot) -> None:
    """Replace the book with a (checked) snapshot."""
    book.bids.replace(snapshot.bids)
    book.asks.replace(snapshot.asks)
    book.applied_update_id = snapshot.last_update_id
    book.awaiting_first_delta = True
    book.in_sync = True
    book.has_snapshot = True


def apply_delta(book: SyncedBook, delta: BookDelta) -> None:
    """Apply a delta that `check_delta` said to apply."""
    set_bid = book.bids.set_level
    for price, quantity in delta.bids:
        set_bid(price, quantity)
    set_ask = book.asks.set_level
    for price, quantity in delta.asks:
        set_ask(price, quantity)
    book.applied_update_id = delta.final_update_id
    book.awaiting_first_delta = False
    book.deltas_applied += 1
