"""A loopback exchange for the live venue tests: Binance's market metadata (BTCUSDT spot and USD-M, the
filters of the real exchangeInfo) plus the order desk of `tests/local_exchange/orders.py`, and a ccxt async
client pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import ccxt.async_support as ccxt
from aiohttp import web

from tests.local_exchange.orders import OrderDesk

_FILTERS = [
    {"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "1000000", "tickSize": "0.01"},
    {"filterType": "LOT_SIZE", "minQty": "0.00001", "maxQty": "9000", "stepSize": "0.00001"},
]
SPOT_BTC = {
    "symbol": "BTCUSDT",
    "status": "TRADING",
    "baseAsset": "BTC",
    "quoteAsset": "USDT",
    "baseAssetPrecision": 8,
    "quotePrecision": 8,
    "quoteAssetPrecision": 8,
    "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
    "isSpotTradingAllowed": True,
    "isMarginTradingAllowed": False,
    "filters": _FILTERS,
    "permissions": [],
    "permissionSets": [["SPOT"]],
}
USDM_BTC = {
    "symbol": "BTCUSDT",
    "pair": "BTCUSDT",
    "contractType": "PERPETUAL",
    "deliveryDate": 4133404800000,
    "onboardDate": 1569398400000,
    "status": "TRADING",
    "baseAsset": "BTC",
    "quoteAsset": "USDT",
    "marginAsset": "USDT",
    "pricePrecision": 2,
    "quantityPrecision": 3,
    "baseAssetPrecision": 8,
    "quotePrecision": 8,
    "underlyingType": "COIN",
    "settlePlan": 0,
    "triggerProtect": "0.0500",
    "filters": [dict(_FILTERS[0], tickSize="0.10"), dict(_FILTERS[1], stepSize="0.001", minQty="0.001")],
    "orderTypes": ["LIMIT", "MARKET"],
    "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
}


def exchange_app(desk: OrderDesk) -> web.Application:
    async def spot_info(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "timezone": "UTC",
                "serverTime": desk.now_ms(),
                "rateLimits": [],
                "exchangeFilters": [],
                "symbols": [SPOT_BTC],
            }
        )

    async def usdm_info(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "timezone": "UTC",
                "serverTime": desk.now_ms(),
                "rateLimits": [],
                "exchangeFilters": [],
                "assets": [],
                "symbols": [USDM_BTC],
            }
        )

    app = web.Application()
    app.router.add_get("/api/v3/exchangeInfo", spot_info)
    app.router.add_get("/fapi/v1/exchangeInfo", usdm_info)
    desk.register(app)
    return app


def localized(exchange: ccxt.Exchange, base: str) -> ccxt.Exchange:
    """Every REST URL of the exchange on `base`, paths kept (the notes' `localize`)."""

    def rewrite(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: rewrite(v) for k, v in value.items()}
        if isinstance(value, str) and "://" in value:
            scheme_host, _, path = value.partition("://")[2].partition("/")
            return f"{base}/{path}" if scheme_host else value
        return value

    exchange.urls["api"] = rewrite(exchange.urls["api"])
    return exchange


@asynccontextmanager
async def local_binance(desk: OrderDesk, exchange_id: str = "binance", timeout_ms: int = 1500
                        ) -> AsyncIterator[ccxt.Exchange]:  # fmt: skip
    runner = web.AppRunner(exchange_app(desk))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    exchange = getattr(ccxt, exchange_id)(
        {"apiKey": "local-key", "secret": "local-secret", "enableRateLimit": False, "timeout": timeout_ms}
    )
    exchange.options.update(
        fetchCurrencies=False,
        fetchMargins=False,
        fetchMarkets={"types": ["spot"] if exchange_id == "binance" else ["linear"]},
    )
    localized(exchange, f"http://127.0.0.1:{port}")
    try:
        await exchange.load_markets()
        yield exchange
    finally:
        await exchange.close()
        await runner.cleanup()
