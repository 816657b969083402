"""Binance spot, USD-M and COIN-M futures (ccxt `binance`, `binanceusdm`, `binancecoinm`).

Websocket: the combined-stream endpoint (`.../stream`, next to ccxt's `.../ws`), one connection per exchange,
`SUBSCRIBE` to `<symbol>@depth@100ms` (spot) or `@depth@0ms` (futures), `@bookTicker` and `@trade`; each message
is `{"stream", "data"}` exactly as in the hftbacktest captures, and is parsed by the capture importer's own
parser (`adapters.importers.binance_ws.parse_message`), so a recording and an imported capture hold the same
events. Book: a REST snapshot (`GET /api/v3/depth`, `/fapi/v1/depth` or `/dapi/v1/depth`, limit 1000) after subscribing and
after every gap, deltas checked by `domain.book` (spot `U == previous u + 1`, futures `pu == previous u`, the
first after a snapshot spanning its lastUpdateId).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adapters.exchanges.feeds.base import FeedSession, Instrument, SubscriptionRefused
from adapters.importers.binance_ws import parse_message
from adapters.importers.common import RowError

SNAPSHOT_LIMIT = 1000


WS_URL_KEYS = {"spot": "spot", "usdm": "linear", "coinm": "inverse"}


class BinanceFeed:
    def __init__(self, market: str) -> None:
        self.market = market
        self.depth_stream = "depth@100ms" if market == "spot" else "depth@0ms"

    def ws_url(self, exchange: Any) -> str:
        url: str = exchange.urls["api"]["ws"][WS_URL_KEYS[self.market]]
        return url.removesuffix("/ws") + "/stream"

    def subscriptions(self, instruments: Sequence[Instrument]) -> list[dict[str, Any]]:
        params = [
            f"{i.id.lower()}@{kind}"
            for i in instruments
            for kind in (self.depth_stream, "bookTicker", "trade")
        ]
        return [{"method": "SUBSCRIBE", "params": params, "id": 1}]

    def on_connected(self, session: FeedSession) -> None:
        for instrument_id in sorted(session.instruments):
            session.fetch_later(instrument_id)

    def on_message(self, session: FeedSession, message: Any, receive_ns: int) -> None:
        if not isinstance(message, dict) or "stream" not in message:
            if isinstance(message, dict) and message.get("error"):
                raise SubscriptionRefused(f"{session.venue}: subscription refused: {message['error']}")
            return  # subscription acknowledgements
        try:
            instrument, build = parse_message(message, session.venue, "")
        except RowError as exc:
            session.refuse(f"{exc.reason}: {exc.detail}")
            return
        if instrument not in session.instruments:
            return
        if message["stream"].partition("@")[2].startswith("depth"):
            session.book_event(instrument, receive_ns, build)
        else:
            session.record(instrument, receive_ns, build)

    def on_snapshot(self, session: FeedSession, instrument_id: str, snapshot: Any, receive_ns: int) -> None:
        _, build = parse_message(snapshot, session.venue, instrument_id)
        session.book_event(instrument_id, receive_ns, build)

    def resync(self, session: FeedSession, instrument_id: str) -> None:
        session.fetch_later(instrument_id)

    async def fetch_snapshot(self, exchange: Any, instrument_id: str) -> Any:
        request = {"symbol": instrument_id, "limit": SNAPSHOT_LIMIT}
        if self.market == "usdm":
            return await exchange.fapiPublicGetDepth(request)
        if self.market == "coinm":
            return await exchange.dapiPublicGetDepth(request)
        return await exchange.publicGetDepth(request)
