"""ccxt clients for the exchanges we trade: `ccxt.pro` (websockets) for market data, `ccxt.async_support` for
REST, both pointed at `api_base` when given (see `api_base`).

Exchanges are named by their ccxt id; each id is one market of one venue, with the venue name the event log
uses (the file importers use the same names, so a recorded session and an imported one line up):

| ccxt id | venue | markets loaded |
|---|---|---|
| binance | binance-spot | spot |
| binanceusdm | binance-usdm | USD-M futures |
| binancecoinm | binance-coinm | COIN-M futures |
| bybit | bybit-spot | spot |
| kraken | kraken-spot | spot |
| coinbase | coinbase-spot | spot (Advanced Trade) |

Loading only the markets we use keeps `load_markets` to one or two requests (ccxt's Binance otherwise also
loads the COIN-M and USD-M lists). `credentials` are ccxt's own keys (`apiKey`, `secret`, `password`) from
`adapters.exchanges.credentials`; None means public endpoints only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro

from adapters.exchanges.api_base import rewrite_urls


@dataclass(frozen=True, slots=True)
class ExchangeSpec:
    exchange_id: str
    venue: str
    options: Mapping[str, Any]


EXCHANGES: dict[str, ExchangeSpec] = {
    spec.exchange_id: spec
    for spec in (
        ExchangeSpec("binance", "binance-spot", {"fetchMarkets": {"types": ["spot"]}}),
        ExchangeSpec("binanceusdm", "binance-usdm", {"fetchMarkets": {"types": ["linear"]}}),
        ExchangeSpec("binancecoinm", "binance-coinm", {"fetchMarkets": {"types": ["inverse"]}}),
        ExchangeSpec("bybit", "bybit-spot", {"fetchMarkets": {"types": ["spot"]}}),
        ExchangeSpec("kraken", "kraken-spot", {}),
        ExchangeSpec("coinbase", "coinbase-spot", {}),
    )
}


class UnknownExchange(ValueError):
    """An exchange id we do not support; the message lists those we do."""


def exchange_spec(exchange_id: str) -> ExchangeSpec:
    try:
        return EXCHANGES[exchange_id]
    except KeyError:
        raise UnknownExchange(
            f"unknown exchange {exchange_id!r}: supported are {', '.join(EXCHANGES)}"
        ) from None


def create_exchange(
    exchange_id: str,
    *,
    websocket: bool,
    api_base: str | None = None,
    credentials: Mapping[str, str] | None = None,
    rate_limit: bool = True,
    options: Mapping[str, Any] | None = None,
) -> Any:
    """A ccxt client: `ccxt.pro` when `websocket`, else `ccxt.async_support`. Close it with `await x.close()`."""
    spec = exchange_spec(exchange_id)
    module = ccxt_pro if websocket else ccxt_async
    config: dict[str, Any] = {"enableRateLimit": rate_limit}
    if credentials:
        config.update(credentials)
    exchange = getattr(module, exchange_id)(config)
    exchange.options.update(spec.options)
    if credentials and exchange_id.startswith("binance"):
        # with keys, Binance's load_markets also calls signed wallet endpoints we do not use
        exchange.options["fetchCurrencies"] = False
        exchange.options["fetchMargins"] = False
    if options:
        exchange.options.update(options)
    if api_base is not None:
        exchange.urls["api"] = rewrite_urls(exchange.urls["api"], api_base)
    return exchange
