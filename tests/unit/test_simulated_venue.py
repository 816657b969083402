"""The simulated venue against hand-computed truth: every number below can be checked with a pencil.

Book used throughout (binance-spot BTCUSDT, tick 0.5, lot 0.1, minimum notional 5, taker and maker 10 bps):
    asks 100 x 0.5, 100.5 x 1, 101 x 1        bids 99.5 x 2, 99 x 5
"""

from __future__ import annotations

import uuid
from decimal import Decimal as D
from typing import Any

import pytest
from pydantic import ValidationError

from adapters.entrypoints.commands import SAMPLES, load_run_config, simulated_venues
from adapters.simulated_venue import (
    FALLBACK_OUT_OF_SYNC,
    FALLBACK_STALE,
    SimulatedVenue,
    SimulatedVenueConfig,
    build_simulated_venues,
)
from application.engine import Kernel
from application.run_config import RunConfig
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
    RiskCheckPassed,
    TradeTick,
    derive_envelope,
    encode,
    input_event_id,
)
from domain.market_view import MarketView, ReferenceMarketView
from domain.orders import OrdersDecider, OrdersState, OrderStatus
from domain.values import Liquidity, OrderType, Side, TimeInForce

pytestmark = pytest.mark.unit

VENUE, SYMBOL = "binance-spot", "BTCUSDT"
MS = 1_000_000
T0 = 1_000 * MS
INSTANT = SimulatedVenueConfig(order_latency_ns=0, response_latency_ns=0)


class Feed:
    def __init__(self, venue: str = VENUE) -> None:
        self.seq = 0
        self.venue = venue

    def env(self, t: int) -> Envelope:
        self.seq += 1
        return Envelope(event_id=input_event_id("s", "x", self.seq), session_id="s", sequence=self.seq,
                        event_time_ns=t, ingest_time_ns=t, source="test")  # fmt: skip

    def instrument(self, t: int = T0 - 1, **overrides: Any) -> InstrumentDefined:
        fields: dict[str, Any] = dict(venue=self.venue, instrument=SYMBOL, base="BTC", quote="USDT",
                                      settlement="USDT", kind="spot", contract_size=D(1), tick_size=D("0.5"),
                                      lot_size=D("0.1"), min_notional=D(5), maker_fee_bps=D(10),
                                      taker_fee_bps=D(10))  # fmt: skip
        fields.update(overrides)
        return InstrumentDefined(envelope=self.env(t), **fields)

    def snapshot(self, t: int = T0, last: int = 100) -> BookSnapshot:
        return BookSnapshot(
            envelope=self.env(t), venue=self.venue, instrument=SYMBOL, last_update_id=last,
            bids=((D("99.5"), D("2")), (D("99"), D("5"))),
            asks=((D("100"), D("0.5")), (D("100.5"), D("1")), (D("101"), D("1"))),
        )  # fmt: skip

    def delta(self, t: int, first: int, bids=(), asks=()) -> BookDelta:  # type: ignore[no-untyped-def]
        return BookDelta(envelope=self.env(t), venue=self.venue, instrument=SYMBOL, first_update_id=first,
                         final_update_id=first, bids=bids, asks=asks)  # fmt: skip

    def quote(
        self, t: int, bid: str, bid_size: str, ask: str, ask_size: str, update_id: int | None
    ) -> QuoteTick:
        return QuoteTick(envelope=self.env(t), venue=self.venue, instrument=SYMBOL, bid_price=D(bid),
                         bid_size=D(bid_size), ask_price=D(ask), ask_size=D(ask_size),
                         venue_update_id=update_id)  # fmt: skip

    def trade(self, t: int, price: str, size: str, aggressor: Side) -> TradeTick:
        return TradeTick(envelope=self.env(t), venue=self.venue, instrument=SYMBOL, price=D(price), size=D(size),
                         aggressor_side=aggressor, venue_trade_id=f"m{self.seq}")  # fmt: skip

    def order(self, t: int, qty: str, side: Side = Side.BUY, kind: OrderType = OrderType.MARKET,
              price: str | None = None, tif: TimeInForce = TimeInForce.GTC, n: int = 1,
              **extra: Any) -> PlaceOrder:  # fmt: skip
        return PlaceOrder(envelope=self.env(t), order_id=uuid.UUID(int=n), account="a", strategy_id="s",
                          venue=self.venue, instrument=SYMBOL, side=side, order_type=kind, time_in_force=tif,
                          quantity=D(qty), limit_price=None if price is None else D(price), **extra)  # fmt: skip

    def limit(
        self, t: int, qty: str, price: str, side: Side = Side.BUY, n: int = 1, **extra: Any
    ) -> PlaceOrder:
        return self.order(t, qty, side, OrderType.LIMIT, price, n=n, **extra)


