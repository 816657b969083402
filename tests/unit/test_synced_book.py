"""`SyncedBook` against Binance's documented sync procedure, with numbers a trader can check by hand.

Spot: snapshot lastUpdateId L; buffered deltas with u <= L are dropped; the first applied has U <= L+1 <= u;
then U == previous u + 1. Futures: drop u < L; the first applied has U <= L <= u; then pu == previous u.
"""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from domain.book import OutOfSyncCause, SyncedBook, SyncStatus
from domain.events import BookDelta, BookSnapshot, Envelope, input_event_id

pytestmark = pytest.mark.unit

VENUE, SYMBOL = "binance-spot", "BTCUSDT"
Levels = tuple[tuple[D, D], ...]


def env(seq: int) -> Envelope:
    return Envelope(event_id=input_event_id("s", "md", seq), session_id="s", sequence=seq,
                    event_time_ns=seq * 1000, ingest_time_ns=seq * 1000, source="test")  # fmt: skip


def lv(*pairs: tuple[str, str]) -> Levels:
    return tuple((D(p), D(q)) for p, q in pairs)


BIDS = lv(("100", "1"), ("99", "2"))
ASKS = lv(("101", "1"), ("102", "3"))


def snapshot(last: int, bids: Levels = BIDS, asks: Levels = ASKS) -> BookSnapshot:
    return BookSnapshot(
        envelope=env(last), venue=VENUE, instrument=SYMBOL, last_update_id=last, bids=bids, asks=asks
    )


def delta(first: int, final: int, bids: Levels = (), asks: Levels = (), pu: int | None = None) -> BookDelta:
    return BookDelta(envelope=env(final), venue=VENUE, instrument=SYMBOL, first_update_id=first,
                     final_update_id=final, previous_final_update_id=pu, bids=bids, asks=asks)  # fmt: skip


def top(book: SyncedBook) -> tuple[tuple[D, D] | None, tuple[D, D] | None]:
    return book.best_bid(), book.best_ask()


def test_spot_deltas_before_the_snapshot_are_buffered_and_bridged() -> None:
    book = SyncedBook(VENUE, SYMBOL)
    # Arrive before the REST snapshot (L = 105): 95..100 is older than it, 101..106 straddles L+1 = 106,
    # 107..108 follows it.
    assert book.apply(delta(95, 100, bids=lv(("100", "7")))).status is SyncStatus.BUFFERED
    assert (
        book.apply(delta(101, 106, bids=lv(("100", "1.5")), asks=lv(("101", "0")))).status
        is SyncStatus.BUFFERED
    )
    assert book.apply(delta(107, 108, asks=lv(("101.5", "0.4")))).status is SyncStatus.BUFFERED
    assert not book.in_sync and len(book.buffer) == 3
    outcome = book.apply(snapshot(105))
    assert outcome.status is SyncStatus.APPLIED and outcome.replayed == 2  # 95..100 dropped as stale
    assert book.in_sync and book.applied_update_id == 108 and not book.buffer
    # bid 100 became 1.5 (not 7: the stale delta was dropped); ask 101 removed; ask 101.5 x 0.4 added
    assert top(book) == ((D("100"), D("1.5")), (D("101.5"), D("0.4")))
    assert book.apply(delta(109, 109, bids=lv(("100.2", "0.1")))).status is SyncStatus.APPLIED
    assert book.best_bid() == (D("100.2"), D("0.1")) and book.applied_update_id == 109


def test_spot_stale_and_duplicate_deltas_are_dropped() -> None:
    book = SyncedBook(VENUE, SYMBOL)
    book.apply(snapshot(105))
    assert book.apply(delta(100, 105, bids=lv(("100", "9")))).status is SyncStatus.STALE  # u <= L
    assert book.apply(delta(106, 107, bids=lv(("100", "3")))).status is SyncStatus.APPLIED
    assert book.apply(delta(106, 107, bids=lv(("100", "8")))).status is SyncStatus.STALE  # re-delivered
    assert book.best_bid() == (D("100"), D("3")) and book.in_sync


