"""The order rules a venue enforces from an instrument's specification (`InstrumentDefined`), with the
venue's own rejection texts (Binance's error messages, then our detail in parentheses).

Binance: PRICE_FILTER (price a multiple of the tick size), LOT_SIZE / MARKET_LOT_SIZE (quantity a multiple
of the step), NOTIONAL / MIN_NOTIONAL (price x quantity at least the minimum; a market order is valued at
the price it would take first; reduce-only orders are exempt on the futures venues, as there), LIMIT_MAKER /
GTX (a post-only order that would take is refused: "Order would immediately match and take.").
"""

from __future__ import annotations

from decimal import Decimal

from domain.events import InstrumentDefined, PlaceOrder
from domain.instruments import notional

_ZERO = Decimal(0)

UNKNOWN_SYMBOL = "Invalid symbol."
WOULD_TAKE = "Order would immediately match and take."
REDUCE_ONLY_REJECTED = "ReduceOnly Order is rejected."


def filter_failure(spec: InstrumentDefined, order: PlaceOrder, price: Decimal | None) -> str:
    """Why the venue refuses `order` by the instrument's filters ('' if it passes). `price` is the limit
    price, or for a market order the price it would take first (None: no price known, notional unchecked)."""
    if (
        order.limit_price is not None
        and spec.tick_size > _ZERO
        and order.limit_price % spec.tick_size != _ZERO
    ):
        return f"Filter failure: PRICE_FILTER (price {order.limit_price} is not a multiple of tick size {spec.tick_size})"
    if spec.lot_size > _ZERO and order.quantity % spec.lot_size != _ZERO:
        return (
            f"Filter failure: LOT_SIZE (quantity {order.quantity} is not a multiple of step {spec.lot_size})"
        )
    if spec.min_notional > _ZERO and price is not None and not order.reduce_only:
        value = notional(spec, order.quantity, price)
        if value < spec.min_notional:
            return f"Filter failure: NOTIONAL (notional {value} is below the minimum {spec.min_notional})"
    return ""


def floor_to_lot(spec: InstrumentDefined, quantity: Decimal) -> Decimal:
    """`quantity` rounded down to the lot size (fills are whole lots)."""
    if spec.lot_size <= _ZERO:
        return quantity
    return quantity - quantity % spec.lot_size
