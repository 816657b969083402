"""What deciders know of the market: last values per (venue, instrument), read from a view, never copied.

Deciders keep only what they decide on (orders, positions, limits). Market state (the last quote, the last
valid quote, the last trade, the L2 book) lives in one `MarketView`, passed to `decide`, so a run that skips
quiet market rows (the wake protocol, `domain.wake`) leaves no decider with stale market state.

When the view is updated. The kernel applies an input to the view after the venues have seen it and before
the input's own cascade (`application.engine.Kernel.feed`): every decider's `decide` and `evolve` of that input
and of everything derived from it read the view *including* the input. A `BookResyncNeeded` (recorded or
derived) puts the view's book of its key out of sync.

Contract (the reference below and the compiled core implement it identically; all per (venue, instrument)):
  * `quote`: the last `QuoteTick`, whatever its prices.
  * `priced_quote`: the last `QuoteTick` with bid > 0 and ask > 0 (risk's mid and top level).
  * `valid_quote`: the last `QuoteTick` with bid > 0 and ask >= bid (the portfolio's marks).
  * `prior_valid_quote`: the valid quote as it was before the last `QuoteTick` of the key was applied
    (the portfolio values a sample "as of just before" the event that triggers it).
  * `trade`: the last `TradeTick`.
  * `book`: the L2 book (`domain.book.SyncedBook`: levels, in sync, has snapshot, applied update id and
    time) built from every `BookSnapshot`/`BookDelta` under the sync rules, out of sync on `BookResyncNeeded`;
    None before the key's first `BookSnapshot`/`BookDelta`.
  * `book_outcome`: what applying the key's last book event did (`domain.book.SyncOutcome`: applied,
    buffered, stale, out of sync with the reason); the book decider reads it for the event it decides on.
  * `valid_quotes`: every key's valid quote, sorted by key (deterministic).
Times are the events' own `envelope.event_time_ns`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from domain.book import BookKey, SyncedBook, SyncOutcome
from domain.events import BookDelta, BookResyncNeeded, BookSnapshot, EventBase, QuoteTick, TradeTick


class MarketView(Protocol):
    """Read-only market state per (venue, instrument); see the module docstring for the exact contract."""

    def quote(self, venue: str, instrument: str) -> QuoteTick | None: ...

    def priced_quote(self, venue: str, instrument: str) -> QuoteTick | None: ...

    def valid_quote(self, venue: str, instrument: str) -> QuoteTick | None: ...

    def prior_valid_quote(self, venue: str, instrument: str) -> QuoteTick | None: ...

    def valid_quotes(self) -> Iterator[tuple[BookKey, QuoteTick]]: ...

    def trade(self, venue: str, instrument: str) -> TradeTick | None: ...

    def book(self, venue: str, instrument: str) -> SyncedBook | None: ...

    def book_outcome(self, venue: str, instrument: str) -> SyncOutcome | None: ...


def is_priced(quote: QuoteTick) -> bool:
    return quote.bid_price > 0 and quote.ask_price > 0


def is_valid(quote: QuoteTick) -> bool:
    """A quote a mark can be taken from: a positive bid and an ask not below it."""
    return quote.bid_price > 0 and quote.ask_price >= quote.bid_price


class _Slot:
    __slots__ = ("book", "outcome", "prior_valid", "priced", "quote", "trade", "valid")

    def __init__(self) -> None:
        self.quote: QuoteTick | None = None
        self.priced: QuoteTick | None = None
        self.valid: QuoteTick | None = None
        self.prior_valid: QuoteTick | None = None
        self.trade: TradeTick | None = None
        self.book: SyncedBook | None = None
        self.outcome: SyncOutcome | None = None


class ReferenceMarketView:
    """The view evolved in Python on every market event (`apply`): the reference the compiled core matches."""

    def __init__(self) -> None:
        self._slots: dict[BookKey, _Slot] = {}

    def _slot(self, key: BookKey) -> _Slot:
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = _Slot()
        return slot

    def apply(self, event: EventBase) -> None:
        """Fold one event into the view; events that are not market state are ignored."""
        if isinstance(event, QuoteTick):
            slot = self._slot((event.venue, event.instrument))
            slot.quote = event
            slot.prior_valid = slot.valid
            if event.bid_price > 0:
                if event.ask_price > 0:
                    slot.priced = event
                if event.ask_price >= event.bid_price:
                    slot.valid = event
        elif isinstance(event, BookDelta | BookSnapshot):
            slot = self._slot((event.venue, event.instrument))
            book = slot.book
            if book is None:
                book = slot.book = SyncedBook(event.venue, event.instrument)
            slot.outcome = book.apply(event)
        elif isinstance(event, TradeTick):
            self._slot((event.venue, event.instrument)).trade = event
        elif isinstance(event, BookResyncNeeded):
            # A book not built yet is out of sync anyway (a new SyncedBook waits for its snapshot).
            book = self.book(event.venue, event.instrument)
            if book is not None:
                book.mark_out_of_sync()

    def quote(self, venue: str, instrument: str) -> QuoteTick | None:
        slot = self._slots.get((venue, instrument))
        return None if slot is None else slot.quote

    def priced_quote(self, venue: str, instrument: str) -> QuoteTick | None:
        slot = self._slots.get((venue, instrument))
        return None if slot is None else slot.priced

    def valid_quote(self, venue: str, instrument: str) -> QuoteTick | None:
        slot = self._slots.get((venue, instrument))
        return None if slot is None else slot.valid

    def prior_valid_quote(self, venue: str, instrument: str) -> QuoteTick | None:
        slot = self._slots.get((venue, instrument))
        return None if slot is None else slot.prior_valid

    def valid_quotes(self) -> Iterator[tuple[BookKey, QuoteTick]]:
        for key in sorted(self._slots):
            valid = self._slots[key].valid
            if valid is not None:
                yield key, valid

    def trade(self, venue: str, instrument: str) -> TradeTick | None:
        slot = self._slots.get((venue, instrument))
        return None if slot is None else slot.trade

    def book(self, venue: str, instrument: str) -> SyncedBook | None:
        slot = self._slots.get((venue, instrument))
        return None if slot is None else slot.book

    def book_outcome(self, venue: str, instrument: str) -> SyncOutcome | None:
        slot = self._slots.get((venue, instrument))
        return None if slot is None else slot.outcome
