"""Backtest the shipped demo sample, then check every taker fill against Binance's own bookTicker, reading the
backtest session back from the log: no venue code is used for the check.

For each taker fill: its order's arrival at the venue = the PlaceOrder's (local) time + the order latency of
the run's recorded configuration; the exchange's top of book then = the last bookTicker of that venue and
instrument received before the arrival (one at the very same nanosecond comes after it, as in the venue).
A buy must not fill below that ticker's ask, a sell not above its bid.
"""

from __future__ import annotations

import json
import os
from bisect import bisect_left
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from adapters.entrypoints.commands import SAMPLES, load_run_config, simulated_venues
from adapters.importers.binance_ws import import_binance_ws
from adapters.simulated_venue import SimulatedVenue, SimulatedVenueConfig
from adapters.sqlite_event_log import SqliteEventLog
from application.backtest import run_backtest
from application.engine import Kernel
from application.session_run import DERIVED_STREAM, SESSION_STREAM, RunParameters, market_data_streams
from domain.events import (
    BookDelta,
    BookSnapshot,
    CancelOrder,
    EventBase,
    OrderFillEvent,
    PlaceOrder,
    QuoteTick,
    RiskCheckPassed,
    SessionStarted,
    TradeTick,
    decode,
    derive_envelope,
)
from domain.market_view import MarketView
from domain.values import Liquidity, OrderType, Side

pytestmark = pytest.mark.e2e

CAPTURES = [
    SAMPLES / "hftbacktest" / "spot" / "btcusdt_20240808.gz",
    SAMPLES / "hftbacktest" / "usdm" / "btcusdt_20240808.gz",
]


def read(log: SqliteEventLog, session: str, stream: str) -> list[EventBase]:
    return [decode(stored.record.payload) for stored in log.read(session, stream)]


def test_no_taker_fill_is_better_than_the_recorded_ticker_at_arrival(tmp_path: Path) -> None:
    with SqliteEventLog(tmp_path / "events.db") as log:
        import_binance_ws(log, "demo", CAPTURES, code_version=lambda: "test", echo=None)
        parameters = RunParameters(
            "demo", market_data_streams(log, "demo"), load_run_config(SAMPLES / "spread-demo.toml")
        )
        result = run_backtest(log, parameters, "demo.bt", simulated_venues, "test")

        started = next(e for e in read(log, "demo.bt", SESSION_STREAM) if isinstance(e, SessionStarted))
        latency = json.loads(started.parameters)["config"]["order_latency_ns"]
        derived = read(log, "demo.bt", DERIVED_STREAM)
        sent = {e.order_id: e for e in derived if isinstance(e, PlaceOrder)}
        takers = [e for e in derived if isinstance(e, OrderFillEvent) and e.liquidity is Liquidity.TAKER]
        tickers: dict[str, list[QuoteTick]] = {}
        for stream in log.streams("demo.bt"):
            if stream.startswith("md."):
                tickers[stream] = [e for e in read(log, "demo.bt", stream) if isinstance(e, QuoteTick)]

    assert len(takers) >= 10, result.summary  # the demo trades: the check below is not vacuous
    checked = 0
    for fill in takers:
        arrival = sent[fill.order_id].envelope.event_time_ns + latency
        assert fill.exchange_time_ns == arrival
        before = [
            q for q in tickers[f"md.{fill.venue}.{fill.instrument}"] if q.envelope.event_time_ns < arrival
        ]
        top = before[-1]
        if fill.side is Side.BUY:
            assert fill.price >= top.ask_price, (fill, top)
        else:
            assert fill.price <= top.bid_price, (fill, top)
        checked += 1
    assert checked == len(takers)


# ---- every shared Binance capture, probed with taker and post-only orders ----------------------------------------