def ready(config: SimulatedVenueConfig = INSTANT, venue: str = VENUE) -> tuple[Feed, SimulatedVenue]:
    f, v = Feed(venue), SimulatedVenue(venue, config)
    v.on_market(f.instrument())
    v.on_market(f.snapshot())
    return f, v


def fills(events: list[Event]) -> list[OrderFillEvent]:
    return [e for e in events if isinstance(e, OrderFillEvent)]


def legs(events: list[Event]) -> list[tuple[D, D]]:
    return [(e.price, e.quantity) for e in fills(events)]


# ---- taking liquidity ---------------------------------------------------------------------------------------


def test_taker_buy_walks_three_levels_exact_vwap_and_fee_on_both_clocks() -> None:
    f, venue = ready(SimulatedVenueConfig())  # 5 ms each way, binance-spot taker 10 bps
    assert venue.submit(f.order(T0, "2")) == []
    assert venue.drain(T0 + 9 * MS) == []  # acts at the venue at +5 ms, the engine learns at +10 ms
    out = venue.drain(T0 + 10 * MS)
    assert [type(e) for e in out] == [OrderAccepted, OrderPartiallyFilled, OrderPartiallyFilled, OrderFilled]
    assert {e.exchange_time_ns for e in out} == {T0 + 5 * MS}  # venue clock
    assert {e.envelope.event_time_ns for e in out} == {T0 + 10 * MS}  # local clock
    taken = fills(out)
    assert legs(out) == [(D("100"), D("0.5")), (D("100.5"), D("1")), (D("101"), D("0.5"))]
    notional = sum((e.price * e.quantity for e in taken), D(0))
    assert notional == D("201")  # 50 + 100.5 + 50.5
    assert notional / 2 == D("100.5")  # VWAP
    assert [e.fee for e in taken] == [D("0.05"), D("0.1005"), D("0.0505")]  # 10 bps of each leg
    assert sum((e.fee for e in taken), D(0)) == D("0.201")
    assert {e.fee_currency for e in taken} == {"USDT"} and {e.liquidity for e in taken} == {Liquidity.TAKER}
    assert [e.cumulative_quantity for e in taken] == [D("0.5"), D("1.5"), D("2")]
    decider, state = OrdersDecider(), OrdersState()  # the order state machine accepts the venue's story
    for event in [f.order(T0, "2"), *out]:
        assert decider.decide(state, event, ReferenceMarketView()) == []
        decider.evolve(state, event, ReferenceMarketView())
    order = state.orders[uuid.UUID(int=1)]
    assert order.status is OrderStatus.FILLED and order.avg_fill_price == D("100.5")


def test_order_sees_the_book_as_of_its_arrival() -> None:
    f, venue = ready(SimulatedVenueConfig())
    venue.submit(f.order(T0 + MS, "0.5"))  # arrives at +6 ms
    venue.on_market(f.delta(T0 + 3 * MS, 101, asks=((D("100"), D("0")),)))  # before arrival: best ask gone
    venue.on_market(f.delta(T0 + 7 * MS, 102, asks=((D("100"), D("9")),)))  # after arrival: too late
    assert legs(venue.drain(T0 + 20 * MS)) == [(D("100.5"), D("0.5"))]


