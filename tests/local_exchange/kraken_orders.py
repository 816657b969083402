"""Kraken spot's private REST endpoints over the order desk (`tests.local_exchange.orders.OrderDesk`).

What ccxt's `kraken` calls to trade, in the documented formats (docs.kraken.com/api-reference: "Trading",
"Account Data"): every call is `POST /0/private/<Method>`, form-encoded with a `nonce`, and the headers
`API-Key` and `API-Sign` (present, not verified); every answer is HTTP 200 `{"error": [...], "result": ...}`.
  AddOrder (`pair`, `type`, `ordertype`, `volume`, `price`, `cl_ord_id`, `oflags`, `timeinforce`),
  CancelOrder (`txid` or `cl_ord_id`), QueryOrders (`txid`), OpenOrders / ClosedOrders (filter `cl_ord_id`:
  Kraken's way to find an order by client id, QueryOrders takes only order ids; `trades` lists the order's
  trade ids), QueryTrades (`txid`: those trade ids), TradesHistory, BalanceEx.
Kraken names bitcoin XBT (pair `XBTUSDT`, asset `XXBT`); the desk's symbols and balances use BTC. Fees: the
desk's rates, charged in the quote currency, which is how TradesHistory reports a trade's `fee`.
Order ids are Kraken-shaped (`OLOCAL-00001-KRAKEN`, trades `TLOCAL-01001-KRAKEN`) over the desk's numbers.
A post-only order that would take is accepted, then canceled at once with reason "Post only order" (Kraken
does not refuse it at AddOrder). Errors are Kraken's documented ones (EOrder:Unknown order, EOrder:Insufficient
funds, EAPI:Invalid key, EGeneral:Invalid arguments, EService:Unavailable; the injected `reject` fault answers
EOrder:Order minimum not met), except the duplicate `cl_ord_id`, whose text Kraken does not document:
"EOrder:Duplicate order" (ccxt then raises its generic ExchangeError: the adapter looks the order up).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from aiohttp import web

from tests.local_exchange.orders import OPEN, DeskOrder, DeskTrade, OrderDesk, Refused
from tests.local_exchange.server import Handler

API = "kraken-spot"
PAIRS = {"XBTUSDT": "BTCUSDT"}
"""Kraken pair id -> desk symbol."""
TRADES_PAGE = 50
ASSETS = {"BTC": "XXBT", "USDT": "USDT"}
"""Desk asset -> Kraken asset name (BalanceEx keys)."""
_ERRORS = {"duplicate": "EOrder:Duplicate order", "insufficient": "EOrder:Insufficient funds",
           "would_take": "EOrder:Order minimum not met", "no_market": "EService:Unavailable",
           "unknown": "EOrder:Unknown order", "not_found": "EOrder:Unknown order", "auth": "EAPI:Invalid key",
           "params": "EGeneral:Invalid arguments", "rate_limit": "EAPI:Rate limit exceeded"}  # fmt: skip
_STATUS = {"NEW": "open", "PARTIALLY_FILLED": "open", "FILLED": "closed", "CANCELED": "canceled",
           "EXPIRED": "expired"}  # fmt: skip


def order_txid(order: DeskOrder) -> str:
    return f"OLOCAL-{order.order_id:05d}-KRAKEN"


def trade_txid(trade: DeskTrade) -> str:
    """The trade id Kraken reports (TradesHistory keys), which the live adapter records as venue trade id."""
    return f"TLOCAL-{trade.trade_id:05d}-KRAKEN"


def _desk_id(txid: str | None) -> str | None:
    parts = (txid or "").split("-")
    return str(int(parts[1])) if len(parts) == 3 and parts[1].isdigit() else None


def _kraken_pair(symbol: str) -> str:
    return next(pair for pair, desk_symbol in PAIRS.items() if desk_symbol == symbol)


def _flag(params: dict[str, str], name: str) -> bool:
    """A boolean parameter: ccxt's Python encoder writes `True` where its JavaScript one writes `true`."""
    return params.get(name, "").lower() == "true"


def _seconds(millis: int) -> float:
    return millis / 1000


