"""The recorder against the local exchange (loopback only): the events it records are the file importer's
events from the same raw messages; sequence gaps, dropped websockets, Bybit snapshot resets, HTTP 429 on the
snapshot end in an explicit resync and then a book equal to the exchange's own."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from adapters.exchanges.record_log import RecordRefused
from adapters.importers.binance_ws import import_binance_ws
from adapters.sqlite_event_log import SqliteEventLog
from domain.events import BookResyncNeeded, BookSnapshot, InstrumentDefined, QuoteTick, TradeTick
from domain.values import Side
from tests.local_exchange import LocalExchange, VenueServer
from tests.local_exchange.capture import COINM_CAPTURE, SPOT_CAPTURE, USDM_CAPTURE
from tests.recording import capture_head, events, payloads, record, replayed_book

LINES = 3_000


@pytest.mark.parametrize(("venue", "capture", "stream", "symbol"), [
    ("binance", SPOT_CAPTURE, "md.binance-spot.BTCUSDT", "BTC/USDT"),
    ("binanceusdm", USDM_CAPTURE, "md.binance-usdm.BTCUSDT", "BTC/USDT"),
    ("binancecoinm", COINM_CAPTURE, "md.binance-coinm.BTCUSD_PERP", "BTC/USD"),
])  # fmt: skip
def test_recorded_events_are_the_importers_events_of_the_same_messages(tmp_path: Path, venue: str, capture: Path,
                                                                       stream: str, symbol: str) -> None:  # fmt: skip
    served = capture_head(capture, LINES, tmp_path / capture.parent.name / capture.name)
    log = SqliteEventLog(":memory:")
    with LocalExchange(venues=[venue], captures={venue: served}) as exchange:
        summary, _ = record(exchange, [venue], log, "rec", symbols=[symbol])
    import_binance_ws(log, "imp", [served], code_version=lambda: "test", echo=None)
    recorded, imported = events(log, "rec", stream), events(log, "imp", stream)

    def split(evs: list) -> tuple[list, list]:  # the REST snapshot's place depends on when it was asked for
        return (
            [e for e in evs if isinstance(e, BookSnapshot)],
            [e for e in evs if not isinstance(e, BookSnapshot)],
        )

    (rec_snapshots, rec_rest), (imp_snapshots, imp_rest) = split(recorded), split(imported)
    assert len(imp_rest) == LINES - 1 + 1  # every line but the snapshot, and the InstrumentDefined
    assert payloads(rec_rest) == payloads(imp_rest)
    assert payloads(rec_snapshots) == payloads(imp_snapshots) and len(rec_snapshots) == 1
    # the InstrumentDefined from the exchange's metadata (ccxt) is the one our specification file gives
    assert isinstance(recorded[0], InstrumentDefined) and payloads(recorded[:1]) == payloads(imported[:1])
    assert summary.gaps == {venue: 0} and summary.reconnects == {venue: 0}
    # Binance's `m` (buyer is maker) means the taker sold: the aggressor of such a trade is SELL
    trades = [e for e in recorded if isinstance(e, TradeTick)]
    assert {e.aggressor_side for e in trades} == {Side.BUY, Side.SELL}


def _truth(exchange: LocalExchange, venue: str, depth: int) -> tuple[list, list]:
    """The exchange's own top `depth` levels as decimals."""
    playback = exchange.venue(venue).feed
    book = getattr(playback.feed, "book", None) or playback.feed.market.book
    bids, asks = exchange.venue(venue).call(lambda: book.top(depth))
    return ([(Decimal(p), Decimal(q)) for p, q in bids], [(Decimal(p), Decimal(q)) for p, q in asks])


def _top(book, depth: int) -> tuple[list, list]:  # type: ignore[no-untyped-def]
    return book.bids.top(depth), book.asks.top(depth)


INSTRUMENT = {"binance": "BTCUSDT", "binanceusdm": "BTCUSDT", "bybit": "BTCUSDT", "kraken": "XBTUSDT",
              "coinbase": "BTC-USDT"}  # fmt: skip
VENUE = {"binance": "binance-spot", "binanceusdm": "binance-usdm", "bybit": "bybit-spot", "kraken": "kraken-spot",
         "coinbase": "coinbase-spot"}  # fmt: skip
DEPTH = {"binance": 20, "binanceusdm": 20, "bybit": 50, "kraken": 10, "coinbase": 20}


def _check_resynced_book(exchange: LocalExchange, log: SqliteEventLog, venue: str, recorders: list) -> list:
    stream = f"md.{VENUE[venue]}.{INSTRUMENT[venue]}"
    recorded = events(log, "rec", stream)
    resyncs = [i for i, e in enumerate(recorded) if isinstance(e, BookResyncNeeded)]
    assert resyncs, "no resync recorded"
    assert any(isinstance(e, BookSnapshot) for e in recorded[resyncs[-1] :]), "no snapshot after the resync"
    truth = _truth(exchange, venue, DEPTH[venue])
    book = recorders[0].books[INSTRUMENT[venue]]
    assert book.in_sync and _top(book, DEPTH[venue]) == truth
    replayed = replayed_book(recorded, VENUE[venue], INSTRUMENT[venue])
    assert replayed.in_sync and _top(replayed, DEPTH[venue]) == truth
    return [recorded[i] for i in resyncs]


