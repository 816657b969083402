from __future__ import annotations

import uuid
from decimal import Decimal as D

import pytest

from adapters.simulated_venue import SimulatedVenue, SimulatedVenueConfig, build_simulated_venues
from domain.events import (
    BookDelta,
    BookSnapshot,
    CancelOrder,
    Envelope,
    Event,
    EventBase,
    InstrumentDefined,
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderFillEvent,
    OrderPartiallyFilled,
    OrderRejected,
    PlaceOrder,
    QuoteTick,
    TradeTick,
    encode,
    input_event_id,
)
from domain.orders import OrdersDecider, OrdersState, OrderStatus
from domain.values import Liquidity, OrderType, Side, TimeInForce

pytestmark = pytest.mark.unit

VENUE, SYMBOL = "binance-spot", "BTCUSDT"
MS = 1_000_000
T0 = 1_000 * MS


class Feed:
    def __init__(self) -> None:
        self.seq = 0

    def env(self, t: int) -> Envelope:
        self.seq += 1
        return Envelope(event_id=input_event_id("s", "x", self.seq), session_id="s", sequence=self.seq,
                        event_time_ns=t, ingest_time_ns=t, source="test")  # fmt: skip

    def spec(self, venue: str) -> InstrumentDefined:
        """The instrument's definition, which the importer writes before its market data."""
        return InstrumentDefined(envelope=self.env(0), venue=venue, instrument=SYMBOL, base="BTC", quote="USDT",
                                 settlement="USDT", kind="spot" if venue == VENUE else "linear", contract_size=1,
                                 tick_size=D("0.01"), lot_size=D("0.00001"), min_notional=0, maker_fee_bps=10,
                                 taker_fee_bps=10)  # fmt: skip

    def snapshot(self, t: int = T0, last: int = 100) -> BookSnapshot:
        return BookSnapshot(
            envelope=self.env(t), venue=VENUE, instrument=SYMBOL, last_update_id=last,
            bids=((D("99.5"), D("2")), (D("99"), D("5"))),
            asks=((D("100"), D("0.5")), (D("100.5"), D("1")), (D("101"), D("1"))),
        )  # fmt: skip

    def delta(self, t: int, first: int, bids=(), asks=()) -> BookDelta:  # type: ignore[no-untyped-def]
        return BookDelta(envelope=self.env(t), venue=VENUE, instrument=SYMBOL, first_update_id=first,
                         final_update_id=first, bids=bids, asks=asks)  # fmt: skip

    def trade(self, t: int, price: str, size: str, aggressor: Side) -> TradeTick:
        return TradeTick(envelope=self.env(t), venue=VENUE, instrument=SYMBOL, price=D(price), size=D(size),
                         aggressor_side=aggressor, venue_trade_id=f"m{self.seq}")  # fmt: skip

    def order(self, t: int, qty: str, side: Side = Side.BUY, kind: OrderType = OrderType.MARKET,
              price: str | None = None, tif: TimeInForce = TimeInForce.GTC, n: int = 1) -> PlaceOrder:  # fmt: skip
        return PlaceOrder(envelope=self.env(t), order_id=uuid.UUID(int=n), account="a", strategy_id="s",
                          venue=VENUE, instrument=SYMBOL, side=side, order_type=kind, time_in_force=tif,
                          quantity=D(qty), limit_price=None if price is None else D(price))  # fmt: skip


def fills(events: list[Event]) -> list[OrderFillEvent]:
    return [e for e in events if isinstance(e, OrderFillEvent)]


def test_market_order_walks_three_levels_with_latency() -> None:
    f, venue = Feed(), SimulatedVenue(VENUE)  # 5 ms each way, binance-spot taker 10 bps
    venue.on_market(f.spec(venue.name))
    assert venue.on_market(f.snapshot()) == []
    assert venue.submit(f.order(T0, "2")) == []
    assert venue.drain(T0 + 9 * MS) == []  # arrives at +5 ms, reported at +10 ms
    out = venue.drain(T0 + 10 * MS)
    assert [type(e) for e in out] == [OrderAccepted, OrderPartiallyFilled, OrderPartiallyFilled, OrderFilled]
    assert all(e.envelope.event_time_ns == T0 + 5 * MS for e in out)
    legs = fills(out)
    assert [(e.price, e.quantity) for e in legs] == [(D("100"), D("0.5")), (D("100.5"), D("1")), (D("101"), D("0.5"))]
    notional = sum((e.price * e.quantity for e in legs), D(0))
    assert notional == D("201")  # 50 + 100.5 + 50.5
    assert notional / 2 == D("100.5")  # VWAP
    assert sum((e.fee for e in legs), D(0)) == D("0.201")  # 10 bps of 201
    assert {e.fee_currency for e in legs} == {"USDT"} and {e.liquidity for e in legs} == {Liquidity.TAKER}
    assert [e.venue_trade_id for e in legs] == ["binance-spot-1", "binance-spot-2", "binance-spot-3"]
    assert [e.cumulative_quantity for e in legs] == [D("0.5"), D("1.5"), D("2")]
    assert legs[-1].leaves_quantity == 0
    # the order state machine accepts the venue's story as is
    decider, state = OrdersDecider(), OrdersState()
    for event in [f.order(T0, "2"), *out]:
        assert decider.decide(state, event) == []
        decider.evolve(state, event)
    order = state.orders[uuid.UUID(int=1)]
    assert order.status is OrderStatus.FILLED and order.avg_fill_price == D("100.5")