DATA = Path(os.environ.get("CSE_SHARED_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "data"))
PROBE_EVERY_NS = 2_000_000_000
PROBES = {"spot": ("binance-spot", "0.001"), "usdm": ("binance-usdm", "0.002"), "cm": ("binance-coinm", "1")}
"""Venue folder -> (venue, quantity of each probe order: above the venue's minimum notional, one lot on COIN-M)."""


class Prober:
    """Every 2 s of event time, at a ticker: a market buy, a market sell, and a post-only bid and ask at the
    ticker's prices (the previous pair canceled), all passed straight to execution."""

    name = "prober"
    consumes = (QuoteTick,)

    def __init__(self, quantity: Decimal) -> None:
        self.quantity = quantity

    def initial_state(self) -> dict[str, Any]:
        return {"last": -PROBE_EVERY_NS, "resting": []}

    def decide(self, state: dict[str, Any], event: EventBase, view: MarketView) -> list[EventBase]:
        if not isinstance(event, QuoteTick) or event.envelope.event_time_ns - state["last"] < PROBE_EVERY_NS:
            return []
        out: list[EventBase] = [CancelOrder(envelope=derive_envelope(event.envelope, self.name, i), order_id=order_id,
                                            venue=event.venue) for i, order_id in enumerate(state["resting"])]  # fmt: skip
        probes = [(Side.BUY, OrderType.MARKET, None), (Side.SELL, OrderType.MARKET, None),
                  (Side.BUY, OrderType.LIMIT, event.bid_price), (Side.SELL, OrderType.LIMIT, event.ask_price)]  # fmt: skip
        for i, (side, kind, price) in enumerate(probes):
            envelope = derive_envelope(event.envelope, self.name, 10 + 2 * i)
            order = PlaceOrder(envelope=envelope, order_id=envelope.event_id, account="probe", strategy_id="probe",
                               venue=event.venue, instrument=event.instrument, side=side, order_type=kind,
                               quantity=self.quantity, limit_price=price, post_only=price is not None)  # fmt: skip
            passed = RiskCheckPassed(envelope=derive_envelope(event.envelope, self.name, 11 + 2 * i),
                                     order_id=order.order_id)  # fmt: skip
            out += [order, passed]
        return out

    def evolve(self, state: dict[str, Any], event: EventBase, view: MarketView) -> dict[str, Any]:
        if isinstance(event, QuoteTick) and event.envelope.event_time_ns - state["last"] >= PROBE_EVERY_NS:
            limits = [derive_envelope(event.envelope, self.name, 10 + 2 * i).event_id for i in (2, 3)]
            return {"last": event.envelope.event_time_ns, "resting": limits}
        return state


def _justifies_maker_fill(event: EventBase, fill: OrderFillEvent) -> bool:
    """A recorded market event that reaches the resting order's price: a trade at or through it, or the other
    side of the ticker or the book at or through it."""
    buy, price = fill.side is Side.BUY, fill.price
    if isinstance(event, TradeTick):
        return event.price <= price if buy else event.price >= price
    if isinstance(event, QuoteTick):
        return event.ask_price <= price if buy else event.bid_price >= price
    if isinstance(event, BookDelta | BookSnapshot):
        levels = event.asks if buy else event.bids
        return any(q > 0 and (p <= price if buy else p >= price) for p, q in levels)
    return False


@pytest.mark.parametrize("folder", sorted(PROBES))
def test_probe_fills_on_every_shared_capture_are_ones_the_market_allowed(tmp_path: Path, folder: str) -> None:
    venue_name, quantity = PROBES[folder]
    paths = sorted((DATA / "hftbacktest" / folder).glob("*.gz"))
    assert paths, f"no Binance captures under {DATA / 'hftbacktest' / folder}"
    config = SimulatedVenueConfig()  # 5 ms each way
    venue = SimulatedVenue(venue_name, config)  # the instrument's definition comes first in the md stream
    derived: list[EventBase] = []
    with SqliteEventLog(tmp_path / "events.db") as log:
        import_binance_ws(log, folder, paths, code_version=lambda: "test", echo=None)
        (stream,) = market_data_streams(log, folder)
        market = read(log, folder, stream)
    kernel = Kernel([Prober(Decimal(quantity))], {venue_name: venue}, derived.append)
    kernel.feed_all(market)
    kernel.release_due(kernel.clock.now_ns())

    sent = {e.order_id: e for e in derived if isinstance(e, PlaceOrder)}
    fills = [e for e in derived if isinstance(e, OrderFillEvent)]
    takers = [e for e in fills if e.liquidity is Liquidity.TAKER]
    makers = [e for e in fills if e.liquidity is Liquidity.MAKER]
    tickers = [e for e in market if isinstance(e, QuoteTick)]
    ticker_times = [q.envelope.event_time_ns for q in tickers]
    by_time: dict[int, list[EventBase]] = {}
    for event in market:
        by_time.setdefault(event.envelope.event_time_ns, []).append(event)
    assert len(takers) >= 100 and makers, (len(takers), len(makers))
    for fill in takers:
        arrival = sent[fill.order_id].envelope.event_time_ns + config.order_latency_ns
        top = tickers[bisect_left(ticker_times, arrival) - 1]  # the last one received before the arrival
        assert top.envelope.event_time_ns < arrival
        assert (fill.price >= top.ask_price) if fill.side is Side.BUY else (fill.price <= top.bid_price), (
            fill,
            top,
        )
    for fill in makers:
        assert fill.exchange_time_ns is not None
        assert any(_justifies_maker_fill(e, fill) for e in by_time[fill.exchange_time_ns]), fill
        assert fill.price == sent[fill.order_id].limit_price
