"""Kraken spot (`kraken`), from its documented formats (docs.kraken.com: REST `AssetPairs`/`Assets`, websocket
v2), playing the Binance USD-M capture's market as BTC/USDT (Kraken's XBTUSDT: tick 0.1, lot 1e-8).

REST: `/0/public/AssetPairs`, `/0/public/Assets`, `/0/public/Time`, and Kraken's own recorded responses
(`nautilus_trader/crates/adapters/kraken/test_data/`, XBTUSDT, November 2025) for `/0/public/Depth`,
`/0/public/Trades` and `/0/public/OHLC`.
Websocket `/v2`: `{"method":"subscribe","params":{"channel":"book"|"trade"|"ticker","symbol":["BTC/USDT"],
"depth":10}}`. Book: a `snapshot`, then `update`s, each with the CRC32 `checksum` of the top 10 asks then
bids (price and quantity printed with the pair's decimals, '.' and leading zeros removed). Levels pushed out
of the subscribed depth are not sent: the client truncates its book to the depth, as Kraken specifies.
Numbers are JSON numbers. Trades: `side` is the taker's side. Ticker: `bid`/`ask` with quantities (bbo).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from adapters.exchanges.feeds.kraken import checksum
from tests.local_exchange.capture import SHARED_DATA, read_capture
from tests.local_exchange.playback import Outgoing, Playback, Subscriber, dumps
from tests.local_exchange.server import VenueServer
from tests.local_exchange.translated import Levels, TranslatedMarket

SYMBOL = "BTC/USDT"
DEPTH = 10
PRICE_PLACES, QTY_PLACES = 1, 8
KRAKEN_RECORDED = SHARED_DATA / "nautilus_trader/crates/adapters/kraken/test_data"
RECORDED_RESPONSES = {"Depth": "http_order_book.json", "Trades": "http_trades.json", "OHLC": "http_ohlc.json"}

ASSET_PAIRS = {
    "XBTUSDT": {
        "altname": "XBTUSDT", "wsname": "XBT/USDT", "aclass_base": "currency", "base": "XXBT",
        "aclass_quote": "currency", "quote": "USDT", "lot": "unit", "cost_decimals": 5, "pair_decimals": 1,
        "lot_decimals": 8, "lot_multiplier": 1, "leverage_buy": [2, 3], "leverage_sell": [2, 3],
        "fees": [[0, 0.4], [10000, 0.35], [50000, 0.24], [100000, 0.22], [250000, 0.2]],
        "fees_maker": [[0, 0.25], [10000, 0.2], [50000, 0.14], [100000, 0.12], [250000, 0.1]],
        "fee_volume_currency": "ZUSD", "margin_call": 80, "margin_stop": 40, "ordermin": "0.00005",
        "costmin": "0.5", "tick_size": "0.1", "status": "online",
    }
}  # fmt: skip
ASSETS = {
    "XXBT": {"aclass": "currency", "altname": "XBT", "decimals": 10, "display_decimals": 5, "collateral_value": 1, "status": "enabled"},
    "USDT": {"aclass": "currency", "altname": "USDT", "decimals": 8, "display_decimals": 4, "collateral_value": 1, "status": "enabled"},
}  # fmt: skip


def book_checksum(bids: Levels, asks: Levels) -> int:
    """Kraken's checksum of a book side by side (the client's implementation, checked against Kraken's
    documented example in tests/unit/test_local_exchange.py)."""
    return checksum(sorted(bids, reverse=True), sorted(asks), PRICE_PLACES, QTY_PLACES)


def _number(value: Decimal, places: int) -> Any:
    return _Raw(f"{value:.{places}f}")


class _Raw(str):
    """A decimal written into the JSON text as a number, digit for digit."""


def _dumps(value: Any) -> str:
    marker = "~raw~"
    text = dumps(_mark(value, marker))
    return text.replace(f'"{marker}', "").replace(f'{marker}"', "")


def _mark(value: Any, marker: str) -> Any:
    if isinstance(value, _Raw):
        return f"{marker}{value}{marker}"
    if isinstance(value, dict):
        return {k: _mark(v, marker) for k, v in value.items()}
    if isinstance(value, list):
        return [_mark(v, marker) for v in value]
    return value


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


def _levels(levels: Levels) -> list[dict[str, Any]]:
    return [{"price": _number(p, PRICE_PLACES), "qty": _number(q, QTY_PLACES)} for p, q in levels]


class KrakenFeed:
    def __init__(self, market: TranslatedMarket) -> None:
        self.market = market
        self.corrupt_checksum_pending = False

    def source_length(self) -> int:
        return len(self.market.lines)

    async def before(self, index: int, playback: Playback) -> None:
        return None

    def _checksum(self) -> int:
        bids, asks = self.market.view
        return book_checksum(list(bids.items()), list(asks.items()))

    def snapshot(self) -> Outgoing:
        bids, asks = self.market.view
        data = {"symbol": SYMBOL, "bids": _levels(sorted(bids.items(), reverse=True)),
                "asks": _levels(sorted(asks.items())), "checksum": self._checksum()}  # fmt: skip
        return Outgoing(
            f"book:{SYMBOL}", _dumps({"channel": "book", "type": "snapshot", "data": [data]}), depth=True
        )

    def play(self, index: int) -> list[Outgoing]:
        line = self.market.lines[index]
        data = line.message.get("data", {})
        ms = data.get("E") or data.get("T") or line.receive_ns // 1_000_000
        if line.kind == "trade":
            trade = {"symbol": SYMBOL, "side": "sell" if data["m"] else "buy",
                     "price": _number(Decimal(data["p"]), PRICE_PLACES), "qty": _number(Decimal(data["q"]), QTY_PLACES),
                     "ord_type": "market", "trade_id": data["t"], "timestamp": _iso(data["T"])}  # fmt: skip
            return [
                Outgoing(f"trade:{SYMBOL}", _dumps({"channel": "trade", "type": "update", "data": [trade]}))
            ]
        if line.kind == "bookTicker":
            return []
        changes = self.market.move(line, delete_pushed_out=False)
        if changes is None:
            return []
        crc = self._checksum()
        if self.corrupt_checksum_pending:
            self.corrupt_checksum_pending = False
            crc ^= 1
        update = {"symbol": SYMBOL, "bids": _levels(changes[0][::-1]), "asks": _levels(changes[1]),
                  "checksum": crc, "timestamp": _iso(ms)}  # fmt: skip
        out = [
            Outgoing(
                f"book:{SYMBOL}", _dumps({"channel": "book", "type": "update", "data": [update]}), depth=True
            )
        ]
        bids, asks = self.market.view
        if bids and asks:
            (bid, bid_qty), (ask, ask_qty) = max(bids.items()), min(asks.items())
            ticker = {"symbol": SYMBOL, "bid": _number(bid, PRICE_PLACES), "bid_qty": _number(bid_qty, QTY_PLACES),
                      "ask": _number(ask, PRICE_PLACES), "ask_qty": _number(ask_qty, QTY_PLACES)}  # fmt: skip
            out.append(
                Outgoing(
                    f"ticker:{SYMBOL}", _dumps({"channel": "ticker", "type": "update", "data": [ticker]})
                )
            )
        return out


def install_kraken(venue: VenueServer, capture: Path, *, limit: int | None) -> None:
    feed = KrakenFeed(TranslatedMarket(read_capture(capture, limit), DEPTH))
    playback = Playback(feed, venue.faults)
    venue.feed = playback
    venue.state["kraken_feed"] = feed

    def result(value: Any) -> web.StreamResponse:
        return web.json_response({"error": [], "result": value})

    async def asset_pairs(request: web.Request) -> web.StreamResponse:
        return result(ASSET_PAIRS)

    async def assets(request: web.Request) -> web.StreamResponse:
        return result(ASSETS)

    async def server_time(request: web.Request) -> web.StreamResponse:
        now = int(time.time())
        return result(
            {"unixtime": now, "rfc1123": time.strftime("%a, %d %b %y %H:%M:%S +0000", time.gmtime(now))}
        )

    def recorded(name: str) -> Any:
        async def respond(request: web.Request) -> web.StreamResponse:
            if request.query.get("pair") not in ("XBTUSDT", "XBT/USDT", None):
                return web.json_response({"error": ["EQuery:Unknown asset pair"]})
            return web.Response(text=(KRAKEN_RECORDED / name).read_text(), content_type="application/json")

        return respond

    async def websocket(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        subscriber = Subscriber(ws)
        await ws.send_str(dumps({"channel": "status", "type": "update", "data": [
            {"version": "2.0.0", "system": "online", "api_version": "v2", "connection_id": 1}]}))  # fmt: skip
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                req = json.loads(msg.data)
                method, params = req.get("method"), req.get("params") or {}
                if method == "ping":
                    await ws.send_str(dumps({"method": "pong", "req_id": req.get("req_id")}))
                    continue
                channel = params.get("channel")
                symbols = params.get("symbol") or []
                ok = (
                    method in ("subscribe", "unsubscribe")
                    and channel in ("book", "trade", "ticker")
                    and symbols == [SYMBOL]
                )
                ok = ok and (channel != "book" or params.get("depth", 10) == DEPTH)
                reply: dict[str, Any] = {"method": method, "success": ok, "req_id": req.get("req_id")}
                if ok:
                    reply["result"] = {"channel": channel, "symbol": SYMBOL, "snapshot": True}
                else:
                    reply["error"] = (
                        f"unsupported request (serving {SYMBOL} book depth {DEPTH}, trade, ticker)"
                    )
                await ws.send_str(dumps(reply))
                if not ok:
                    continue
                topic = f"{channel}:{SYMBOL}"
                if method == "unsubscribe":
                    subscriber.topics.discard(topic)
                    continue
                subscriber.topics.add(topic)
                if channel == "book":
                    await playback.send_to(subscriber, [feed.snapshot()])
                playback.subscribe(subscriber)
        finally:
            playback.leave(subscriber)
        return ws

    venue.app.router.add_get("/0/public/AssetPairs", asset_pairs)
    venue.app.router.add_get("/0/public/Assets", assets)
    venue.app.router.add_get("/0/public/Time", server_time)
    for endpoint, name in RECORDED_RESPONSES.items():
        venue.app.router.add_get(f"/0/public/{endpoint}", recorded(name))
    venue.app.router.add_get("/v2", websocket)