def test_the_same_liquidity_is_not_taken_twice() -> None:
    f, venue = ready()
    out = venue.submit(f.order(T0, "3", kind=OrderType.LIMIT, price="100.5", tif=TimeInForce.IOC))
    assert [type(e) for e in out] == [
        OrderAccepted,
        OrderPartiallyFilled,
        OrderPartiallyFilled,
        OrderCanceled,
    ]
    assert legs(out) == [(D("100"), D("0.5")), (D("100.5"), D("1"))]
    assert out[-1].reason == "IOC remainder canceled: no more liquidity at 100.5 or better"  # type: ignore[attr-defined]
    # a second taker before any book update finds 100 and 100.5 already taken
    assert legs(venue.submit(f.order(T0 + 1, "0.5", n=2))) == [(D("101"), D("0.5"))]
    # the 100 level shrinks to 0.2 (someone else took or canceled): still nothing left there for us
    venue.on_market(f.delta(T0 + 2, 101, asks=((D("100"), D("0.2")),)))
    assert legs(venue.submit(f.order(T0 + 3, "0.3", n=3))) == [(D("101"), D("0.3"))]
    # it grows to 0.9: growth above the 0.5 it showed when we took it refills our take (0.4 of 0.5), so
    # 0.1 of the 0.9 is still ours and 0.8 is available; the rest comes from 101, where 0.2 of 1 is left
    venue.on_market(f.delta(T0 + 4, 102, asks=((D("100"), D("0.9")),)))
    assert legs(venue.submit(f.order(T0 + 5, "1", n=4))) == [(D("100"), D("0.8")), (D("101"), D("0.2"))]


# ---- two clocks: a fill -> hedge round trip costs both latencies ----------------------------------------------


class HedgeOnFill:
    """Buys on binance-usdm what was filled on binance-spot, the moment it learns of the fill."""

    name = "hedger"

    def initial_state(self) -> None:
        return None

    def decide(self, state: None, event: EventBase, view: MarketView) -> list[EventBase]:
        if not isinstance(event, OrderFilled) or event.venue != VENUE:
            return []
        hedge = PlaceOrder(envelope=derive_envelope(event.envelope, self.name, 0), order_id=uuid.UUID(int=99),
                           account="a", strategy_id="s", venue="binance-usdm", instrument=SYMBOL,
                           side=Side.SELL, order_type=OrderType.MARKET, quantity=event.quantity)  # fmt: skip
        return [
            hedge,
            RiskCheckPassed(envelope=derive_envelope(event.envelope, self.name, 1), order_id=hedge.order_id),
        ]

    def evolve(self, state: None, event: EventBase, view: MarketView) -> None:
        return None


def test_fill_then_hedge_round_trip_costs_both_latencies() -> None:
    config = SimulatedVenueConfig(order_latency_ns=3 * MS, response_latency_ns=7 * MS)
    venues = build_simulated_venues([VENUE, "binance-usdm"], config)
    out: list[EventBase] = []
    kernel = Kernel([HedgeOnFill()], venues, out.append)
    spot, usdm = Feed(), Feed("binance-usdm")
    for event in (spot.instrument(), usdm.instrument(), spot.snapshot(), usdm.snapshot()):
        kernel.feed(event)
    order = spot.order(T0, "0.5")
    kernel.feed(order)  # the kernel sends an order once it passed risk: at local time T0
    kernel.feed(RiskCheckPassed(envelope=spot.env(T0), order_id=order.order_id))
    kernel.feed(usdm.trade(T0 + 100 * MS, "50", "0.1", Side.SELL))  # far below the book: touches nothing
    spot_fill = next(e for e in out if isinstance(e, OrderFilled) and e.venue == VENUE)
    hedge = next(e for e in out if isinstance(e, PlaceOrder))
    hedge_fill = next(e for e in out if isinstance(e, OrderFilled) and e.venue == "binance-usdm")
    assert spot_fill.exchange_time_ns == T0 + 3 * MS  # order latency to the venue
    assert spot_fill.envelope.event_time_ns == T0 + 10 * MS  # + response latency back
    assert hedge.envelope.event_time_ns == T0 + 10 * MS  # the hedge is sent when we learn of the fill
    assert hedge_fill.exchange_time_ns == T0 + 13 * MS  # it acts on the other venue 3 ms later
    assert hedge_fill.envelope.event_time_ns == T0 + 20 * MS  # and we learn of it 7 ms after that
    assert (hedge_fill.price, hedge_fill.quantity) == (D("99.5"), D("0.5"))  # sold into the usdm bid


