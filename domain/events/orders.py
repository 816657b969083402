"""What happened to an order, as the venue (or the order state machine) reports it."""

from __future__ import annotations

import uuid
from typing import Literal

from domain.events.base import EventBase
from domain.values import Amount, Liquidity, Side


class OrderEvent(EventBase):
    """`envelope.event_time_ns` is when the engine learns of the event (the local clock: the venue's time
    plus the response latency); `exchange_time_ns` is when it happened at the venue, where a venue says so."""

    order_id: uuid.UUID
    venue: str
    exchange_time_ns: int | None = None


class OrderAccepted(OrderEvent):
    type: Literal["order.accepted"] = "order.accepted"
    venue_order_id: str


class OrderRejected(OrderEvent):
    type: Literal["order.rejected"] = "order.rejected"
    reason: str


class OrderFillEvent(OrderEvent):
    instrument: str
    side: Side
    price: Amount
    quantity: Amount
    fee: Amount
    fee_currency: str
    liquidity: Liquidity
    venue_trade_id: str
    cumulative_quantity: Amount
    leaves_quantity: Amount


class OrderPartiallyFilled(OrderFillEvent):
    type: Literal["order.partially_filled"] = "order.partially_filled"


class OrderFilled(OrderFillEvent):
    type: Literal["order.filled"] = "order.filled"


class OrderCanceled(OrderEvent):
    type: Literal["order.canceled"] = "order.canceled"
    reason: str = ""


class OrderExpired(OrderEvent):
    type: Literal["order.expired"] = "order.expired"


class OrderTransitionRefused(OrderEvent):
    """An event that is not valid in the order's state: flagged, never applied, never a crash."""

    type: Literal["order.transition_refused"] = "order.transition_refused"
    from_state: str
    attempted: str
    offending_event_id: uuid.UUID
    reason: str = ""
    """Why, when the state alone does not say it (e.g. an overfill); empty for a plain invalid transition."""
