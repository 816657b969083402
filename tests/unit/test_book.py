from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.book import SyncedBook, best_ask, best_bid, depth, is_crossed, mid
from domain.book_decider import BookDecider
from domain.events import BookDelta, BookResyncNeeded, BookSnapshot, Envelope, EventBase, input_event_id
from domain.market_view import ReferenceMarketView

pytestmark = pytest.mark.unit

VENUE, SYMBOL = "binance-spot", "BTCUSDT"


def env(seq: int) -> Envelope:
    return Envelope(
        event_id=input_event_id("s", "md", seq),
        session_id="s",
        sequence=seq,
        event_time_ns=seq * 1000,
        ingest_time_ns=seq * 1000,
        source="test",
    )


def lv(*pairs: tuple[str, str]) -> tuple[tuple[D, D], ...]:
    return tuple((D(p), D(q)) for p, q in pairs)


def snapshot(seq: int, last: int, bids: tuple[tuple[D, D], ...], asks: tuple[tuple[D, D], ...]) -> BookSnapshot:
    return BookSnapshot(envelope=env(seq), venue=VENUE, instrument=SYMBOL, last_update_id=last, bids=bids, asks=asks)


def delta(seq: int, first: int, final: int, bids=(), asks=(), pu: int | None = None) -> BookDelta:  # type: ignore[no-untyped-def]
    return BookDelta(
        envelope=env(seq), venue=VENUE, instrument=SYMBOL, first_update_id=first, final_update_id=final,
        previous_final_update_id=pu, bids=bids, asks=asks,
    )  # fmt: skip


def run(decider: BookDecider, state: ReferenceMarketView, event: EventBase) -> list[EventBase]:
    """As the kernel runs it: the view takes the event first, then the decider reads what it did."""
    state.apply(event)
    derived = decider.decide(None, event, state)
    for d in derived:
        state.apply(d)
    return derived


def the_book(state: ReferenceMarketView) -> SyncedBook:
    book = state.book(VENUE, SYMBOL)
    assert book is not None
    return book


def base_snapshot(seq: int = 1, last: int = 100) -> BookSnapshot:
    return snapshot(seq, last, lv(("100.0", "1"), ("99.5", "2")), lv(("100.5", "1.5"), ("101", "3")))


def test_snapshot_then_delta_by_hand() -> None:
    decider, state = BookDecider(), ReferenceMarketView()
    assert run(decider, state, base_snapshot()) == []
    # removes bid 100.0, adds bid 99.8 x 0.7, sets ask 100.5 to 2.5
    d = delta(2, 101, 103, bids=lv(("100.0", "0"), ("99.8", "0.7")), asks=lv(("100.5", "2.5")))
    assert run(decider, state, d) == []
    book = the_book(state)
    assert best_bid(book) == (D("99.8"), D("0.7"))
    assert best_ask(book) == (D("100.5"), D("2.5"))
    assert mid(book) == D("100.15")
    assert depth(book, 2) == ([(D("99.8"), D("0.7")), (D("99.5"), D("2"))], [(D("100.5"), D("2.5")), (D("101"), D("3"))])
    assert book.applied_update_id == 103


def test_stale_deltas_are_dropped_and_first_delta_may_straddle() -> None:
    decider, state = BookDecider(), ReferenceMarketView()
    run(decider, state, base_snapshot())
    assert run(decider, state, delta(2, 90, 100, bids=lv(("99", "5")))) == []  # final <= L: stale
    assert best_bid(the_book(state)) == (D("100.0"), D("1"))
    assert D("99") not in the_book(state).bids.levels
    assert run(decider, state, delta(3, 95, 105, bids=lv(("100.0", "4")))) == []  # 95 <= 101 <= 105
    assert best_bid(the_book(state)) == (D("100.0"), D("4"))
    assert run(decider, state, delta(4, 104, 105, bids=lv(("100.0", "9")))) == []  # duplicate: stale
    assert best_bid(the_book(state)) == (D("100.0"), D("4"))


def test_spot_gap_reports_once_then_ignores_until_snapshot() -> None:
    decider, state = BookDecider(), ReferenceMarketView()
    run(decider, state, base_snapshot())
    run(decider, state, delta(2, 101, 103))
    out = run(decider, state, delta(3, 105, 107, bids=lv(("99.9", "1"))))
    assert len(out) == 1 and isinstance(out[0], BookResyncNeeded)
    assert (out[0].expected_update_id, out[0].received_first_update_id) == (104, 105)
    assert "spot gap" in out[0].reason
    assert out[0].envelope.causation_id == env(3).event_id
    assert not the_book(state).in_sync
    assert D("99.9") not in the_book(state).bids.levels
    assert run(decider, state, delta(4, 108, 110, bids=lv(("99.9", "1")))) == []  # ignored, not re-reported
    assert D("99.9") not in the_book(state).bids.levels
    run(decider, state, base_snapshot(5, 200))
    assert the_book(state).in_sync
    assert run(decider, state, delta(6, 201, 202, bids=lv(("99.9", "1")))) == []
    assert the_book(state).bids.levels[D("99.9")] == D("1")


