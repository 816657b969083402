from __future__ import annotations

import uuid
from decimal import Decimal as D
from itertools import count

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.events import (
    Envelope,
    EventBase,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderPartiallyFilled,
    OrderRejected,
    OrderTransitionRefused,
    PlaceOrder,
    input_event_id,
)
from domain.market_view import ReferenceMarketView
from domain.orders import Order, OrdersDecider, OrdersState, OrderStatus
from domain.values import Liquidity, OrderType, Side

NO_MARKET = ReferenceMarketView()  # the order lifecycle reads nothing of the market

pytestmark = pytest.mark.unit

OID = uuid.UUID("00000000-0000-0000-0000-000000000001")
VENUE, SYMBOL = "binance-spot", "BTCUSDT"
_seq = count(1)


def env() -> Envelope:
    seq = next(_seq)
    return Envelope(event_id=input_event_id("s", "o", seq), session_id="s", sequence=seq, event_time_ns=seq,
                    ingest_time_ns=seq, source="test")  # fmt: skip


def place(qty: str = "1", oid: uuid.UUID = OID) -> PlaceOrder:
    return PlaceOrder(envelope=env(), order_id=oid, account="a", strategy_id="s", venue=VENUE, instrument=SYMBOL,
                      side=Side.BUY, order_type=OrderType.LIMIT, quantity=D(qty), limit_price=D("101"))  # fmt: skip


def accepted(oid: uuid.UUID = OID) -> OrderAccepted:
    return OrderAccepted(envelope=env(), order_id=oid, venue=VENUE, venue_order_id="v1")


def fill(kind: type[OrderPartiallyFilled] | type[OrderFilled], qty: str, price: str, trade: str,
         fee: str = "0") -> EventBase:  # fmt: skip
    return kind(envelope=env(), order_id=OID, venue=VENUE, instrument=SYMBOL, side=Side.BUY, price=D(price),
                quantity=D(qty), fee=D(fee), fee_currency="USDT", liquidity=Liquidity.TAKER, venue_trade_id=trade,
                cumulative_quantity=D(0), leaves_quantity=D(0))  # fmt: skip


def canceled() -> OrderCanceled:
    return OrderCanceled(envelope=env(), order_id=OID, venue=VENUE, reason="user")


def run(decider: OrdersDecider, state: OrdersState, event: EventBase) -> list[EventBase]:
    derived = decider.decide(state, event, NO_MARKET)
    decider.evolve(state, event, NO_MARKET)
    for d in derived:
        decider.evolve(state, d, NO_MARKET)
    return derived


def order_of(state: OrdersState) -> Order:
    return state.orders[OID]


def test_happy_path_with_duplicate_fill_and_averages() -> None:
    decider, state = OrdersDecider(), OrdersState()
    assert run(decider, state, place("1")) == []
    assert order_of(state).status is OrderStatus.NEW
    assert run(decider, state, accepted()) == []
    assert run(decider, state, fill(OrderPartiallyFilled, "0.4", "100", "t1", "0.04")) == []
    assert order_of(state).status is OrderStatus.PARTIALLY_FILLED
    assert run(decider, state, fill(OrderPartiallyFilled, "0.4", "100", "t1", "0.04")) == []  # duplicate
    assert order_of(state).filled_quantity == D("0.4")
    assert run(decider, state, fill(OrderFilled, "0.6", "101", "t2", "0.0606")) == []
    order = order_of(state)
    assert order.status is OrderStatus.FILLED and order.leaves_quantity == 0
    assert order.avg_fill_price == D("100.6")  # (0.4*100 + 0.6*101) / 1
    assert order.fees == {"USDT": D("0.1006")}
    assert order.venue_order_id == "v1"
    assert run(decider, state, fill(OrderFilled, "0.6", "101", "t2")) == []  # duplicate after terminal: silent


def refused(out: list[EventBase]) -> OrderTransitionRefused:
    assert len(out) == 1 and isinstance(out[0], OrderTransitionRefused)
    return out[0]


