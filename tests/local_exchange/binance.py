"""Binance spot (`binance`), USD-M (`binanceusdm`) and COIN-M futures (`binancecoinm`): market metadata, REST depth snapshots and the
websocket streams, played from a recorded capture byte for byte.

REST: `/api/v3/exchangeInfo`, `/api/v3/depth`, `/api/v3/time` (spot); the same under `/fapi/v1` (USD-M) and
`/dapi/v1` (COIN-M). Metadata matches `adapters/instruments/specs.toml`.
Websocket: `/stream` and `/stream/<n>` (combined envelopes `{"stream","data"}`, as recorded), subscribing with
`{"method":"SUBSCRIBE","params":[...],"id":n}` or `/stream?streams=a/b`. (The raw `/ws` endpoint is not served.)

The capture's REST snapshot line is where the recorder that made it received its snapshot: the playback waits
there until a client asked for a depth snapshot (at most `SNAPSHOT_WAIT_S`), and a depth request made before
the playback reached it is answered when it does, with the recorded snapshot. Later depth requests (a resync)
get the true book as of the last played update.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from tests.local_exchange.capture import CaptureLine, TrueBook, read_capture
from tests.local_exchange.playback import Outgoing, Playback, Subscriber, dumps
from tests.local_exchange.server import VenueServer

SNAPSHOT_WAIT_S = 5.0

_SPOT_BTC = {
    "symbol": "BTCUSDT", "status": "TRADING", "baseAsset": "BTC", "baseAssetPrecision": 8, "quoteAsset": "USDT",
    "quotePrecision": 8, "quoteAssetPrecision": 8, "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
    "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
    "icebergAllowed": True, "ocoAllowed": True, "otoAllowed": True, "quoteOrderQtyMarketAllowed": True,
    "allowTrailingStop": True, "cancelReplaceAllowed": True, "isSpotTradingAllowed": True,
    "isMarginTradingAllowed": False,
    "filters": [
        {"filterType": "PRICE_FILTER", "minPrice": "0.01000000", "maxPrice": "1000000.00000000", "tickSize": "0.01000000"},
        {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000", "stepSize": "0.00001000"},
        {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": True,
         "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
        {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000", "maxQty": "100.0", "stepSize": "0.00000000"},
    ],
    "permissions": [], "permissionSets": [["SPOT"]], "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
    "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
}  # fmt: skip
_USDM_BTC = {
    "symbol": "BTCUSDT", "pair": "BTCUSDT", "contractType": "PERPETUAL", "deliveryDate": 4133404800000,
    "onboardDate": 1569398400000, "status": "TRADING", "maintMarginPercent": "2.5000",
    "requiredMarginPercent": "5.0000", "baseAsset": "BTC", "quoteAsset": "USDT", "marginAsset": "USDT",
    "pricePrecision": 2, "quantityPrecision": 3, "baseAssetPrecision": 8, "quotePrecision": 8,
    "underlyingType": "COIN", "underlyingSubType": ["PoW"], "settlePlan": 0, "triggerProtect": "0.0500",
    "liquidationFee": "0.012500", "marketTakeBound": "0.05",
    "filters": [
        {"filterType": "PRICE_FILTER", "minPrice": "556.80", "maxPrice": "4529764", "tickSize": "0.10"},
        {"filterType": "LOT_SIZE", "minQty": "0.001", "maxQty": "1000", "stepSize": "0.001"},
        {"filterType": "MARKET_LOT_SIZE", "minQty": "0.001", "maxQty": "120", "stepSize": "0.001"},
        {"filterType": "MAX_NUM_ORDERS", "limit": 200},
        {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
        {"filterType": "MIN_NOTIONAL", "notional": "100"},
        {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500", "multiplierDown": "0.9500", "multiplierDecimal": "4"},
    ],
    "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"],
    "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
}  # fmt: skip


_COINM_BTC = {
    "symbol": "BTCUSD_PERP", "pair": "BTCUSD", "contractType": "PERPETUAL", "deliveryDate": 4133404800000,
    "onboardDate": 1597042800000, "contractStatus": "TRADING", "contractSize": 100, "marginAsset": "BTC",
    "maintMarginPercent": "2.5000", "requiredMarginPercent": "5.0000", "baseAsset": "BTC", "quoteAsset": "USD",
    "pricePrecision": 1, "quantityPrecision": 0, "baseAssetPrecision": 8, "quotePrecision": 8,
    "equalQtyPrecision": 4, "triggerProtect": "0.0500", "underlyingType": "COIN", "underlyingSubType": ["PoW"],
    "liquidationFee": "0.015000", "marketTakeBound": "0.05",
    "filters": [
        {"filterType": "PRICE_FILTER", "minPrice": "1000", "maxPrice": "4520958", "tickSize": "0.1"},
        {"filterType": "LOT_SIZE", "minQty": "1", "maxQty": "1000000", "stepSize": "1"},
        {"filterType": "MARKET_LOT_SIZE", "minQty": "1", "maxQty": "60000", "stepSize": "1"},
        {"filterType": "MAX_NUM_ORDERS", "limit": 200},
        {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500", "multiplierDown": "0.9500", "multiplierDecimal": "4"},
    ],
    "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"],
    "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
}  # fmt: skip
MARKETS = {"spot": ("/api/v3", _SPOT_BTC), "usdm": ("/fapi/v1", _USDM_BTC), "coinm": ("/dapi/v1", _COINM_BTC)}
"""Binance market -> (REST prefix, its one symbol's exchangeInfo entry)."""


class BinanceFeed:
    """Plays a Binance capture as is; keeps the true book of its one symbol for REST snapshots."""

    def __init__(self, lines: list[CaptureLine]) -> None:
        self.lines = lines
        self.book = TrueBook()
        self.depth_topics = {line.message["stream"] for line in lines if line.kind == "depth"}
        self.snapshot_served = asyncio.Event()
        self.snapshot_played = asyncio.Event()
        self.recorded_snapshot: dict[str, Any] = {}

    def source_length(self) -> int:
        return len(self.lines)

    async def before(self, index: int, playback: Playback) -> None:
        line = self.lines[index]
        if line.is_snapshot and not self.book.ready and any(map(playback.subscribed, self.depth_topics)):
            try:
                await asyncio.wait_for(self.snapshot_served.wait(), SNAPSHOT_WAIT_S)
            except TimeoutError:
                pass

    def play(self, index: int) -> list[Outgoing]:
        line = self.lines[index]
        if line.is_snapshot:
            if not self.book.ready:
                self.book.reset(line.message)
                self.recorded_snapshot = line.message
                self.snapshot_played.set()
            return []
        stream = line.message["stream"]
        depth = line.kind == "depth"
        if depth:
            self.book.apply(line.message["data"])
        return [Outgoing(stream, line.text, depth=depth)]

    async def depth(self, limit: int) -> dict[str, Any]:
        if not self.book.ready:
            # answered with the recorded snapshot, as of the moment the playback reaches it
            self.snapshot_served.set()
            await asyncio.wait_for(self.snapshot_played.wait(), SNAPSHOT_WAIT_S * 2)
            recorded = self.recorded_snapshot
            return {"lastUpdateId": recorded["lastUpdateId"], "bids": recorded["bids"][:limit],
                    "asks": recorded["asks"][:limit]}  # fmt: skip
        bids, asks = self.book.top(limit)
        return {"lastUpdateId": self.book.last_update_id, "bids": [list(b) for b in bids],
                "asks": [list(a) for a in asks]}  # fmt: skip


def install_binance(venue: VenueServer, capture: Path, *, market: str, limit: int | None) -> None:
    feed = BinanceFeed(read_capture(capture, limit))
    playback = Playback(feed, venue.faults)
    venue.feed = playback
    prefix, symbol = MARKETS[market]
    futures = market != "spot"

    async def exchange_info(request: web.Request) -> web.StreamResponse:
        now = int(time.time() * 1000)
        return web.json_response({"timezone": "UTC", "serverTime": now, "rateLimits": [], "exchangeFilters": [],
                                  "assets": [], "symbols": [symbol]})  # fmt: skip

    async def server_time(request: web.Request) -> web.StreamResponse:
        return web.json_response({"serverTime": int(time.time() * 1000)})

    async def depth(request: web.Request) -> web.StreamResponse:
        if request.query.get("symbol") != symbol["symbol"]:
            return web.json_response({"code": -1121, "msg": "Invalid symbol."}, status=400)
        if not any(line.is_snapshot for line in feed.lines):
            return web.json_response({"code": -1, "msg": "local exchange: this capture holds no REST snapshot, "
                                      "so it cannot answer one (serve a capture that starts with one)"}, status=503)  # fmt: skip
        body = await feed.depth(int(request.query.get("limit", "100")))
        if futures:
            now = int(time.time() * 1000)
            body = {
                "lastUpdateId": body["lastUpdateId"],
                "E": now,
                "T": now,
                "bids": body["bids"],
                "asks": body["asks"],
            }
        return web.Response(text=dumps(body), content_type="application/json")

    async def websocket(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        subscriber = Subscriber(ws)
        if request.query.get("streams"):
            subscriber.topics.update(request.query["streams"].split("/"))
            playback.subscribe(subscriber)
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                req = _json(msg.data)
                method = req.get("method")
                if method == "SUBSCRIBE":
                    subscriber.topics.update(req.get("params", []))
                    await ws.send_str(dumps({"result": None, "id": req.get("id")}))
                    playback.subscribe(subscriber)
                elif method == "UNSUBSCRIBE":
                    subscriber.topics.difference_update(req.get("params", []))
                    await ws.send_str(dumps({"result": None, "id": req.get("id")}))
                else:
                    await ws.send_str(dumps({"error": {"code": 2, "msg": f"Invalid request {method!r}"},
                                             "id": req.get("id")}))  # fmt: skip
        finally:
            playback.leave(subscriber)
        return ws

    if not combined_payloads_ok(feed):
        raise ValueError(f"{capture}: not a Binance combined-stream capture")
    venue.app.router.add_get(f"{prefix}/exchangeInfo", exchange_info)
    venue.app.router.add_get(f"{prefix}/time", server_time)
    venue.app.router.add_get(f"{prefix}/depth", depth)
    for path in ("/stream", "/stream/{n}"):
        venue.app.router.add_get(path, websocket)


def combined_payloads_ok(feed: BinanceFeed) -> bool:
    return all(line.is_snapshot or "stream" in line.message for line in feed.lines)


def _json(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