# ---- resting orders -------------------------------------------------------------------------------------------


def test_resting_buy_filled_by_a_book_move_without_a_trade() -> None:
    f, venue = ready()
    assert [type(e) for e in venue.submit(f.limit(T0, "1", "99.5"))] == [OrderAccepted]
    # the bids at 99.5 disappear and 0.4 is offered at 99.5: that seller would have hit our bid
    out = venue.on_market(f.delta(T0 + 1, 101, bids=((D("99.5"), D("0")),), asks=((D("99.5"), D("0.4")),)))
    assert [(type(e), e.price, e.quantity, e.liquidity) for e in fills(out)] == [
        (OrderPartiallyFilled, D("99.5"), D("0.4"), Liquidity.MAKER)
    ]
    assert fills(out)[0].fee == D("0.0398")  # 10 bps maker of 99.5 x 0.4
    # the same offer, unchanged, is not ours a second time; the exchange's own ticker moving through
    # our price (ask 99 x 2 with a newer update id) fills the rest
    assert fills(venue.on_market(f.delta(T0 + 2, 102, bids=((D("98"), D("1")),)))) == []
    out = venue.on_market(f.quote(T0 + 3, "98", "1", "99", "2", update_id=103))
    assert [(type(e), e.price, e.quantity) for e in fills(out)] == [(OrderFilled, D("99.5"), D("0.6"))]
    assert venue.resting == {}


def test_trades_consume_the_queue_ahead_risk_averse() -> None:
    f, venue = ready()
    venue.submit(f.limit(T0, "1", "99.5"))
    assert venue.resting[uuid.UUID(int=1)].queue.front == D("2")  # the bid level at 99.5 when it arrived
    venue.on_market(f.delta(T0 + 1, 101, bids=((D("99.5"), D("6")),)))  # 4 join behind us
    venue.on_market(f.delta(T0 + 2, 102, bids=((D("99.5"), D("4")),)))  # 2 canceled: all assumed behind us
    assert venue.resting[uuid.UUID(int=1)].queue.front == D("2")
    assert (
        fills(venue.on_market(f.trade(T0 + 3, "99.5", "5", Side.BUY))) == []
    )  # a buyer lifted an ask: not us
    assert fills(venue.on_market(f.trade(T0 + 4, "99.5", "1.5", Side.SELL))) == []  # 0.5 still ahead
    out = venue.on_market(f.trade(T0 + 5, "99.5", "0.8", Side.SELL))  # 0.5 ahead, then 0.3 fills us
    assert [(e.price, e.quantity, e.liquidity) for e in fills(out)] == [
        (D("99.5"), D("0.3"), Liquidity.MAKER)
    ]
    assert fills(out)[0].envelope.causation_id == out[0].envelope.causation_id
    out = venue.on_market(f.trade(T0 + 6, "99", "3", Side.SELL))  # through our price: fills the rest
    assert [(type(e), e.price, e.quantity) for e in fills(out)] == [(OrderFilled, D("99.5"), D("0.7"))]