def test_spot_first_delta_must_straddle_the_snapshot() -> None:
    book = SyncedBook(VENUE, SYMBOL)
    book.apply(snapshot(105))
    outcome = book.apply(delta(107, 110))  # 106 is missing
    assert outcome.status is SyncStatus.OUT_OF_SYNC and outcome.cause is OutOfSyncCause.GAP
    assert (outcome.expected_update_id, outcome.received_update_id) == (106, 107)
    assert "must span 106" in outcome.reason


def test_futures_pu_rule() -> None:
    book = SyncedBook("binance-usdm", SYMBOL)
    # Buffered before the snapshot (L = 1000). Futures ids are not contiguous: pu links the messages.
    book.apply(delta(980, 990, bids=lv(("100", "5")), pu=970))  # u < L: dropped
    book.apply(delta(995, 1000, bids=lv(("100", "4")), pu=990))  # U <= L <= u (u == L is applied, not stale)
    book.apply(delta(1003, 1010, asks=lv(("101", "2.5")), pu=1000))
    outcome = book.apply(snapshot(1000))
    assert outcome.status is SyncStatus.APPLIED and outcome.replayed == 2
    assert top(book) == ((D("100"), D("4")), (D("101"), D("2.5"))) and book.applied_update_id == 1010
    assert book.apply(delta(1020, 1030, bids=lv(("100", "6")), pu=1010)).status is SyncStatus.APPLIED
    assert book.best_bid() == (D("100"), D("6"))
    gap = book.apply(delta(1045, 1050, bids=lv(("100", "1")), pu=1040))  # the message 1031..1040 was lost
    assert gap.status is SyncStatus.OUT_OF_SYNC and gap.cause is OutOfSyncCause.GAP
    assert gap.reason == "futures gap: pu 1040 != previous final 1030"
    assert book.best_bid() == (D("100"), D("6")) and not book.in_sync  # last good levels kept, not used


def test_futures_first_delta_must_contain_the_snapshot_id() -> None:
    book = SyncedBook("binance-usdm", SYMBOL)
    book.apply(snapshot(1000))
    outcome = book.apply(delta(1001, 1010, pu=1000))  # U > L: the doc's first-event rule is not met
    assert outcome.status is SyncStatus.OUT_OF_SYNC and "must span 1000" in outcome.reason


def test_gap_then_recovery_at_the_next_snapshot_bridging_the_buffer() -> None:
    book = SyncedBook(VENUE, SYMBOL)
    book.apply(snapshot(105))
    book.apply(delta(106, 106, bids=lv(("100", "2"))))
    gap = book.apply(delta(110, 112, bids=lv(("100", "5"))))  # 107..109 missing
    assert gap.status is SyncStatus.OUT_OF_SYNC and gap.cause is OutOfSyncCause.GAP
    assert gap.reason == "spot gap: first_update_id 110 != previous final + 1 = 107"
    assert (gap.expected_update_id, gap.received_update_id) == (107, 110)
    assert book.best_bid() == (D("100"), D("2"))  # the gapped delta is not applied...
    assert book.apply(delta(113, 115, asks=lv(("101", "0.5")))).status is SyncStatus.BUFFERED  # ...but kept
    assert len(book.buffer) == 2
    # The next snapshot (L = 111, bid 100 x 4.5) is bridged by 110..112 then 113..115.
    outcome = book.apply(snapshot(111, bids=lv(("100", "4.5")), asks=lv(("101", "1"))))
    assert outcome.status is SyncStatus.APPLIED and outcome.replayed == 2 and book.in_sync
    assert top(book) == ((D("100"), D("5")), (D("101"), D("0.5"))) and book.applied_update_id == 115


def test_snapshot_older_than_the_buffer_waits_for_the_next_one() -> None:
    book = SyncedBook(VENUE, SYMBOL)
    book.apply(delta(120, 125, bids=lv(("100", "3"))))
    old = book.apply(snapshot(110))  # 111..119 are in neither the snapshot nor the buffer
    assert old.status is SyncStatus.OUT_OF_SYNC and old.cause is OutOfSyncCause.GAP
    assert "must span 111, got 120..125" in old.reason and "replaying deltas buffered" in old.reason
    assert not book.in_sync and len(book.buffer) == 1  # still buffered for the next snapshot
    assert book.apply(snapshot(122)).status is SyncStatus.APPLIED
    assert book.best_bid() == (D("100"), D("3")) and book.applied_update_id == 125