@pytest.mark.parametrize("venue", ["binance", "binanceusdm", "bybit", "kraken", "coinbase"])
def test_a_sequence_gap_is_a_resync_then_a_correct_book(venue: str) -> None:
    log = SqliteEventLog(":memory:")
    with LocalExchange(venues=[venue], message_limit=LINES) as exchange:
        exchange.venue(venue).faults.skip_depth(after=40)
        summary, recorders = record(exchange, [venue], log, "rec")
        resyncs = _check_resynced_book(exchange, log, venue, recorders)
    assert summary.gaps[venue] >= 1 and summary.reconnects[venue] == 0  # a resync is not a reconnect
    assert "gap" in resyncs[0].reason or "checksum" in resyncs[0].reason
    labels = {"venue": VENUE[venue], "instrument": INSTRUMENT[venue]}
    assert (REGISTRY.get_sample_value("cse_recorder_sequence_gaps_total", labels) or 0) >= summary.gaps[venue]


def test_out_of_order_depth_updates_are_a_gap() -> None:
    log = SqliteEventLog(":memory:")
    with LocalExchange(venues=["binanceusdm"], message_limit=LINES) as exchange:
        exchange.venue("binanceusdm").faults.swap_depth(after=30)
        summary, recorders = record(exchange, ["binanceusdm"], log, "rec")
        resyncs = _check_resynced_book(exchange, log, "binanceusdm", recorders)
    assert "pu" in resyncs[0].reason and summary.gaps["binanceusdm"] >= 1


@pytest.mark.parametrize("venue", ["binance", "bybit", "kraken", "coinbase"])
def test_reconnects_after_a_dropped_websocket(venue: str) -> None:
    log = SqliteEventLog(":memory:")
    reconnects_before = (
        REGISTRY.get_sample_value("cse_recorder_reconnects_total", {"venue": VENUE[venue]}) or 0
    )
    with LocalExchange(venues=[venue], message_limit=LINES) as exchange:
        exchange.venue(venue).faults.drop_ws(after=300)
        summary, recorders = record(exchange, [venue], log, "rec")
        resyncs = _check_resynced_book(exchange, log, venue, recorders)
        assert exchange.venue(venue).faults.drops == 1
    assert summary.reconnects[venue] == 1
    reconnects = REGISTRY.get_sample_value("cse_recorder_reconnects_total", {"venue": VENUE[venue]})
    assert reconnects == reconnects_before + 1
    assert resyncs[0].reason.startswith("disconnected")
    # nothing twice: trade ids are unique, and quotes/trades went on after the reconnect
    trades = [e.venue_trade_id for e in events(log, "rec", f"md.{VENUE[venue]}.{INSTRUMENT[venue]}")
              if isinstance(e, TradeTick)]  # fmt: skip
    assert len(trades) == len(set(trades)) > 0


def test_bybit_snapshot_reset_u1_is_a_resync() -> None:
    log = SqliteEventLog(":memory:")
    with LocalExchange(venues=["bybit"], message_limit=LINES) as exchange:
        exchange.venue("bybit").state["bybit_feed"].reset_pending = True
        _, recorders = record(exchange, ["bybit"], log, "rec")
        resyncs = _check_resynced_book(exchange, log, "bybit", recorders)
    assert "u=1" in resyncs[0].reason
    snapshots = [e for e in events(log, "rec", "md.bybit-spot.BTCUSDT") if isinstance(e, BookSnapshot)]
    assert [s.last_update_id for s in snapshots][-1] == 1


def test_rate_limited_and_failing_snapshot_requests_are_retried() -> None:
    log = SqliteEventLog(":memory:")
    with LocalExchange(venues=["binance"], message_limit=LINES) as exchange:
        faults = exchange.venue("binance").faults
        faults.http_status("/api/v3/depth", 429, retry_after_s=1)
        faults.http_status("/api/v3/depth", 503)
        faults.http_delay("/api/v3/depth", 5.0)  # beyond the client's 3 s timeout
        _, recorders = record(exchange, ["binance"], log, "rec")
        depth_requests = [r for r in exchange.venue("binance").requests if r[1] == "/api/v3/depth"]
        truth = _truth(exchange, "binance", 20)
    assert len(depth_requests) == 4
    book = recorders[0].books["BTCUSDT"]
    assert book.in_sync and _top(book, 20) == truth


