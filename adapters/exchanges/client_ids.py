"""Client order ids derived from the order id: the same command always names the same exchange order.

A retry after a timeout sends the same client id, and looks it up first, so it can never become a second
order. Each exchange bounds the id's length and characters; the rule per ccxt exchange id is here, checked
against the venues' documentation:
* Binance spot and USD-M `newClientOrderId`: `^[.A-Z:/a-z0-9_-]{1,36}$`;
* Bybit v5 `orderLinkId`: up to 36 of letters, digits, `-` and `_`;
* OKX `clOrdId`: 1 to 32 letters and digits;
* Coinbase Advanced Trade `client_order_id` and Kraken `cl_ord_id`: a UUID is the documented form.
"""

from __future__ import annotations

import uuid

PREFIX = "cse"
"""Marks the orders this system placed (an operator's manual orders on the same account never match)."""

_HEX_LIMIT = {"binance": 36, "binanceusdm": 36, "binancecoinm": 36, "bybit": 36, "okx": 32}
_UUID_FORM = frozenset({"coinbase", "coinbaseadvanced", "kraken", "krakenfutures"})


def client_order_id(exchange_id: str, order_id: uuid.UUID) -> str:
    """The client order id of `order_id` on the ccxt exchange `exchange_id`."""
    if exchange_id in _UUID_FORM:
        return str(order_id)
    limit = _HEX_LIMIT.get(exchange_id)
    if limit is None:
        raise ValueError(f"no client order id rule for exchange {exchange_id!r} (known: "
                         f"{', '.join(sorted(_HEX_LIMIT.keys() | _UUID_FORM))})")  # fmt: skip
    # 'cse' + the UUID's hex (35 characters): truncated only where the venue allows fewer (OKX keeps 116 bits).
    return (PREFIX + order_id.hex)[:limit]


FOUND_IN_ORDER_LISTS = frozenset({"kraken"})
"""Exchanges whose single-order query takes the exchange's order id only (Kraken QueryOrders: `txid`
required; its `userref` filter is an int32, never our id): an order is looked up by client id in the open,
then the closed orders (OpenOrders / ClosedOrders filter `cl_ord_id`)."""


def by_client_id(exchange_id: str, client_id: str) -> dict[str, object]:
    """The ccxt params that make fetch_order / cancel_order address the order by its client id."""
    if exchange_id == "bybit":  # v5 `orderLinkId`; fetchOrder on a unified account asks to acknowledge that
        return {"orderLinkId": client_id, "acknowledged": True}  # it only sees the last 500 orders
    return {"clientOrderId": client_id}  # (ccxt sends it as Kraken's `cl_ord_id`)