def test_trades_consume_the_queue_ahead_prob_power2() -> None:
    f, venue = ready(
        SimulatedVenueConfig(order_latency_ns=0, response_latency_ns=0, queue_model="prob_power2")
    )
    venue.submit(f.limit(T0, "1", "99.5"))
    venue.on_market(f.delta(T0 + 1, 101, bids=((D("99.5"), D("6")),)))  # front 2, 4 behind
    venue.on_market(f.delta(T0 + 2, 102, bids=((D("99.5"), D("4")),)))
    # 2 canceled; behind us with p = 4^2 / (4^2 + 2^2) = 0.8: front = 2 - 0.2 x 2 + min(4 - 0.8 x 2, 0) = 1.6
    assert venue.resting[uuid.UUID(int=1)].queue.front == D("1.6")
    out = venue.on_market(f.trade(T0 + 3, "99.5", "2", Side.SELL))  # 1.6 ahead, then 0.4 fills us
    assert legs(out) == [(D("99.5"), D("0.4"))]
    # the level then shows the trade (4 -> 2): already counted, not a cancellation
    venue.on_market(f.delta(T0 + 4, 103, bids=((D("99.5"), D("2")),)))
    assert venue.resting[uuid.UUID(int=1)].queue.front == D("0")


def test_our_orders_fill_in_price_time_priority() -> None:
    f, venue = ready()
    venue.submit(f.limit(T0, "1", "99", n=1))  # 5 ahead at 99
    venue.submit(f.limit(T0 + 1, "1", "99", n=2))  # 5 ahead, and our first order
    venue.submit(f.limit(T0 + 2, "0.5", "99.5", n=3))  # better price: first in line for a trade through it
    out = venue.on_market(f.trade(T0 + 3, "99", "6.8", Side.SELL))
    # 0.5 to the 99.5 bid (through); 6.3 left at 99: 5 ahead, 1 to order 1, 0.3 to order 2
    assert [(e.order_id.int, e.price, e.quantity) for e in fills(out)] == [
        (3, D("99.5"), D("0.5")),
        (1, D("99"), D("1")),
        (2, D("99"), D("0.3")),
    ]


def test_cancel_arrives_after_the_order_latency() -> None:
    f, venue = ready(SimulatedVenueConfig(order_latency_ns=2 * MS, response_latency_ns=0))
    venue.submit(f.limit(T0, "1", "99.5"))
    venue.submit(
        CancelOrder(envelope=f.env(T0 + 3 * MS), order_id=uuid.UUID(int=1), venue=VENUE, reason="done")
    )
    assert legs(venue.on_market(f.trade(T0 + 4 * MS, "99", "5", Side.SELL))) == [(D("99.5"), D("1"))]
    assert venue.drain(T0 + 10 * MS) == []  # the order was already filled: the cancel finds nothing
    venue.submit(f.limit(T0 + 11 * MS, "1", "99.5", n=2))
    out = venue.submit(CancelOrder(envelope=f.env(T0 + 12 * MS), order_id=uuid.UUID(int=2), venue=VENUE))
    assert [type(e) for e in venue.drain(T0 + 14 * MS) + out] == [OrderAccepted, OrderCanceled]
    assert fills(venue.on_market(f.trade(T0 + 15 * MS, "99", "5", Side.SELL))) == []


# ---- the exchange's top of book when the L2 book cannot be trusted ------------------------------------------


def test_falls_back_to_the_ticker_when_the_book_is_out_of_sync() -> None:
    f, venue = ready()
    venue.on_market(f.delta(T0 + 1, 105, asks=((D("99.5"), D("3")),)))  # gap: 101..104 missing
    venue.on_market(f.quote(T0 + 2, "101", "0.7", "101.5", "0.3", update_id=110))
    out = venue.submit(f.order(T0 + 3, "0.5"))
    # only the ticker's 0.3 at 101.5 is known: the rest of the market order finds nothing
    assert [type(e) for e in out] == [OrderAccepted, OrderPartiallyFilled, OrderCanceled]
    assert legs(out) == [(D("101.5"), D("0.3"))]
    assert venue.counters() == {"orders_accepted": 1, "fallbacks": {FALLBACK_OUT_OF_SYNC: 1}}