def test_order_sees_the_book_as_of_its_arrival() -> None:
    f, venue = Feed(), SimulatedVenue(VENUE)
    venue.on_market(f.spec(venue.name))
    venue.on_market(f.snapshot())
    venue.submit(f.order(T0, "0.5"))
    venue.on_market(f.delta(T0 + 3 * MS, 101, asks=((D("100"), D("0")),)))  # before arrival: best ask gone
    venue.on_market(f.delta(T0 + 6 * MS, 102, asks=((D("99.9"), D("9")),)))  # after arrival: too late
    out = venue.drain(T0 + 10 * MS)
    assert [(e.price, e.quantity) for e in fills(out)] == [(D("100.5"), D("0.5"))]


def test_ioc_partial_then_remainder_canceled_and_liquidity_not_taken_twice() -> None:
    f, venue = Feed(), SimulatedVenue(VENUE, SimulatedVenueConfig(order_latency_ns=0, response_latency_ns=0))
    venue.on_market(f.spec(venue.name))
    venue.on_market(f.snapshot())
    out = venue.submit(f.order(T0, "3", kind=OrderType.LIMIT, price="100.5", tif=TimeInForce.IOC))
    assert [type(e) for e in out] == [OrderAccepted, OrderPartiallyFilled, OrderPartiallyFilled, OrderCanceled]
    assert [(e.price, e.quantity) for e in fills(out)] == [(D("100"), D("0.5")), (D("100.5"), D("1"))]
    assert "IOC remainder canceled" in out[-1].reason  # type: ignore[attr-defined]
    # a second taker before any book update finds 100 and 100.5 already taken
    out = venue.submit(f.order(T0 + 1, "0.5", n=2))
    assert [(e.price, e.quantity) for e in fills(out)] == [(D("101"), D("0.5"))]
    # a book update of the 100 level makes it available again
    venue.on_market(f.delta(T0 + 2, 101, asks=((D("100"), D("0.2")),)))
    out = venue.submit(f.order(T0 + 3, "0.1", n=3))
    assert [(e.price, e.quantity) for e in fills(out)] == [(D("100"), D("0.1"))]


def test_limit_rests_then_fills_after_the_queue_ahead_is_consumed() -> None:
    f, venue = Feed(), SimulatedVenue(VENUE, SimulatedVenueConfig(order_latency_ns=0, response_latency_ns=0))
    venue.on_market(f.spec(venue.name))
    venue.on_market(f.snapshot())
    out = venue.submit(f.order(T0, "1", kind=OrderType.LIMIT, price="99.5"))
    assert [type(e) for e in out] == [OrderAccepted]
    resting = venue.resting[uuid.UUID(int=1)]
    assert resting.queue_ahead == D("2")  # the bid level at 99.5 when it arrived
    assert fills(venue.on_market(f.trade(T0 + 1, "99.5", "1.5", Side.SELL))) == []  # 0.5 still ahead
    assert fills(venue.on_market(f.trade(T0 + 2, "99.5", "5", Side.BUY))) == []  # buyer lifted an ask: not us
    trade = f.trade(T0 + 3, "99.5", "0.8", Side.SELL)
    out = venue.on_market(trade)  # 0.5 ahead, 0.3 fills us
    assert [(type(e), e.price, e.quantity, e.liquidity) for e in fills(out)] == [
        (OrderPartiallyFilled, D("99.5"), D("0.3"), Liquidity.MAKER)
    ]
    assert fills(out)[0].fee == D("0.02985")  # 10 bps maker of 99.5 * 0.3
    assert fills(out)[0].envelope.causation_id == trade.envelope.event_id
    assert fills(out)[0].envelope.event_time_ns == T0 + 3
    out = venue.on_market(f.trade(T0 + 4, "99.4", "3", Side.SELL))  # trades through our price
    assert [(type(e), e.price, e.quantity) for e in fills(out)] == [(OrderFilled, D("99.5"), D("0.7"))]
    assert venue.resting == {}


