"""Proof of a reconstructed book against the exchange's own top of book (Binance bookTicker).

A bookTicker carries `u`, the order-book update id its best bid and ask belong to. Whenever the book has
applied exactly that id (a snapshot's lastUpdateId or a delta's final id), its best bid and ask, prices and
sizes, must equal the ticker's. A ticker usually arrives before the batched depth message that ends at its
id, so tickers are paired by id, never by arrival: a ticker ahead of the book waits (in a heap by id) until
the book reaches its id; one behind is looked up in the tops the book had at its recent applied ids. A
ticker whose id the book never lands on (an id inside a depth batch, or passed while out of sync) is not
comparable and counted as such.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass
from decimal import Decimal

from domain.book import SyncedBook
from domain.events import BookDelta, BookSnapshot, QuoteTick

Top = tuple[Decimal | None, Decimal | None, Decimal | None, Decimal | None]
"""(bid price, bid size, ask price, ask size); None for an empty side."""

HISTORY = 65_536
"""Applied ids whose top is remembered for tickers that arrive after the depth message (a few seconds)."""


@dataclass
class Disagreement:
    update_id: int
    receive_time_ns: int
    ticker: Top
    book: Top


@dataclass
class Agreement:
    tickers: int = 0
    compared: int = 0
    agreed: int = 0
    disagreed: int = 0
    not_comparable: int = 0
    """Tickers whose update id the book never applied exactly (inside a depth batch, or while out of sync)."""
    first_disagreement: Disagreement | None = None


class TickerAgreement:
    """Pairs one book's tickers with its applied update ids; the counts are in `result`."""

    def __init__(self) -> None:
        self.result = Agreement()
        self._pending: list[tuple[int, int, QuoteTick]] = []
        self._tops: dict[int, Top] = {}
        self._top_ids: deque[int] = deque()
        self._arrivals = 0

    def on_ticker(self, quote: QuoteTick) -> None:
        """A bookTicker arrived; compared now if the book already passed its id, else when it gets there."""
        update_id = quote.venue_update_id
        if update_id is None:
            return  # not a sequenced ticker: nothing to pair it with
        self.result.tickers += 1
        top = self._tops.get(update_id)
        if top is not None:
            self._compare(quote, top)
        elif self._top_ids and update_id <= self._top_ids[-1]:
            self.result.not_comparable += 1
        else:
            self._arrivals += 1
            heapq.heappush(self._pending, (update_id, self._arrivals, quote))

    def on_applied(self, book: SyncedBook, _event: BookSnapshot | BookDelta) -> None:
        """The `SyncedBook.apply` hook: the book is now exactly as of `book.applied_update_id`."""
        update_id = book.applied_update_id
        top = _top(book)
        self._tops[update_id] = top
        self._top_ids.append(update_id)
        if len(self._top_ids) > HISTORY:
            self._tops.pop(self._top_ids.popleft(), None)
        pending = self._pending
        while pending and pending[0][0] <= update_id:
            ticker_id, _, quote = heapq.heappop(pending)
            if ticker_id == update_id:
                self._compare(quote, top)
            else:
                self.result.not_comparable += 1

    def finish(self) -> None:
        """End of the stream: tickers still waiting were never reached by the book."""
        self.result.not_comparable += len(self._pending)
        self._pending.clear()

    def _compare(self, quote: QuoteTick, top: Top) -> None:
        result = self.result
        result.compared += 1
        ticker: Top = (quote.bid_price, quote.bid_size, quote.ask_price, quote.ask_size)
        if ticker == top:
            result.agreed += 1
            return
        result.disagreed += 1
        if result.first_disagreement is None:
            update_id = quote.venue_update_id or 0
            result.first_disagreement = Disagreement(update_id, quote.envelope.event_time_ns, ticker, top)


def _top(book: SyncedBook) -> Top:
    bid, ask = book.best_bid(), book.best_ask()
    return (
        None if bid is None else bid[0],
        None if bid is None else bid[1],
        None if ask is None else ask[0],
        None if ask is None else ask[1],
    )