def test_an_out_of_sync_book_is_never_matched_against() -> None:
    f, venue = ready()
    venue.submit(f.limit(T0, "1", "99", n=9))  # rests behind the 5 bid at 99
    venue.on_market(f.delta(T0 + 1, 105, asks=((D("99.5"), D("3")),)))  # gap, and no ticker to fall back to
    assert venue.resting[uuid.UUID(int=9)].queue.front == D("5")  # an unknown level is not an empty one
    assert reason(venue.submit(f.order(T0 + 2, "0.5"))) == (
        "nothing to take for BTCUSDT on binance-spot (book out of sync, no ticker)"
    )
    venue.on_market(f.snapshot(T0 + 3, last=200))  # rebuilt at the next snapshot
    assert legs(venue.submit(f.order(T0 + 4, "0.5", n=2))) == [(D("100"), D("0.5"))]
    assert venue.counters() == {"orders_accepted": 2, "fallbacks": {}}


def test_falls_back_to_the_ticker_when_the_book_is_older() -> None:
    f, venue = ready()
    venue.on_market(f.quote(T0 + 1, "99.5", "2", "100.5", "0.4", update_id=101))  # newer than the book (100)
    out = venue.submit(f.order(T0 + 2, "1"))
    # the ticker's level first, then the (in sync, older) book beyond it: 0.4 at 100.5, 0.6 at 101
    assert legs(out) == [(D("100.5"), D("0.4")), (D("101"), D("0.6"))]
    assert venue.counters() == {"orders_accepted": 1, "fallbacks": {FALLBACK_STALE: 1}}
    # once the book has applied the ticker's update id, the book is matched against again
    venue.on_market(f.delta(T0 + 3, 101, asks=((D("100"), D("0")), (D("100.5"), D("1.4")))))
    assert legs(venue.submit(f.order(T0 + 4, "0.5", n=2))) == [
        (D("100.5"), D("0.5"))
    ]  # 1.4 recorded, 0.4 ours
    assert venue.counters() == {"orders_accepted": 2, "fallbacks": {FALLBACK_STALE: 1}}


# ---- instrument rules, with the venue's own reasons -----------------------------------------------------------


def reason(events: list[Event]) -> str:
    assert [type(e) for e in events] == [OrderRejected]
    return events[0].reason  # type: ignore[attr-defined]


def test_instrument_rules_reject_with_the_venues_reasons() -> None:
    f, venue = Feed(), SimulatedVenue(VENUE, INSTANT)
    venue.on_market(f.snapshot())
    assert reason(venue.submit(f.order(T0, "1", n=1))) == (
        "Invalid symbol. (no instrument definition for BTCUSDT on binance-spot)"
    )
    venue.on_market(f.instrument(min_notional=D(20)))
    assert reason(venue.submit(f.limit(T0, "1", "99.2", n=2))).startswith("Filter failure: PRICE_FILTER")
    assert reason(venue.submit(f.limit(T0, "1.05", "99", n=3))).startswith("Filter failure: LOT_SIZE")
    assert reason(venue.submit(f.limit(T0, "0.1", "40", n=4))) == (
        "Filter failure: NOTIONAL (notional 4.0 is below the minimum 20)"
    )
    assert reason(venue.submit(f.order(T0, "0.1", n=5))).startswith(
        "Filter failure: NOTIONAL"
    )  # 0.1 x ask 100
    assert reason(venue.submit(f.limit(T0, "1", "100", n=6, post_only=True))) == (
        "Order would immediately match and take. (best ask 100, limit 100)"
    )
    assert [type(e) for e in venue.submit(f.limit(T0, "1", "99.5", n=7, post_only=True))] == [OrderAccepted]
    assert reason(venue.submit(f.order(T0, "0.5", Side.SELL, n=8, reduce_only=True))).startswith(
        "ReduceOnly Order is rejected. (position 0"
    )
    venue.submit(f.order(T0, "0.5", n=9))  # long 0.5
    assert reason(venue.submit(f.order(T0, "0.6", Side.SELL, n=10, reduce_only=True))).startswith(
        "ReduceOnly Order is rejected. (position 0.5"
    )
    assert legs(venue.submit(f.order(T0, "0.5", Side.SELL, n=11, reduce_only=True))) == [
        (D("99.5"), D("0.5"))
    ]
    assert reason(venue.submit(f.order(T0, "0.5", n=11))).startswith("Duplicate order sent.")