def test_crossing_delta_puts_the_book_out_of_sync() -> None:
    book = SyncedBook(VENUE, SYMBOL)
    book.apply(snapshot(105))
    crossed = book.apply(delta(106, 106, bids=lv(("101.5", "1"))))  # bid 101.5 above the best ask 101
    assert crossed.status is SyncStatus.OUT_OF_SYNC and crossed.cause is OutOfSyncCause.CROSSED
    assert crossed.reason == "delta would cross the book: best bid 101.5 >= best ask 101"
    assert top(book) == ((D("100"), D("1")), (D("101"), D("1"))) and not book.in_sync
    locked = SyncedBook(VENUE, SYMBOL)
    locked.apply(snapshot(105))
    assert locked.apply(delta(106, 106, asks=lv(("100", "1")))).cause is OutOfSyncCause.CROSSED  # ask at bid


def test_negative_size_and_non_positive_price_are_invalid() -> None:
    for bad in (delta(106, 106, bids=lv(("99", "-1"))), delta(106, 106, asks=lv(("0", "1")))):
        book = SyncedBook(VENUE, SYMBOL)
        book.apply(snapshot(105))
        outcome = book.apply(bad)
        assert outcome.status is SyncStatus.OUT_OF_SYNC and outcome.cause is OutOfSyncCause.INVALID
    crossed = SyncedBook(VENUE, SYMBOL).apply(snapshot(105, bids=lv(("101", "1")), asks=lv(("100", "1"))))
    assert crossed.cause is OutOfSyncCause.CROSSED and "crossed snapshot" in crossed.reason


def test_buffer_overflow_drops_the_oldest_and_the_bridge_check_catches_it() -> None:
    book = SyncedBook(VENUE, SYMBOL, max_buffered=2)
    for first in (101, 102, 103):
        book.apply(delta(first, first, bids=lv(("100", str(first - 100)))))
    assert book.buffer_overflows == 1 and [d.first_update_id for d in book.buffer] == [102, 103]
    assert book.apply(snapshot(100)).status is SyncStatus.OUT_OF_SYNC  # 101 was dropped: cannot bridge
    assert book.apply(snapshot(101)).status is SyncStatus.APPLIED  # a newer snapshot bridges 102, 103
    assert book.best_bid() == (D("100"), D("3"))


def test_in_sync_book_ignores_an_older_snapshot() -> None:
    book = SyncedBook(VENUE, SYMBOL)
    book.apply(snapshot(105))
    book.apply(delta(106, 108, bids=lv(("100", "2"))))
    assert book.apply(snapshot(107)).status is SyncStatus.STALE
    assert book.best_bid() == (D("100"), D("2")) and book.applied_update_id == 108


def test_check_predicts_apply_without_changing_the_book() -> None:
    book = SyncedBook(VENUE, SYMBOL)
    events = [delta(101, 106, bids=lv(("100", "2"))), snapshot(105), delta(107, 107), delta(109, 109),
              delta(110, 110), snapshot(108), delta(111, 111, asks=lv(("101", "2")))]  # fmt: skip
    seen = []
    for event in events:
        before = (book.applied_update_id, book.in_sync, len(book.buffer), dict(book.bids.levels))
        predicted = book.check(event)
        assert (book.applied_update_id, book.in_sync, len(book.buffer), dict(book.bids.levels)) == before
        assert book.apply(event) == predicted
        seen.append(predicted.status)
    buffered, applied, lost = SyncStatus.BUFFERED, SyncStatus.APPLIED, SyncStatus.OUT_OF_SYNC
    assert seen == [buffered, applied, applied, lost, buffered, applied, applied]


def test_on_applied_sees_the_book_at_every_applied_id() -> None:
    book = SyncedBook(VENUE, SYMBOL)
    seen: list[tuple[int, tuple[D, D] | None]] = []
    hook = lambda b, _e: seen.append((b.applied_update_id, b.best_bid()))  # noqa: E731
    book.apply(delta(104, 106, bids=lv(("100", "2"))), hook)
    book.apply(snapshot(105), hook)
    book.apply(delta(107, 107, bids=lv(("100", "0"))), hook)
    assert seen == [(105, (D("100"), D("1"))), (106, (D("100"), D("2"))), (107, (D("99"), D("2")))]