def test_level_decrease_shrinks_queue_and_cancel_stops_fills() -> None:
    f, venue = Feed(), SimulatedVenue(VENUE, SimulatedVenueConfig(order_latency_ns=2 * MS, response_latency_ns=0))
    venue.on_market(f.spec(venue.name))
    venue.on_market(f.snapshot())
    venue.submit(f.order(T0, "1", kind=OrderType.LIMIT, price="99.5"))
    venue.drain(T0 + 2 * MS)
    venue.on_market(f.delta(T0 + 3 * MS, 101, bids=((D("99.5"), D("0.4")),)))
    assert venue.resting[uuid.UUID(int=1)].queue_ahead == D("0.4")
    venue.on_market(f.delta(T0 + 4 * MS, 102, bids=((D("99.5"), D("3")),)))  # joins behind us
    assert venue.resting[uuid.UUID(int=1)].queue_ahead == D("0.4")
    cancel = CancelOrder(envelope=f.env(T0 + 5 * MS), order_id=uuid.UUID(int=1), venue=VENUE, reason="done")
    assert venue.submit(cancel) == []
    assert fills(venue.on_market(f.trade(T0 + 6 * MS, "99.4", "5", Side.SELL))) != []  # cancel not arrived yet
    out = venue.drain(T0 + 7 * MS)
    assert [type(e) for e in out] == []  # the order was already filled: the cancel finds nothing


def test_cancel_before_trade() -> None:
    f, venue = Feed(), SimulatedVenue(VENUE, SimulatedVenueConfig(order_latency_ns=0, response_latency_ns=0))
    venue.on_market(f.spec(venue.name))
    venue.on_market(f.snapshot())
    venue.submit(f.order(T0, "1", kind=OrderType.LIMIT, price="99.5"))
    out = venue.submit(CancelOrder(envelope=f.env(T0 + 1), order_id=uuid.UUID(int=1), venue=VENUE, reason="x"))
    assert [type(e) for e in out] == [OrderCanceled]
    assert fills(venue.on_market(f.trade(T0 + 2, "99", "5", Side.SELL))) == []


def test_rejections_and_quote_only_books() -> None:
    f, venue = Feed(), SimulatedVenue("binance-usdm", SimulatedVenueConfig(order_latency_ns=0, response_latency_ns=0))
    venue.on_market(f.spec(venue.name))
    order = f.order(T0, "1").model_copy(update={"venue": "binance-usdm"})
    out = venue.submit(order)
    assert [type(e) for e in out] == [OrderRejected] and "no market data" in out[0].reason  # type: ignore[attr-defined]
    venue.on_market(QuoteTick(envelope=f.env(T0 + 1), venue="binance-usdm", instrument=SYMBOL, bid_price=D("99"),
                              bid_size=D("1"), ask_price=D("100"), ask_size=D("0.4")))  # fmt: skip
    out = venue.submit(order.model_copy(update={"order_id": uuid.UUID(int=7), "envelope": f.env(T0 + 2)}))
    assert [type(e) for e in out] == [OrderAccepted, OrderPartiallyFilled, OrderCanceled]
    assert fills(out)[0].fee == D("0.02")  # USD-M taker 5 bps of 40
    no_price = order.model_copy(update={"order_id": uuid.UUID(int=8), "order_type": OrderType.LIMIT})
    assert [type(e) for e in venue.submit(no_price)] == [OrderRejected]


def run_script() -> list[bytes]:
    f, venue = Feed(), build_simulated_venues([VENUE])[VENUE]
    venue.on_market(f.spec(venue.name))
    out: list[EventBase] = []
    out += venue.on_market(f.snapshot())
    out += venue.submit(f.order(T0, "1.2"))
    out += venue.submit(f.order(T0 + 1, "1", kind=OrderType.LIMIT, price="99.5", n=2))
    out += venue.on_market(f.trade(T0 + 20 * MS, "99.4", "3", Side.SELL))
    out += venue.drain(T0 + 100 * MS)
    return [encode(e) for e in out]


def test_deterministic() -> None:
    first = run_script()
    assert len(first) == 5 and first == run_script()