def test_specifications_given_up_front_are_replaced_by_the_sessions_own() -> None:
    f = Feed()
    venue = SimulatedVenue(
        VENUE, SimulatedVenueConfig(0, 0, instruments={SYMBOL: f.instrument(lot_size=D(1))})
    )
    venue.on_market(f.snapshot())
    assert reason(venue.submit(f.order(T0, "0.5"))).startswith("Filter failure: LOT_SIZE")
    venue.on_market(f.instrument())  # lot 0.1
    assert legs(venue.submit(f.order(T0, "0.5", n=2))) == [(D("100"), D("0.5"))]


def test_inverse_contract_fees_are_in_the_settlement_coin() -> None:
    f, venue = Feed("binance-coinm"), SimulatedVenue("binance-coinm", INSTANT)
    venue.on_market(
        f.instrument(
            instrument=SYMBOL,
            base="BTC",
            quote="USD",
            settlement="BTC",
            kind="inverse",
            contract_size=D(100),
            tick_size=D("0.1"),
            lot_size=D(1),
            min_notional=D(0),
            maker_fee_bps=D(2),
            taker_fee_bps=D(5),
        )
    )
    venue.on_market(f.snapshot())
    out = venue.submit(f.order(T0, "2", Side.SELL))  # 2 contracts of 100 USD at 99.5
    assert legs(out) == [(D("99.5"), D("2"))]
    fill = fills(out)[0]
    # value 2 x 100 / 99.5 = 2.010050251256 BTC (to 1e-12); the specification's taker 5 bps of it, in BTC
    assert (fill.fee, fill.fee_currency) == (D("0.001005025125628"), "BTC")


def test_queue_model_is_chosen_in_the_run_configuration() -> None:
    assert SimulatedVenue(VENUE, SimulatedVenueConfig(queue_model="prob_log")).queue_model.name == "prob_log"
    with pytest.raises(ValueError, match="unknown queue model 'fifo'"):
        SimulatedVenue(VENUE, SimulatedVenueConfig(queue_model="fifo"))  # type: ignore[arg-type]
    config = load_run_config(SAMPLES / "spread-demo.toml")
    assert config.queue_model == "risk_averse"  # the conservative default
    assert simulated_venues(config.model_copy(update={"queue_model": "prob_power3"}))[
        VENUE
    ].queue_model.name == ("prob_power3")
    with pytest.raises(ValidationError, match="queue_model"):
        RunConfig.model_validate({**config.model_dump(), "queue_model": "fifo"})


def run_script() -> list[bytes]:
    f, venue = ready(SimulatedVenueConfig(queue_model="prob_log"))
    out: list[EventBase] = []
    out += venue.submit(f.order(T0, "1.2"))
    out += venue.submit(f.limit(T0 + 1, "1", "99.5", n=2))
    out += venue.on_market(f.delta(T0 + 10 * MS, 101, bids=((D("99.5"), D("1.3")),)))
    out += venue.on_market(f.trade(T0 + 20 * MS, "99.5", "1.6", Side.SELL))
    out += venue.drain(T0 + 100 * MS)
    return [encode(e) for e in out]


def test_deterministic() -> None:
    first = run_script()
    assert len(first) == 5 and first == run_script()