def test_invalid_transitions_are_flagged_and_ignored() -> None:
    decider, state = OrdersDecider(), OrdersState()
    run(decider, state, place("1"))
    bad = fill(OrderPartiallyFilled, "0.5", "100", "t1")
    r = refused(run(decider, state, bad))  # a fill before the venue accepted
    assert (r.from_state, r.attempted, r.offending_event_id) == ("new", "order.partially_filled", bad.envelope.event_id)
    assert order_of(state).filled_quantity == 0 and order_of(state).status is OrderStatus.NEW
    r = refused(run(decider, state, place("2")))
    assert r.attempted == "command.place_order" and order_of(state).quantity == 1
    run(decider, state, accepted())
    r = refused(run(decider, state, accepted()))
    assert r.from_state == "accepted"
    r = refused(run(decider, state, fill(OrderPartiallyFilled, "1.5", "100", "t9")))
    assert "overfill" in r.reason and order_of(state).filled_quantity == 0
    r = refused(run(decider, state, fill(OrderFilled, "0.5", "100", "t8")))
    assert "still open" in r.reason
    run(decider, state, canceled())
    assert order_of(state).status is OrderStatus.CANCELED
    r = refused(run(decider, state, fill(OrderFilled, "1", "100", "t3")))
    assert r.from_state == "canceled" and order_of(state).status is OrderStatus.CANCELED


def test_rejected_and_unknown_orders() -> None:
    decider, state = OrdersDecider(), OrdersState()
    run(decider, state, place("1"))
    assert run(decider, state, OrderRejected(envelope=env(), order_id=OID, venue=VENUE, reason="no funds")) == []
    assert order_of(state).status is OrderStatus.REJECTED and order_of(state).reason == "no funds"
    assert refused(run(decider, state, accepted())).from_state == "rejected"
    other = uuid.UUID(int=99)
    r = refused(run(decider, state, accepted(other)))
    assert r.from_state == "unknown" and other not in state.orders


def make_event(kind: str, quantity: str, trade: str) -> EventBase:
    if kind == "accepted":
        return accepted()
    if kind == "rejected":
        return OrderRejected(envelope=env(), order_id=OID, venue=VENUE, reason="x")
    if kind == "partial":
        return fill(OrderPartiallyFilled, quantity, "100", trade)
    if kind == "filled":
        return fill(OrderFilled, quantity, "100", trade)
    if kind == "canceled":
        return canceled()
    if kind == "expired":
        return OrderExpired(envelope=env(), order_id=OID, venue=VENUE)
    return place("3")


_EVENT_KINDS = st.sampled_from(["accepted", "rejected", "partial", "filled", "canceled", "expired", "place"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_EVENT_KINDS, st.integers(1, 6), st.integers(0, 5)), max_size=25))
def test_state_machine_never_reaches_an_invalid_state(steps: list[tuple[str, int, int]]) -> None:
    decider, state = OrdersDecider(), OrdersState()
    run(decider, state, place("3"))
    for kind, qty, trade in steps:
        quantity = str(D(qty) / 2)  # 0.5 .. 3
        event = make_event(kind, quantity, f"t{trade}")
        before = order_of(state)
        before_values = (before.status, before.filled_quantity, before.fill_count)
        out = run(decider, state, event)
        after = order_of(state)
        if out:  # refused: nothing changed
            assert (after.status, after.filled_quantity, after.fill_count) == before_values
        if before_values[0].is_terminal:
            assert after.status is before_values[0]
        assert D(0) <= after.filled_quantity <= after.quantity
        assert (after.status is OrderStatus.FILLED) == (after.filled_quantity == after.quantity)
        if after.status in (OrderStatus.NEW, OrderStatus.ACCEPTED, OrderStatus.REJECTED):
            assert after.filled_quantity == 0
        if after.status is OrderStatus.PARTIALLY_FILLED:
            assert 0 < after.filled_quantity < after.quantity
