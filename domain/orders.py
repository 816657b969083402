"""Order lifecycle: a state machine per order id.

    PlaceOrder -> new --accepted--> accepted --partial fill--> partially_filled --fill--> filled
                   |                   |  \\                        |  \\
                rejected               |   filled (one shot)        |   canceled | expired
                                       canceled | expired

Only those transitions apply. Anything else (an event for an unknown order, a second PlaceOrder with the
same id, a fill on a canceled order, an overfill, an `OrderFilled` that leaves quantity open, a
`OrderPartiallyFilled` that would complete the order) makes `decide` emit `OrderTransitionRefused` and
`evolve` ignores the offending event. A fill whose `venue_trade_id` the order has already seen is a
duplicate delivery: ignored silently, whatever the order's state. Cumulative quantity, average fill price
and fees are computed from the de-duplicated fills, not taken from the venue's running totals.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from domain.events import (
    EventBase,
    OrderAccepted,
    OrderCanceled,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderFillEvent,
    OrderPartiallyFilled,
    OrderRejected,
    OrderTransitionRefused,
    PlaceOrder,
    derive_envelope,
)
from domain.market_view import MarketView
from domain.values import OrderType, Side, TimeInForce, in_decimal_context
from domain.wake import NEVER, WakeSpec

_ZERO = Decimal(0)


class OrderStatus(StrEnum):
    NEW = "new"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def is_open(self) -> bool:
        return self not in _TERMINAL


_TERMINAL = frozenset({OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.REJECTED})
_WORKING = (OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED)

TRANSITIONS: dict[str, tuple[tuple[OrderStatus, ...], OrderStatus]] = {
    "order.accepted": ((OrderStatus.NEW,), OrderStatus.ACCEPTED),
    "order.rejected": ((OrderStatus.NEW,), OrderStatus.REJECTED),
    "order.partially_filled": (_WORKING, OrderStatus.PARTIALLY_FILLED),
    "order.filled": (_WORKING, OrderStatus.FILLED),
    "order.canceled": (_WORKING, OrderStatus.CANCELED),
    "order.expired": (_WORKING, OrderStatus.EXPIRED),
}
"""event type -> (states it may come from, state it leads to)."""


@dataclass(slots=True)
class Order:
    order_id: uuid.UUID
    account: str
    strategy_id: str
    venue: str
    instrument: str
    side: Side
    order_type: OrderType
    time_in_force: TimeInForce
    quantity: Decimal
    limit_price: Decimal | None
    leg_group_id: uuid.UUID | None
    status: OrderStatus = OrderStatus.NEW
    venue_order_id: str | None = None
    filled_quantity: Decimal = _ZERO
    filled_notional: Decimal = _ZERO
    fees: dict[str, Decimal] = field(default_factory=dict)
    """Fee currency -> total, in the order the currencies first appeared."""
    fill_count: int = 0
    reason: str = ""
    """Why it was rejected or canceled, as the venue said."""
    trade_ids: set[str] = field(default_factory=set)
    """Seen venue_trade_ids: membership tests only, never iterated."""

    @property
    def leaves_quantity(self) -> Decimal:
        return self.quantity - self.filled_quantity

    @property
    def avg_fill_price(self) -> Decimal | None:
        if self.filled_quantity == _ZERO:
            return None
        return self.filled_notional / self.filled_quantity


@dataclass(slots=True)
class OrdersState:
    orders: dict[uuid.UUID, Order] = field(default_factory=dict)

    def open_orders(self) -> list[Order]:
        return [order for order in self.orders.values() if order.status.is_open]


_APPLY = ""
_IGNORE = "ignore"


def _check(state: OrdersState, event: EventBase) -> tuple[str, str, str]:
    """(verdict, from_state, reason): verdict '' applies, 'ignore' (duplicate fill, not an order event) does nothing, 'refuse' flags."""
    if isinstance(event, PlaceOrder):
        existing = state.orders.get(event.order_id)
        if existing is not None:
            return "refuse", existing.status.value, "order id already placed"
        return _APPLY, "", ""
    if not isinstance(event, OrderEvent) or isinstance(event, OrderTransitionRefused):
        return _IGNORE, "", ""  # not ours: nothing to do
    order = state.orders.get(event.order_id)
    if order is None:
        return "refuse", "unknown", "no PlaceOrder seen for this order id"
    if isinstance(event, OrderFillEvent) and event.venue_trade_id in order.trade_ids:
        return _IGNORE, "", ""  # duplicate delivery
    transition = TRANSITIONS.get(event.type)
    if transition is None or order.status not in transition[0]:
        return "refuse", order.status.value, ""
    if event.venue != order.venue:
        return "refuse", order.status.value, f"venue {event.venue!r} is not the order's venue {order.venue!r}"
    if isinstance(event, OrderFillEvent):
        if event.quantity <= _ZERO or event.price <= _ZERO:
            return "refuse", order.status.value, f"fill of {event.quantity} at {event.price} is not positive"
        if event.instrument != order.instrument or event.side is not order.side:
            return "refuse", order.status.value, "fill instrument or side differs from the order's"
        cumulative = order.filled_quantity + event.quantity
        if cumulative > order.quantity:
            return "refuse", order.status.value, f"overfill: {cumulative} > order quantity {order.quantity}"
        if isinstance(event, OrderFilled) and cumulative != order.quantity:
            return "refuse", order.status.value, f"filled with {order.quantity - cumulative} still open"
        if isinstance(event, OrderPartiallyFilled) and cumulative == order.quantity:
            return "refuse", order.status.value, "partial fill completes the order; expected order.filled"
    return _APPLY, "", ""


class OrdersDecider:
    consumes = (PlaceOrder, OrderEvent)

    def __init__(self, name: str = "orders") -> None:
        self.name = name

    def initial_state(self) -> OrdersState:
        return OrdersState()

    def wake(self, state: OrdersState) -> WakeSpec:
        return NEVER  # market rows never reach an order's lifecycle

    @in_decimal_context
    def decide(self, state: OrdersState, event: EventBase, view: MarketView) -> list[EventBase]:
        if not isinstance(event, PlaceOrder | OrderEvent):
            return []
        verdict, from_state, reason = _check(state, event)
        if verdict != "refuse":
            return []
        return [
            OrderTransitionRefused(
                envelope=derive_envelope(event.envelope, self.name, 0),
                order_id=event.order_id,
                venue=event.venue,
                from_state=from_state,
                attempted=event.type,
                offending_event_id=event.envelope.event_id,
                reason=reason,
            )
        ]

    @in_decimal_context
    def evolve(self, state: OrdersState, event: EventBase, view: MarketView) -> OrdersState:
        if not isinstance(event, PlaceOrder | OrderEvent):
            return state
        if _check(state, event)[0] != _APPLY:
            return state
        if isinstance(event, PlaceOrder):
            state.orders[event.order_id] = Order(
                order_id=event.order_id,
                account=event.account,
                strategy_id=event.strategy_id,
                venue=event.venue,
                instrument=event.instrument,
                side=event.side,
                order_type=event.order_type,
                time_in_force=event.time_in_force,
                quantity=event.quantity,
                limit_price=event.limit_price,
                leg_group_id=event.leg_group_id,
            )
            return state
        order = state.orders[event.order_id]
        order.status = TRANSITIONS[event.type][1]
        if isinstance(event, OrderAccepted):
            order.venue_order_id = event.venue_order_id
        elif isinstance(event, OrderRejected | OrderCanceled):
            order.reason = event.reason
        elif isinstance(event, OrderFillEvent):
            order.trade_ids.add(event.venue_trade_id)
            order.filled_quantity += event.quantity
            order.filled_notional += event.price * event.quantity
            order.fees[event.fee_currency] = order.fees.get(event.fee_currency, _ZERO) + event.fee
            order.fill_count += 1
        elif isinstance(event, OrderExpired):
            pass
        return state