def test_every_venue_records_quotes_trades_and_books() -> None:
    log = SqliteEventLog(":memory:")
    venues = ["binance", "binanceusdm", "bybit", "kraken", "coinbase"]
    with LocalExchange(venues=venues, message_limit=LINES) as exchange:
        summary, recorders = record(exchange, venues, log, "rec")
        for venue, recorder in zip(venues, recorders, strict=True):
            book = recorder.books[INSTRUMENT[venue]]
            assert book.in_sync and _top(book, DEPTH[venue]) == _truth(exchange, venue, DEPTH[venue]), venue
    assert summary.gaps == dict.fromkeys(venues, 0)
    for venue in venues:
        kinds = Counter(
            type(e).__name__ for e in events(log, "rec", f"md.{VENUE[venue]}.{INSTRUMENT[venue]}")
        )
        assert kinds["InstrumentDefined"] == 1 and kinds["BookSnapshot"] == 1, (venue, kinds)
        assert kinds["BookDelta"] > 100 and kinds["TradeTick"] > 100 and kinds["QuoteTick"] > 100, (
            venue,
            kinds,
        )
    quotes = [e for e in events(log, "rec", "md.kraken-spot.XBTUSDT") if isinstance(e, QuoteTick)]
    assert all(q.bid_price < q.ask_price for q in quotes)

    # one aggressor meaning: the same trades of the spot capture, as Binance (`m`, buyer is maker), Bybit (the
    # taker's side) and Coinbase (the maker's side) report them, have the same aggressor side
    def aggressors(stream: str) -> dict[str, Side]:
        return {
            e.venue_trade_id: e.aggressor_side for e in events(log, "rec", stream) if isinstance(e, TradeTick)
        }

    binance = aggressors("md.binance-spot.BTCUSDT")
    assert set(binance.values()) == {Side.BUY, Side.SELL}
    for stream in ("md.bybit-spot.BTCUSDT", "md.coinbase-spot.BTC-USDT"):
        other = aggressors(stream)
        assert len(other) > 100 and other == {trade: binance[trade] for trade in other}, stream


def test_recording_again_continues_the_session_and_resyncs_its_books() -> None:
    log = SqliteEventLog(":memory:")
    for _ in range(2):
        with LocalExchange(venues=["kraken"], message_limit=600) as exchange:
            _, recorders = record(exchange, ["kraken"], log, "rec")
    recorded = events(log, "rec", "md.kraken-spot.XBTUSDT")
    assert [type(e).__name__ for e in recorded].count("InstrumentDefined") == 1
    assert [e.envelope.sequence for e in recorded] == list(range(len(recorded)))
    resumed = [e for e in recorded if isinstance(e, BookResyncNeeded)]
    assert [e.reason for e in resumed] == ["recording resumed"]
    # the second recording's ids start again at 1: the replayed book takes its snapshot after the resync
    replayed = replayed_book(recorded, "kraken-spot", "XBTUSDT")
    assert replayed.in_sync and _top(replayed, 10) == _top(recorders[0].books["XBTUSDT"], 10)


def test_recording_into_a_session_of_another_kind_is_refused(tmp_path: Path) -> None:
    log = SqliteEventLog(":memory:")
    served = capture_head(SPOT_CAPTURE, 200, tmp_path / "spot" / SPOT_CAPTURE.name)
    import_binance_ws(log, "imported", [served], code_version=lambda: "test", echo=None)
    before = log.end_offset("imported", "md.binance-spot.BTCUSDT")
    with (
        LocalExchange(venues=["binance"], message_limit=200) as exchange,
        pytest.raises(RecordRefused, match="import session"),
    ):
        record(exchange, ["binance"], log, "imported")
    assert log.end_offset("imported", "md.binance-spot.BTCUSDT") == before


def test_a_malformed_message_is_refused_not_fatal() -> None:
    log = SqliteEventLog(":memory:")
    with LocalExchange(venues=["bybit"], message_limit=LINES) as exchange:

        def corrupt(venue: VenueServer) -> None:  # one trade message without its data, one delta without `u`
            feed = venue.state["bybit_feed"]
            play = feed.play
            state = {"trades": 0, "deltas": 0}

            def play_corrupted(index: int) -> list:
                out = play(index)
                for n, message in enumerate(out):
                    kind = (
                        "trades"
                        if message.topic.startswith("publicTrade")
                        else "deltas"
                        if '"delta"' in message.text
                        else ""
                    )
                    if kind and state[kind] == 0:
                        state[kind] = 1
                        text = (
                            message.text.replace('"data":[', '"data":null,"x":[')
                            if kind == "trades"
                            else message.text.replace('"u":', '"v":')
                        )
                        out[n] = type(message)(message.topic, text, message.depth)
                return out

            feed.play = play_corrupted

        exchange.venue("bybit").call(lambda: corrupt(exchange.venue("bybit")))
        summary, recorders = record(exchange, ["bybit"], log, "rec")
        resyncs = _check_resynced_book(exchange, log, "bybit", recorders)
    assert recorders[0].refused == 1 and summary.gaps["bybit"] >= 1  # the delta's loss shows as a gap
    assert "gap" in resyncs[0].reason
