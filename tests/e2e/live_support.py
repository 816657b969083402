"""The local exchange for the live trading tests: market data and metadata from `tests.local_exchange`, the
order desk of `tests/local_exchange/orders.py` on every venue, and ccxt clients pointed at it the way
`cse trade --api-base` points them (`adapters.exchanges.factory`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from adapters.exchanges.factory import create_exchange
from tests.local_exchange import LocalExchange
from tests.local_exchange.orders import OrderDesk, install_orders

T = TypeVar("T")
VENUES = ("binance", "binanceusdm", "bybit", "kraken")
CREDENTIALS = {"apiKey": "local-key", "secret": "local-secret"}
SECRETS = {"kraken": "bG9jYWwtc2VjcmV0"}
"""Kraken's API secret is base64 (ccxt decodes it to sign): "local-secret", encoded."""
ACCOUNT_OPTIONS = {"bybit": {"enableUnifiedMargin": False, "enableUnifiedAccount": True}}
"""What ccxt would otherwise ask Bybit's account endpoints (a unified trading account)."""


@contextmanager
def local_exchange(desk: OrderDesk, message_limit: int = 200) -> Iterator[LocalExchange]:
    with LocalExchange(
        venues=VENUES, installers=[install_orders(desk)], message_limit=message_limit
    ) as exchange:
        yield exchange


async def client(
    exchange: LocalExchange, exchange_id: str, *, timeout_ms: int = 1500, streams: bool = False
) -> Any:
    """A ccxt client with keys on the local exchange, markets loaded; `streams`: ccxt.pro (websockets)."""
    ccxt_client = create_exchange(exchange_id, websocket=streams, api_base=exchange.api_base(exchange_id),
                                  credentials={**CREDENTIALS, "secret": SECRETS.get(exchange_id, CREDENTIALS["secret"])}, rate_limit=False,
                                  options=ACCOUNT_OPTIONS.get(exchange_id))  # fmt: skip
    ccxt_client.timeout = timeout_ms
    ccxt_client.has["fetchCurrencies"] = (
        False  # Bybit loads currencies from a signed endpoint whatever its options
    )
    await ccxt_client.load_markets()
    return ccxt_client


def on_server(exchange: LocalExchange, exchange_id: str, action: Callable[[], T]) -> T:
    """Run `action` (a desk change: a fill, a dropped stream) on the server's thread, as the exchange would."""
    result: T = exchange.venue(exchange_id).call(action)
    return result
