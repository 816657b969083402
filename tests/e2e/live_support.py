"""A loopback exchange for the live venue tests: market metadata and server time (Binance BTCUSDT spot and
USD-M, Bybit v5 spot BTCUSDT, in the venues' documented formats) plus the order desk of
`tests/local_exchange/orders.py`, and a ccxt async client pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import ccxt.async_support as ccxt
from aiohttp import web
from ccxt import pro as ccxt_pro

from tests.local_exchange.orders import BinanceOrders, BybitOrders, OrderDesk

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

BYBIT_BTC = {
    "symbol": "BTCUSDT", "baseCoin": "BTC", "quoteCoin": "USDT", "innovation": "0", "status": "Trading",
    "marginTrading": "utaOnly",
    "lotSizeFilter": {"basePrecision": "0.000001", "quotePrecision": "0.00000001", "minOrderQty": "0.000048",
                      "maxOrderQty": "71.73956243", "minOrderAmt": "1", "maxOrderAmt": "4000000"},
    "priceFilter": {"tickSize": "0.01"},
}  # fmt: skip

MARKETS_ONLY = {
    # ccxt options that keep load_markets to the one market type served, with no account calls
    "binance": {"fetchCurrencies": False, "fetchMargins": False, "fetchMarkets": {"types": ["spot"]}},
    "binanceusdm": {"fetchCurrencies": False, "fetchMargins": False, "fetchMarkets": {"types": ["linear"]}},
    "bybit": {
        "fetchCurrencies": False,
        "enableUnifiedMargin": False,
        "enableUnifiedAccount": True,
        "fetchMarkets": {"types": ["spot"]},
    },
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

    async def binance_time(request: web.Request) -> web.Response:
        return web.json_response({"serverTime": desk.now_ms()})

    async def bybit_info(request: web.Request) -> web.Response:
        listed = [BYBIT_BTC] if request.query.get("category") == "spot" else []
        return web.json_response(
            {
                "retCode": 0,
                "retMsg": "OK",
                "time": desk.now_ms(),
                "retExtInfo": {},
                "result": {"category": request.query.get("category"), "list": listed, "nextPageCursor": ""},
            }
        )

    async def bybit_time(request: web.Request) -> web.Response:
        now = desk.now_ms()
        return web.json_response(
            {
                "retCode": 0,
                "retMsg": "OK",
                "retExtInfo": {},
                "time": now,
                "result": {"timeSecond": str(now // 1000), "timeNano": str(now * 1_000_000)},
            }
        )

    app = web.Application()
    app.router.add_get("/api/v3/exchangeInfo", spot_info)
    app.router.add_get("/fapi/v1/exchangeInfo", usdm_info)
    app.router.add_get("/api/v3/time", binance_time)
    app.router.add_get("/fapi/v1/time", binance_time)
    app.router.add_get("/v5/market/instruments-info", bybit_info)
    app.router.add_get("/v5/market/time", bybit_time)
    BinanceOrders(desk).register(app)
    BybitOrders(desk).register(app)
    return app


def localized(exchange: ccxt.Exchange, base: str) -> ccxt.Exchange:
    """Every REST URL of the exchange on `base`, paths kept (the notes' `localize`)."""

    def rewrite(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: rewrite(v) for k, v in value.items()}
        if isinstance(value, str) and "://" in value:
            scheme_host, _, path = value.partition("://")[2].partition("/")
            root = base.replace("http://", "ws://") if value.startswith("ws") else base
            return (f"{root}/{path}" if path else root) if scheme_host else value
        return value

    exchange.urls["api"] = rewrite(exchange.urls["api"])
    return exchange


@asynccontextmanager
async def local_exchange(desk: OrderDesk, exchange_id: str = "binance", timeout_ms: int = 1500, *,
                         streams: bool = False) -> AsyncIterator[ccxt.Exchange]:  # fmt: skip
    """`streams`: a ccxt.pro client, which watches the user-data websocket (served for Bybit)."""
    runner = web.AppRunner(exchange_app(desk))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    exchange = getattr(ccxt_pro if streams else ccxt, exchange_id)(
        {"apiKey": "local-key", "secret": "local-secret", "enableRateLimit": False, "timeout": timeout_ms}
    )
    exchange.options.update(MARKETS_ONLY[exchange_id])
    exchange.has["fetchCurrencies"] = False  # Bybit loads currencies whatever its options say
    localized(exchange, f"http://127.0.0.1:{port}")
    try:
        await exchange.load_markets()
        yield exchange
    finally:
        await exchange.close()
        await runner.cleanup()