class KrakenOrders:
    def __init__(self, desk: OrderDesk) -> None:
        self.desk = desk

    def register(self, app: web.Application) -> None:
        actions: dict[str, Callable[[dict[str, str]], Any]] = {
            "AddOrder": self._place, "CancelOrder": self._cancel, "QueryOrders": self._query,
            "OpenOrders": self._open_orders, "ClosedOrders": self._closed_orders,
            "TradesHistory": self._trades_history, "QueryTrades": self._query_trades, "BalanceEx": self._balance,
        }  # fmt: skip
        for method, action in actions.items():
            app.router.add_route("POST", f"/0/private/{method}", self._route(action))

    def _route(self, action: Callable[[dict[str, str]], Any]) -> Handler:
        def well_formed(params: dict[str, str]) -> web.Response:
            if "nonce" not in params:
                raise Refused("params", "no nonce")
            return web.json_response({"error": [], "result": action(params)})

        async def handle(request: web.Request) -> web.StreamResponse:
            if "API-Sign" not in request.headers:
                return _error(Refused("auth", "no API-Sign"))
            return await self.desk.serve(request, "API-Key", _error, well_formed)

        return handle

    def _place(self, params: dict[str, str]) -> Any:
        symbol = PAIRS.get(params.get("pair", ""))
        if symbol is None or params.get("type") not in ("buy", "sell"):
            raise Refused("params", f"pair {params.get('pair')!r} / type {params.get('type')!r}")
        flags = params.get("oflags", "").split(",")
        ordertype = params.get("ordertype")
        kind = "MARKET" if ordertype == "market" else "LIMIT_MAKER" if "post" in flags else "LIMIT"
        order = self.desk.place(
            API, symbol, params["type"].upper(), kind, params.get("timeinforce", "GTC"),
            Decimal(params["volume"]), Decimal(params["price"]) if ordertype == "limit" else None,
            params.get("cl_ord_id") or f"local-{len(self.desk.orders) + 1}", post_only_cancels=True,
        )  # fmt: skip
        return {"descr": {"order": self._description(order)}, "txid": [order_txid(order)]}

    def _find(self, client_id: str | None, txid: str | None) -> DeskOrder | None:
        """Kraken addresses an order by id alone; the desk by symbol and id."""
        found = (self.desk.find(API, symbol, client_id, _desk_id(txid)) for symbol in PAIRS.values())
        return next((order for order in found if order is not None), None)

    def _cancel(self, params: dict[str, str]) -> Any:
        self.desk.cancel(self._find(params.get("cl_ord_id"), params.get("txid")))
        return {"count": 1, "pending": False}

    def _query(self, params: dict[str, str]) -> Any:
        txids = [t for t in params.get("txid", "").split(",") if t]
        found = [self._find(None, t) for t in txids]
        if not txids or None in found:
            raise Refused("not_found", "Unknown order")
        trades = _flag(params, "trades")
        return {order_txid(o): self._order_json(o, trades) for o in found if o is not None}

    def _listed(self, params: dict[str, str], is_open: bool) -> dict[str, Any]:
        client_id = params.get("cl_ord_id")
        orders = [o for o in self.desk.orders if o.api == API and (o.status in OPEN) == is_open
                  and client_id in (None, o.client_id)]  # fmt: skip
        return {order_txid(o): self._order_json(o, _flag(params, "trades")) for o in orders}

    def _open_orders(self, params: dict[str, str]) -> Any:
        return {"open": self._listed(params, is_open=True)}

    def _closed_orders(self, params: dict[str, str]) -> Any:
        closed = self._listed(params, is_open=False)
        return {"closed": closed, "count": len(closed)}

    def _trades_history(self, params: dict[str, str]) -> Any:
        """The most recent first, 50 a page from offset `ofs`, as Kraken pages them; `count` is all of them."""
        trades = [t for t in reversed(self.desk.trades) if t.order.api == API]
        offset = int(params.get("ofs", "0"))
        page = trades[offset : offset + TRADES_PAGE]
        return {"trades": {trade_txid(t): self._trade_json(t) for t in page}, "count": len(trades)}

    def _query_trades(self, params: dict[str, str]) -> Any:
        wanted = [t for t in params.get("txid", "").split(",") if t]
        by_id = {trade_txid(t): t for t in self.desk.trades if t.order.api == API}
        if not wanted or any(t not in by_id for t in wanted):
            raise Refused("params", f"txid {params.get('txid')!r}")
        return {t: self._trade_json(by_id[t]) for t in wanted}

    def _balance(self, params: dict[str, str]) -> Any:
        return {ASSETS.get(asset, asset): {"balance": str(amount), "hold_trade": "0"}
                for asset, amount in sorted(self.desk.balances.items())}  # fmt: skip

    @staticmethod
    def _description(order: DeskOrder) -> str:
        at = "market" if order.price is None else f"limit {order.price}"
        return f"{order.side.lower()} {order.quantity:.8f} {_kraken_pair(order.symbol)} @ {at}"

    def _order_json(self, order: DeskOrder, with_trades: bool) -> dict[str, Any]:
        fills = [t for t in self.desk.trades if t.order is order]
        body: dict[str, Any] = {
            "refid": None, "userref": 0, "cl_ord_id": order.client_id, "status": _STATUS[order.status],
            "opentm": _seconds(order.time_ms), "starttm": 0, "expiretm": 0,
            "descr": {"pair": _kraken_pair(order.symbol), "type": order.side.lower(),
                      "ordertype": "market" if order.type == "MARKET" else "limit",
                      "price": str(order.price or 0), "price2": "0", "leverage": "none",
                      "order": self._description(order), "close": ""},
            "vol": f"{order.quantity:.8f}", "vol_exec": f"{order.executed:.8f}", "cost": str(order.quote),
            "fee": str(sum((t.commission for t in fills), Decimal(0))),
            "price": str(order.quote / order.executed if order.executed else Decimal(0)),
            "stopprice": "0", "limitprice": "0", "misc": "",
            "oflags": "fciq,post" if order.type == "LIMIT_MAKER" else "fciq",
        }  # fmt: skip
        if order.status not in OPEN:
            body.update(closetm=_seconds(order.update_ms), reason=order.reason)
        if with_trades:
            body["trades"] = [trade_txid(t) for t in fills]
        return body

    @staticmethod
    def _trade_json(trade: DeskTrade) -> dict[str, Any]:
        order = trade.order
        return {
            "ordertxid": order_txid(order), "postxid": f"PLOCAL-{trade.trade_id:05d}-KRAKEN",
            "pair": _kraken_pair(order.symbol), "time": _seconds(trade.time_ms), "type": order.side.lower(),
            "ordertype": "market" if order.type == "MARKET" else "limit", "price": str(trade.price),
            "cost": str(trade.price * trade.quantity), "fee": str(trade.commission), "vol": str(trade.quantity),
            "margin": "0", "leverage": "0", "misc": "", "trade_id": trade.trade_id, "maker": trade.maker,
        }  # fmt: skip


def _error(refused: Refused) -> web.Response:
    """Kraken answers a refusal with HTTP 200 and the error in `error`."""
    return web.json_response({"error": [_ERRORS[refused.kind]], "result": {}})
