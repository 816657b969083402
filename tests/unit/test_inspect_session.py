"""`inspect_session` on a hand-built stream: tickers paired with the book by update id, not by arrival."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest

from adapters.sqlite_event_log import SqliteEventLog
from application.inspect_session import UnknownSession, inspect_session
from application.ports import LogRecord
from domain.events import (
    BookDelta,
    BookSnapshot,
    Envelope,
    EventBase,
    InstrumentDefined,
    QuoteTick,
    TradeTick,
    encode,
    input_event_id,
)
from domain.values import Side

pytestmark = pytest.mark.unit

VENUE, SYMBOL, STREAM = "binance-spot", "BTCUSDT", "md.binance-spot.BTCUSDT"
MS = 1_000_000


def env(seq: int) -> Envelope:
    return Envelope(event_id=input_event_id("t", STREAM, seq), session_id="t", sequence=seq,
                    event_time_ns=seq * MS, ingest_time_ns=seq * MS, source="test")  # fmt: skip


def quote(seq: int, u: int, bid_size: str, ask_size: str) -> QuoteTick:
    return QuoteTick(envelope=env(seq), venue=VENUE, instrument=SYMBOL, bid_price=D("100"), bid_size=D(bid_size),
                     ask_price=D("101"), ask_size=D(ask_size), venue_update_id=u)  # fmt: skip


def delta(
    seq: int, first: int, final: int, asks: tuple[tuple[str, str], ...] = (), bid: str = ""
) -> BookDelta:
    return BookDelta(envelope=env(seq), venue=VENUE, instrument=SYMBOL, first_update_id=first, final_update_id=final,
                     bids=((D("100"), D(bid)),) if bid else (), asks=tuple((D(p), D(q)) for p, q in asks),
                     exchange_time_ns=seq * MS - 1200 * MS)  # fmt: skip


def session(tmp_path: Path, events: list[EventBase]) -> SqliteEventLog:
    log = SqliteEventLog(tmp_path / "events.sqlite")
    log.append("t", [LogRecord(STREAM, SYMBOL, e.type, e.envelope.event_time_ns, encode(e)) for e in events])
    return log


def test_tickers_are_paired_with_the_book_by_update_id(tmp_path: Path) -> None:
    instrument = InstrumentDefined(envelope=env(1), venue=VENUE, instrument=SYMBOL, base="BTC", quote="USDT",
                                   settlement="USDT", kind="spot", contract_size=D(1), tick_size=D("0.01"),
                                   lot_size=D("0.00001"), min_notional=D(5), maker_fee_bps=D(10), taker_fee_bps=D(10))  # fmt: skip
    events: list[EventBase] = [
        instrument,  # not a book event: counted, otherwise ignored
        quote(2, 104, "1", "1"),  # older than the snapshot (105): never comparable
        delta(3, 101, 106, bid="2"),  # before the snapshot: buffered, bridges it
        quote(4, 106, "2", "1"),  # ahead of the book: waits for id 106
        quote(5, 105, "1", "1"),  # the snapshot's own id
        BookSnapshot(
            envelope=env(6),
            venue=VENUE,
            instrument=SYMBOL,
            last_update_id=105,
            bids=((D("100"), D("1")),),
            asks=((D("101"), D("1")),),
        ),  # fmt: skip
        quote(7, 108, "2", "0.5"),
        quote(8, 107, "2", "0.5"),  # inside the batch 107..108: the book never stands at 107
        delta(9, 107, 108, asks=(("101", "0.5"),)),
        quote(10, 106, "2", "1"),  # arrives after the book passed 106: compared with the top it had then
        quote(11, 109, "2", "0.7"),  # the book will show 0.6: a disagreement
        delta(12, 109, 109, asks=(("101", "0.6"),)),
        delta(13, 111, 111),  # 110 missing: gap
        TradeTick(
            envelope=env(14),
            venue=VENUE,
            instrument=SYMBOL,
            price=D("100"),
            size=D("0.1"),
            aggressor_side=Side.SELL,
            venue_trade_id="1",
            exchange_time_ns=14 * MS - 1300 * MS,
        ),  # fmt: skip
    ]
    with session(tmp_path, events) as log:
        report = inspect_session(log, "t")
    (stream,) = report.streams
    assert stream.first_time_ns == 1 * MS and stream.last_time_ns == 14 * MS
    assert stream.counts == {"market.instrument_defined": 1, "market.quote": 7, "market.book_delta": 4,
                             "market.book_snapshot": 1, "market.trade": 1}  # fmt: skip
    assert stream.rates()["market.quote"] == pytest.approx(7 / 0.013)
    (book,) = stream.books
    assert (book.snapshots, book.deltas, book.applied, book.buffered, book.gaps) == (1, 4, 3, 1, 1)
    assert not book.in_sync_at_end and "spot gap" in book.out_of_sync[0].reason
    t = book.tickers
    assert (t.tickers, t.compared, t.agreed, t.disagreed, t.not_comparable) == (7, 5, 4, 1, 2)
    d = t.first_disagreement
    assert d is not None and d.update_id == 109 and d.receive_time_ns == 11 * MS
    assert d.ticker == (D("100"), D("2"), D("101"), D("0.7")) and d.book == (
        D("100"),
        D("2"),
        D("101"),
        D("0.6"),
    )
    assert stream.latency["market.book_delta"].p50_ns == 1200 * MS
    assert stream.latency["market.trade"].max_ns == 1300 * MS
    assert any("differ by more than a second" in note for note in stream.notes)


def test_unknown_session(tmp_path: Path) -> None:
    with session(tmp_path, []) as log, pytest.raises(UnknownSession, match="no session 'nope'"):
        inspect_session(log, "nope")
