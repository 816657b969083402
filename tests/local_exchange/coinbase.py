"""Coinbase Advanced Trade (`coinbase`), from its documented formats (docs.cdp.coinbase.com/advanced-trade:
REST market products, websocket channels), playing the Binance spot capture's market as BTC-USDT.

REST: `/api/v3/brokerage/market/products` (`?product_type=FUTURE`: none), and the `/v2/currencies`,
`/v2/currencies/crypto`, `/v2/exchange-rates` ccxt's `load_markets` also reads.
Websocket `/`: `{"type":"subscribe","product_ids":["BTC-USDT"],"channel":"level2"|"market_trades"|"ticker"|
"heartbeats"}`. Every message of a connection carries `sequence_num`, +1 per message on that connection
(across channels). `level2` (messages on channel `l2_data`): a `snapshot` event of the whole book on
subscription, then `update` events (`side` bid/offer, `new_quantity` 0 removes the level). `market_trades`:
`side` is the **maker's** side. `ticker`: `best_bid`/`best_ask` with quantities.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from tests.local_exchange.capture import read_capture
from tests.local_exchange.playback import SEQUENCE_PLACEHOLDER, Outgoing, Playback, Subscriber, dumps
from tests.local_exchange.server import VenueServer
from tests.local_exchange.translated import TranslatedMarket

PRODUCT = "BTC-USDT"
FULL_DEPTH = 1_000_000

PRODUCT_INFO = {
    "product_id": PRODUCT, "price": "61837.63", "price_percentage_change_24h": "0", "volume_24h": "0",
    "volume_percentage_change_24h": "0", "base_increment": "0.00000001", "quote_increment": "0.01",
    "quote_min_size": "1", "quote_max_size": "10000000", "base_min_size": "0.00000001", "base_max_size": "3400",
    "base_name": "Bitcoin", "quote_name": "Tether", "watched": False, "is_disabled": False, "new": False,
    "status": "online", "cancel_only": False, "limit_only": False, "post_only": False, "trading_disabled": False,
    "auction_mode": False, "product_type": "SPOT", "quote_currency_id": "USDT", "base_currency_id": "BTC",
    "fcm_trading_session_details": None, "mid_market_price": "", "alias": "", "alias_to": [],
    "base_display_symbol": "BTC", "quote_display_symbol": "USDT", "view_only": False, "price_increment": "0.01",
    "display_name": "BTC-USDT", "product_venue": "CBE",
}  # fmt: skip


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


def _message(channel: str, ms: int, events: list[dict[str, Any]]) -> str:
    text = dumps(
        {"channel": channel, "client_id": "", "timestamp": _time(ms), "sequence_num": None, "events": events}
    )
    assert SEQUENCE_PLACEHOLDER in text
    return text


class CoinbaseFeed:
    def __init__(self, market: TranslatedMarket) -> None:
        self.market = market
        self.last_ms = market.start_ms

    def source_length(self) -> int:
        return len(self.market.lines)

    async def before(self, index: int, playback: Playback) -> None:
        return None

    def snapshot(self) -> Outgoing:
        bids, asks = self.market.book.top(FULL_DEPTH)
        at = _time(self.last_ms)
        updates = [{"side": "bid", "event_time": at, "price_level": p, "new_quantity": q} for p, q in bids]
        updates += [{"side": "offer", "event_time": at, "price_level": p, "new_quantity": q} for p, q in asks]
        event = {"type": "snapshot", "product_id": PRODUCT, "updates": updates}
        return Outgoing(f"level2:{PRODUCT}", _message("l2_data", self.last_ms, [event]), depth=True)

    def play(self, index: int) -> list[Outgoing]:
        line = self.market.lines[index]
        data = line.message.get("data", {})
        ms = self.last_ms = data.get("E") or data.get("T") or self.last_ms
        if line.kind == "trade":
            trade = {"trade_id": str(data["t"]), "product_id": PRODUCT, "price": data["p"], "size": data["q"],
                     "side": "BUY" if data["m"] else "SELL", "time": _time(data["T"])}  # maker's side  # fmt: skip
            return [
                Outgoing(
                    f"market_trades:{PRODUCT}",
                    _message("market_trades", ms, [{"type": "update", "trades": [trade]}]),
                )
            ]
        if line.kind == "bookTicker":
            ticker = {"type": "ticker", "product_id": PRODUCT, "price": data["b"], "best_bid": data["b"],
                      "best_bid_quantity": data["B"], "best_ask": data["a"], "best_ask_quantity": data["A"]}  # fmt: skip
            return [
                Outgoing(
                    f"ticker:{PRODUCT}", _message("ticker", ms, [{"type": "update", "tickers": [ticker]}])
                )
            ]
        if not self.market.book.apply(data):
            return []
        at = _time(ms)
        updates = [
            {"side": "bid", "event_time": at, "price_level": p, "new_quantity": q} for p, q in data["b"]
        ]
        updates += [
            {"side": "offer", "event_time": at, "price_level": p, "new_quantity": q} for p, q in data["a"]
        ]
        event = {"type": "update", "product_id": PRODUCT, "updates": updates}
        return [Outgoing(f"level2:{PRODUCT}", _message("l2_data", ms, [event]), depth=True)]


def install_coinbase(venue: VenueServer, capture: Path, *, limit: int | None) -> None:
    feed = CoinbaseFeed(TranslatedMarket(read_capture(capture, limit), depth=1))
    playback = Playback(feed, venue.faults)
    venue.feed = playback

    def handler(body: dict[str, Any]) -> Any:
        async def handle(request: web.Request) -> web.StreamResponse:
            return web.json_response(body)

        return handle

    async def products(request: web.Request) -> web.StreamResponse:
        spot = request.query.get("product_type", "SPOT") == "SPOT"
        return web.json_response(
            {"products": [PRODUCT_INFO] if spot else [], "num_products": 1 if spot else 0}
        )

    async def websocket(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        subscriber = Subscriber(ws, sequence=0)
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                req = json.loads(msg.data)
                channel, products_ = req.get("channel"), req.get("product_ids") or []
                if req.get("type") != "subscribe" or channel not in ("level2", "market_trades", "ticker", "heartbeats") \
                        or any(p != PRODUCT for p in products_):  # fmt: skip
                    await ws.send_str(
                        dumps({"type": "error", "message": f"Failure to subscribe {channel} {products_}"})
                    )
                    continue
                subscriber.topics.add(f"{channel}:{PRODUCT}")
                ack = _message("subscriptions", feed.last_ms, [{"subscriptions": {channel: products_}}])
                await playback.send_to(subscriber, [Outgoing("", ack)])
                if channel == "level2":
                    await playback.send_to(subscriber, [feed.snapshot()])
                playback.subscribe(subscriber)
        finally:
            playback.leave(subscriber)
        return ws

    app = venue.app
    app.router.add_get("/api/v3/brokerage/market/products", products)
    app.router.add_get(
        "/v2/currencies", handler({"data": [{"id": "USD", "name": "US Dollar", "min_size": "0.01"}]})
    )
    app.router.add_get("/v2/currencies/crypto", handler({"data": [
        {"asset_id": "5b71fc48-3dd3-540c-809b-f8c94d0e68b5", "code": "BTC", "name": "Bitcoin", "exponent": 8, "type": "crypto"},
        {"asset_id": "b26327c1-9a1c-5b57-9a9e-3e3b3f4b8d2c", "code": "USDT", "name": "Tether", "exponent": 6, "type": "crypto"}]}))  # fmt: skip
    app.router.add_get(
        "/v2/exchange-rates",
        handler({"data": {"currency": "USD", "rates": {"BTC": "0.0000162", "USDT": "1"}}}),
    )
    app.router.add_get("/", websocket)
