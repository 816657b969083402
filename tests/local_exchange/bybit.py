"""Bybit v5 spot (`bybit`), from its documented formats (bybit-exchange.github.io/docs/v5), playing the Binance
spot capture's market as BTCUSDT.

REST: `/v5/market/instruments-info?category=spot`, `/v5/market/time`, `/v5/market/orderbook`.
Websocket `/v5/public/spot`: `{"op":"subscribe","args":["orderbook.50.BTCUSDT","publicTrade.BTCUSDT",
"orderbook.1.BTCUSDT"]}`, `{"op":"unsubscribe","args":[...]}` and `{"op":"ping"}`. Order book: a `snapshot` on subscription, then `delta`s; `u` is
the book's update id, +1 per message; `seq` the cross sequence. Levels pushed out of the 50 are sent as removals
(size 0). `faults.reset_book()` makes the next message a fresh snapshot with `u=1`, as Bybit sends after a
service restart. Trades: `S` is the taker's side (Buy/Sell). `orderbook.1` carries the top of book.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from tests.local_exchange.capture import read_capture
from tests.local_exchange.playback import Outgoing, Playback, Subscriber, dumps
from tests.local_exchange.server import VenueServer
from tests.local_exchange.translated import Levels, TranslatedMarket, quantize

SYMBOL = "BTCUSDT"
DEPTH = 50
BOOK_TOPIC = f"orderbook.{DEPTH}.{SYMBOL}"
TOP_TOPIC = f"orderbook.1.{SYMBOL}"
TRADE_TOPIC = f"publicTrade.{SYMBOL}"
PRICE_PLACES, QTY_PLACES = 2, 6
FIRST_UPDATE_ID = 18_000_000

INSTRUMENT = {
    "symbol": SYMBOL, "baseCoin": "BTC", "quoteCoin": "USDT", "innovation": "0", "status": "Trading",
    "marginTrading": "utaOnly", "stTag": "0",
    "lotSizeFilter": {"basePrecision": "0.000001", "quotePrecision": "0.00000001", "minOrderQty": "0.000048",
                      "maxOrderQty": "71.73956243", "minOrderAmt": "1", "maxOrderAmt": "4000000"},
    "priceFilter": {"tickSize": "0.01"},
    "riskParameters": {"priceLimitRatioX": "0.01", "priceLimitRatioY": "0.02"},
}  # fmt: skip


def _levels(levels: Levels) -> list[list[str]]:
    return [[f"{p:.{PRICE_PLACES}f}", f"{q:.{QTY_PLACES}f}"] for p, q in levels]


class BybitFeed:
    def __init__(self, market: TranslatedMarket) -> None:
        self.market = market
        self.update_id = FIRST_UPDATE_ID
        self.reset_pending = False
        self.last_ts = market.start_ms
        """Exchange time (ms) of the last played message: a snapshot is stamped with it."""

    def source_length(self) -> int:
        return len(self.market.lines)

    async def before(self, index: int, playback: Playback) -> None:
        return None

    def snapshot(self, ts: int) -> Outgoing:
        bids, asks = self.market.view
        data = {"s": SYMBOL, "b": _levels(sorted(bids.items(), reverse=True)),
                "a": _levels(sorted(asks.items())), "u": self.update_id, "seq": self.market.book.last_update_id}  # fmt: skip
        return Outgoing(BOOK_TOPIC, dumps({"topic": BOOK_TOPIC, "type": "snapshot", "ts": ts, "data": data, "cts": ts}),
                        depth=True)  # fmt: skip

    def play(self, index: int) -> list[Outgoing]:
        line = self.market.lines[index]
        data = line.message.get("data", {})
        ts = self.last_ts = data.get("E") or data.get("T") or line.receive_ns // 1_000_000
        if line.kind == "trade":
            trade = {"T": data["T"], "s": SYMBOL, "S": "Sell" if data["m"] else "Buy", "v": quantize(data["q"], QTY_PLACES),
                     "p": quantize(data["p"], PRICE_PLACES), "L": "ZeroPlusTick", "i": str(data["t"]), "BT": False}  # fmt: skip
            return [
                Outgoing(
                    TRADE_TOPIC, dumps({"topic": TRADE_TOPIC, "type": "snapshot", "ts": ts, "data": [trade]})
                )
            ]
        if line.kind != "depth":
            return []
        top_before = self._top()
        changes = self.market.move(line, delete_pushed_out=True)
        if changes is None:
            return []
        out: list[Outgoing] = []
        if self.reset_pending:
            self.reset_pending = False
            self.update_id = 1
            out.append(self.snapshot(ts))
        else:
            self.update_id += 1
            data = {"s": SYMBOL, "b": _levels(changes[0][::-1]), "a": _levels(changes[1]), "u": self.update_id,
                    "seq": self.market.book.last_update_id}  # fmt: skip
            out.append(Outgoing(BOOK_TOPIC, dumps({"topic": BOOK_TOPIC, "type": "delta", "ts": ts, "data": data, "cts": ts}),
                                depth=True))  # fmt: skip
        top = self._top()
        if top != top_before:
            bid, ask = top
            data = {"s": SYMBOL, "b": _levels([bid] if bid else []), "a": _levels([ask] if ask else []),
                    "u": self.update_id, "seq": self.market.book.last_update_id}  # fmt: skip
            out.append(
                Outgoing(
                    TOP_TOPIC,
                    dumps({"topic": TOP_TOPIC, "type": "snapshot", "ts": ts, "data": data, "cts": ts}),
                )
            )
        return out

    def _top(self) -> tuple[tuple[Decimal, Decimal] | None, tuple[Decimal, Decimal] | None]:
        bids, asks = self.market.view
        bid = max(bids.items()) if bids else None
        ask = min(asks.items()) if asks else None
        return bid, ask


def install_bybit(venue: VenueServer, capture: Path, *, limit: int | None) -> None:
    feed = BybitFeed(TranslatedMarket(read_capture(capture, limit), DEPTH))
    playback = Playback(feed, venue.faults)
    venue.feed = playback
    venue.state["bybit_feed"] = feed

    def envelope(result: Any) -> web.StreamResponse:
        return web.json_response({"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {},
                                  "time": int(time.time() * 1000)})  # fmt: skip

    async def instruments(request: web.Request) -> web.StreamResponse:
        category = request.query.get("category", "")
        return envelope(
            {"category": category, "list": [INSTRUMENT] if category == "spot" else [], "nextPageCursor": ""}
        )

    async def server_time(request: web.Request) -> web.StreamResponse:
        now = time.time_ns()
        return envelope({"timeSecond": str(now // 10**9), "timeNano": str(now)})

    async def websocket(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        subscriber = Subscriber(ws)
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                req = json.loads(msg.data)
                op = req.get("op")
                if op == "ping":
                    await ws.send_str(dumps({"success": True, "ret_msg": "pong", "conn_id": "local", "op": "ping",
                                             "req_id": req.get("req_id")}))  # fmt: skip
                    continue
                if op == "unsubscribe":
                    subscriber.topics.difference_update(req.get("args", []))
                    await ws.send_str(dumps({"success": True, "ret_msg": "", "conn_id": "local",
                                             "req_id": req.get("req_id"), "op": "unsubscribe"}))  # fmt: skip
                    continue
                if op != "subscribe":
                    await ws.send_str(dumps({"success": False, "ret_msg": f"unknown op {op!r}", "op": op}))
                    continue
                args = [a for a in req.get("args", []) if a in (BOOK_TOPIC, TOP_TOPIC, TRADE_TOPIC)]
                unknown = [a for a in req.get("args", []) if a not in args]
                await ws.send_str(dumps({"success": not unknown, "ret_msg": f"Invalid topic {unknown}" if unknown else "",
                                         "conn_id": "local", "req_id": req.get("req_id"), "op": "subscribe"}))  # fmt: skip
                subscriber.topics.update(args)
                if BOOK_TOPIC in args:
                    await playback.send_to(subscriber, [feed.snapshot(feed.last_ts)])
                playback.subscribe(subscriber)
        finally:
            playback.leave(subscriber)
        return ws

    venue.app.router.add_get("/v5/market/instruments-info", instruments)
    venue.app.router.add_get("/v5/market/time", server_time)
    venue.app.router.add_get("/v5/public/spot", websocket)
