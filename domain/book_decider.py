"""The book decider: one `BookResyncNeeded` per loss of sync of an L2 book (the rules: `domain.book`)."""

from __future__ import annotations

from domain.book import SyncStatus
from domain.events import BookDelta, BookResyncNeeded, BookSnapshot, EventBase, derive_envelope
from domain.market_view import MarketView
from domain.wake import BookNotClean, WakeSpec

_WAKE = WakeSpec((BookNotClean(),))


class BookDecider:
    """Emits one `BookResyncNeeded` per loss of sync of a (venue, instrument) book. The books themselves are
    the market view's (`domain.market_view`): the decider reads what applying the event did to its book."""

    consumes = (BookDelta, BookSnapshot)

    def __init__(self, name: str = "book") -> None:
        self.name = name

    def initial_state(self) -> None:
        return None

    def wake(self, state: None) -> WakeSpec:
        return _WAKE

    def decide(self, state: None, event: EventBase, view: MarketView) -> list[EventBase]:
        if not isinstance(event, BookDelta | BookSnapshot):
            return []
        outcome = view.book_outcome(event.venue, event.instrument)
        if outcome is None or outcome.status is not SyncStatus.OUT_OF_SYNC:
            return []
        return [
            BookResyncNeeded(
                envelope=derive_envelope(event.envelope, self.name, 0),
                venue=event.venue,
                instrument=event.instrument,
                expected_update_id=outcome.expected_update_id,
                received_first_update_id=outcome.received_update_id,
                reason=outcome.reason,
            )
        ]

    def evolve(self, state: None, event: EventBase, view: MarketView) -> None:
        return state