def test_gap_right_after_snapshot() -> None:
    decider, state = BookDecider(), ReferenceMarketView()
    run(decider, state, base_snapshot())
    out = run(decider, state, delta(2, 102, 104))
    assert [type(e) for e in out] == [BookResyncNeeded]
    assert out[0].expected_update_id == 101  # type: ignore[attr-defined]


def test_futures_sequencing_uses_pu() -> None:
    decider, state = BookDecider(), ReferenceMarketView()
    run(decider, state, base_snapshot())
    assert run(decider, state, delta(2, 98, 104, pu=97, bids=lv(("99.9", "1")))) == []  # first: 98 <= 101 <= 104
    assert run(decider, state, delta(3, 107, 110, pu=104, bids=lv(("99.9", "2")))) == []  # ids need not be contiguous
    assert the_book(state).bids.levels[D("99.9")] == D("2")
    out = run(decider, state, delta(4, 115, 120, pu=112))
    assert len(out) == 1 and "futures gap: pu 112 != previous final 110" in out[0].reason  # type: ignore[attr-defined]
    assert run(decider, state, delta(5, 121, 125, pu=120)) == []
    assert not the_book(state).in_sync


def test_crossing_delta_is_refused_and_book_untouched() -> None:
    decider, state = BookDecider(), ReferenceMarketView()
    run(decider, state, base_snapshot())
    out = run(decider, state, delta(2, 101, 101, bids=lv(("100.5", "1"))))  # bid at the best ask: locked
    assert len(out) == 1 and "cross" in out[0].reason  # type: ignore[attr-defined]
    book = the_book(state)
    assert best_bid(book) == (D("100.0"), D("1")) and not is_crossed(book) and not book.in_sync


def test_delta_that_removes_the_best_ask_and_adds_a_bid_below_the_next_is_fine() -> None:
    decider, state = BookDecider(), ReferenceMarketView()
    run(decider, state, base_snapshot())
    assert run(decider, state, delta(2, 101, 101, bids=lv(("100.7", "1")), asks=lv(("100.5", "0")))) == []
    book = the_book(state)
    assert best_bid(book) == (D("100.7"), D("1")) and best_ask(book) == (D("101"), D("3"))


def test_delta_before_any_snapshot_is_buffered_and_crossed_snapshot_reported() -> None:
    decider, state = BookDecider(), ReferenceMarketView()
    assert run(decider, state, delta(1, 1, 2)) == []  # buffered until the snapshot, not an error
    assert run(decider, state, delta(2, 3, 4)) == []
    assert len(the_book(state).buffer) == 2 and not the_book(state).in_sync
    bad = snapshot(3, 10, lv(("101", "1")), lv(("100", "1")))
    out = run(decider, state, bad)
    assert len(out) == 1 and "crossed snapshot" in out[0].reason  # type: ignore[attr-defined]
    assert not the_book(state).in_sync


_level = st.tuples(st.integers(90, 110), st.integers(0, 4))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.lists(_level, max_size=4), st.lists(_level, max_size=4)), max_size=40))
def test_book_never_crossed_and_matches_a_naive_model(updates: list[tuple[list[tuple[int, int]], list[tuple[int, int]]]]) -> None:
    decider, state = BookDecider(), ReferenceMarketView()
    run(decider, state, snapshot(0, 10, lv(("99", "1")), lv(("101", "1"))))
    model_bids, model_asks = {D(99): D(1)}, {D(101): D(1)}
    next_id = 11
    for seq, (bid_updates, ask_updates) in enumerate(updates, start=1):
        bids = tuple((D(p), D(q)) for p, q in bid_updates)
        asks = tuple((D(p), D(q)) for p, q in ask_updates)
        out = run(decider, state, delta(seq, next_id, next_id, bids=bids, asks=asks))
        next_id += 1
        book = the_book(state)
        assert not is_crossed(book)
        assert book.bids.prices == sorted(book.bids.levels) and book.asks.prices == sorted(book.asks.levels)
        if out:  # refused (would cross): resnapshot from the model, which is untouched
            assert "cross" in out[0].reason  # type: ignore[attr-defined]
            run(decider, state, snapshot(seq, next_id - 1, tuple(model_bids.items()), tuple(model_asks.items())))
            continue
        for price, qty in bids:
            model_bids.pop(price, None) if qty == 0 else model_bids.__setitem__(price, qty)
        for price, qty in asks:
            model_asks.pop(price, None) if qty == 0 else model_asks.__setitem__(price, qty)
        assert book.bids.levels == model_bids and book.asks.levels == model_asks


def test_decider_buffers_deltas_that_arrive_before_the_snapshot() -> None:
    # The capture's order: depth messages first, then the REST snapshot (L = 105) they bridge.
    decider, state = BookDecider(), ReferenceMarketView()
    assert run(decider, state, delta(1, 95, 100, bids=lv(("100.0", "9")))) == []  # stale once the snapshot is in
    assert run(decider, state, delta(2, 101, 106, bids=lv(("100.0", "4")))) == []  # straddles L + 1 = 106
    assert run(decider, state, base_snapshot(3, 105)) == []
    book = the_book(state)
    assert book.in_sync and book.applied_update_id == 106
    assert best_bid(book) == (D("100.0"), D("4"))
    assert run(decider, state, delta(4, 107, 107, bids=lv(("100.0", "5")))) == []
    assert best_bid(book) == (D("100.0"), D("5"))
