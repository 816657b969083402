"""The local exchange's order and account side for Binance spot (`/api/v3`) and USD-M futures (`/fapi`).

What ccxt's binance / binanceusdm classes call to trade, answering in Binance's documented formats and
error codes (https://developers.binance.com/docs: "Spot Trading / Account", "USDS-M Futures / Trade"):
  POST/GET/DELETE /api/v3/order, GET /api/v3/openOrders, /api/v3/myTrades, /api/v3/account, /api/v3/time
  POST/GET/DELETE /fapi/v1/order, GET /fapi/v1/openOrders, /fapi/v1/userTrades, /fapi/v2/balance, /fapi/v1/time
Errors: -2010 NEW_ORDER_REJECTED (insufficient balance, "Duplicate order sent."), -2011 unknown order on
cancel, -2013 "Order does not exist.", -1021 outside recvWindow is not modelled (the clock is the test's).

Orders fill against the top of book the test sets (`set_book`: a marketable order takes it at once) or by
test control (`fill`, a maker fill of a resting order: what a market trade through its price does).
Faults (`fault`): the next N requests to a path answer HTTP 429 / 5xx, are rejected, or time out; a
timeout can happen after the order was accepted ("accept_then_timeout"): the order exists, the answer never
arrives, which is what a retry must not turn into a second order.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from aiohttp import web

FaultKind = Literal["429", "500", "503", "timeout", "accept_then_timeout", "reject"]


@dataclass
class Fault:
    kind: FaultKind
    remaining: int


@dataclass
class DeskOrder:
    api: str
    """"spot" or "usdm"."""
    symbol: str
    order_id: int
    client_id: str
    side: str
    type: str
    time_in_force: str
    quantity: Decimal
    price: Decimal | None
    reduce_only: bool
    time_ms: int
    status: str = "NEW"
    executed: Decimal = Decimal(0)
    quote: Decimal = Decimal(0)
    update_ms: int = 0


@dataclass
class DeskTrade:
    order: DeskOrder
    trade_id: int
    price: Decimal
    quantity: Decimal
    maker: bool
    time_ms: int
    commission: Decimal
    commission_asset: str


@dataclass
class Book:
    bid: Decimal
    ask: Decimal
    size: Decimal


@dataclass
class OrderDesk:
    """The account of one API key on the local exchange; `now_ms` is the exchange clock (wall by default)."""

    maker_fee: Decimal = Decimal("0.001")
    taker_fee: Decimal = Decimal("0.001")
    balances: dict[str, Decimal] = field(
        default_factory=lambda: {"USDT": Decimal(100_000), "BTC": Decimal(1)}
    )
    books: dict[str, Book] = field(default_factory=dict)
    orders: list[DeskOrder] = field(default_factory=list)
    trades: list[DeskTrade] = field(default_factory=list)
    faults: dict[str, list[Fault]] = field(default_factory=dict)
    hang_s: float = 30.0
    """How long a timed-out request hangs: beyond the client's timeout (the server shuts down only after)."""
    requests: list[tuple[str, str]] = field(default_factory=list)
    """(method, path) of every order/account request, in arrival order."""
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @staticmethod
    def now_ms() -> int:
        return int(time.time() * 1000)

    # ---- test control ---------------------------------------------------------------------------------

    def set_book(self, symbol: str, bid: str, ask: str, size: str = "10") -> None:
        self.books[symbol] = Book(Decimal(bid), Decimal(ask), Decimal(size))

    def fault(self, path: str, kind: FaultKind, times: int = 1) -> None:
        """The next `times` requests to `path` (e.g. "/api/v3/order") meet `kind`."""
        self.faults.setdefault(path, []).append(Fault(kind, times))

    def by_client_id(self, client_id: str) -> list[DeskOrder]:
        return [o for o in self.orders if o.client_id == client_id]

    def fill(self, client_id: str, quantity: str, price: str | None = None) -> DeskTrade:
        """A maker fill of the resting order `client_id` (a market trade reached it)."""
        (order,) = [o for o in self.by_client_id(client_id) if o.status in ("NEW", "PARTIALLY_FILLED")]
        fill_price = Decimal(price) if price is not None else order.price
        assert fill_price is not None
        return self._trade(order, fill_price, Decimal(quantity), maker=True)

    # ---- routes ---------------------------------------------------------------------------------------

    def register(self, app: web.Application) -> None:
        for api, root in (("spot", "/api/v3"), ("usdm", "/fapi/v1")):
            app.router.add_route("POST", f"{root}/order", self._handler(api, self._place))
            app.router.add_route("GET", f"{root}/order", self._handler(api, self._query))
            app.router.add_route("DELETE", f"{root}/order", self._handler(api, self._cancel))
            app.router.add_route("GET", f"{root}/openOrders", self._handler(api, self._open_orders))
            app.router.add_route("GET", f"{root}/time", self._handler(api, self._time))
        app.router.add_route("GET", "/api/v3/myTrades", self._handler("spot", self._my_trades))
        app.router.add_route("GET", "/fapi/v1/userTrades", self._handler("usdm", self._my_trades))
        app.router.add_route("GET", "/api/v3/account", self._handler("spot", self._account))
        app.router.add_route("GET", "/fapi/v2/balance", self._handler("usdm", self._futures_balance))

    def _handler(self, api: str, action: Any) -> Any:
        async def handle(request: web.Request) -> web.StreamResponse:
            self.requests.append((request.method, request.path))
            params = dict(request.query)
            if request.can_read_body:
                params.update(dict(await request.post()))  # type: ignore[arg-type]
            if request.path.endswith("/time"):
                return await action(api, params)
            if "X-MBX-APIKEY" not in request.headers:
                return _error(401, -2015, "Invalid API-key, IP, or permissions for action.")
            fault = self._take_fault(request.path)
            if fault in ("429", "500", "503"):
                if fault == "429":
                    return _error(
                        429, -1003, "Too many requests; current limit is 6000 request weight per 1 MINUTE."
                    )
                return web.Response(status=int(fault), text="Service Unavailable")
            if fault == "timeout":
                await asyncio.sleep(self.hang_s)
            if fault == "reject":
                return _error(400, -2010, "Order would immediately match and take.")
            response = await action(api, params)
            if fault == "accept_then_timeout":
                await asyncio.sleep(self.hang_s)
            return response

        return handle

    def _take_fault(self, path: str) -> FaultKind | None:
        queue = self.faults.get(path, [])
        while queue and queue[0].remaining <= 0:
            queue.pop(0)
        if not queue:
            return None
        queue[0].remaining -= 1
        return queue[0].kind

    async def _time(self, api: str, params: dict[str, str]) -> web.Response:
        return web.json_response({"serverTime": self.now_ms()})

    async def _place(self, api: str, params: dict[str, str]) -> web.Response:
        client_id = params.get("newClientOrderId") or f"local-{len(self.orders) + 1}"
        if any(o.status in ("NEW", "PARTIALLY_FILLED") for o in self.by_client_id(client_id)):
            return _error(400, -2010, "Duplicate order sent.")
        symbol, side, kind = params["symbol"], params["side"], params["type"]
        now = self.now_ms()
        price = Decimal(params["price"]) if "price" in params else None
        order = DeskOrder(api, symbol, next(self._ids), client_id, side, kind, params.get("timeInForce", "GTC"),
                          Decimal(params["quantity"]), price, params.get("reduceOnly") == "true", now, update_ms=now)  # fmt: skip
        if api == "spot" and not self._affordable(order):
            return _error(400, -2010, "Account has insufficient balance for requested action.")
        book = self.books.get(symbol)
        crosses = book is not None and (
            price is None or (price >= book.ask if side == "BUY" else price <= book.bid)
        )
        if kind == "LIMIT_MAKER" and crosses:
            return _error(400, -2010, "Order would immediately match and take.")
        if kind == "MARKET" and book is None:
            return _error(400, -2010, "Market is closed.")
        self.orders.append(order)
        if crosses and book is not None:
            take = min(order.quantity, book.size)
            self._trade(order, book.ask if side == "BUY" else book.bid, take, maker=False)
        if order.status in ("NEW", "PARTIALLY_FILLED") and (kind == "MARKET" or order.time_in_force == "IOC"):
            order.status = "EXPIRED"
        return web.json_response(self._order_json(order, full=True))

    def _affordable(self, order: DeskOrder) -> bool:
        base, quote = order.symbol[:-4], order.symbol[-4:]
        if order.side == "SELL":
            return self.balances.get(base, Decimal(0)) >= order.quantity
        book = self.books.get(order.symbol)
        price = order.price or (book.ask if book else Decimal(0))
        return self.balances.get(quote, Decimal(0)) >= order.quantity * price

    def _trade(self, order: DeskOrder, price: Decimal, quantity: Decimal, maker: bool) -> DeskTrade:
        fee = (self.maker_fee if maker else self.taker_fee) * price * quantity
        trade = DeskTrade(
            order, 1000 + len(self.trades) + 1, price, quantity, maker, self.now_ms(), fee, "USDT"
        )
        self.trades.append(trade)
        order.executed += quantity
        order.quote += price * quantity
        order.update_ms = trade.time_ms
        order.status = "FILLED" if order.executed >= order.quantity else "PARTIALLY_FILLED"
        if order.api == "spot":
            base, quote = order.symbol[:-4], order.symbol[-4:]
            sign = 1 if order.side == "BUY" else -1
            self.balances[base] = self.balances.get(base, Decimal(0)) + sign * quantity
            self.balances[quote] = self.balances.get(quote, Decimal(0)) - sign * price * quantity - fee
        return trade

    def _find(self, api: str, params: dict[str, str]) -> DeskOrder | None:
        client_id = params.get("origClientOrderId")
        for order in self.orders:
            if (
                order.api == api
                and order.symbol == params.get("symbol")
                and (
                    order.client_id == client_id
                    if client_id
                    else str(order.order_id) == params.get("orderId")
                )
            ):
                return order
        return None

    async def _query(self, api: str, params: dict[str, str]) -> web.Response:
        order = self._find(api, params)
        if order is None:
            return _error(400, -2013, "Order does not exist.")
        return web.json_response(self._order_json(order))

    async def _cancel(self, api: str, params: dict[str, str]) -> web.Response:
        order = self._find(api, params)
        if order is None or order.status not in ("NEW", "PARTIALLY_FILLED"):
            return _error(400, -2011, "Unknown order sent.")
        order.status = "CANCELED"
        order.update_ms = self.now_ms()
        return web.json_response(self._order_json(order))

    async def _open_orders(self, api: str, params: dict[str, str]) -> web.Response:
        symbol = params.get("symbol")
        return web.json_response([
            self._order_json(o) for o in self.orders
            if o.api == api and o.status in ("NEW", "PARTIALLY_FILLED") and (symbol is None or o.symbol == symbol)
        ])  # fmt: skip

    async def _my_trades(self, api: str, params: dict[str, str]) -> web.Response:
        rows = [t for t in self.trades if t.order.api == api and t.order.symbol == params.get("symbol")
                and ("orderId" not in params or str(t.order.order_id) == params["orderId"])]  # fmt: skip
        return web.json_response([self._trade_json(t) for t in rows])

    async def _account(self, api: str, params: dict[str, str]) -> web.Response:
        balances = [{"asset": a, "free": str(v), "locked": "0"} for a, v in sorted(self.balances.items())]
        return web.json_response({"makerCommission": 10, "takerCommission": 10, "canTrade": True,
                                  "updateTime": self.now_ms(), "accountType": "SPOT", "balances": balances,
                                  "permissions": ["SPOT"]})  # fmt: skip

    async def _futures_balance(self, api: str, params: dict[str, str]) -> web.Response:
        return web.json_response([
            {"accountAlias": "local", "asset": a, "balance": str(v), "crossWalletBalance": str(v),
             "crossUnPnl": "0", "availableBalance": str(v), "maxWithdrawAmount": str(v),
             "marginAvailable": True, "updateTime": self.now_ms()}
            for a, v in sorted(self.balances.items())
        ])  # fmt: skip

    # ---- Binance's JSON -------------------------------------------------------------------------------

    def _order_json(self, order: DeskOrder, full: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "symbol": order.symbol, "orderId": order.order_id, "clientOrderId": order.client_id,
            "price": str(order.price or 0), "origQty": str(order.quantity), "executedQty": str(order.executed),
            "status": order.status, "timeInForce": order.time_in_force, "type": order.type, "side": order.side,
            "updateTime": order.update_ms,
        }  # fmt: skip
        if order.api == "usdm":
            average = order.quote / order.executed if order.executed else Decimal(0)
            body.update(avgPrice=str(average), cumQuote=str(order.quote), reduceOnly=order.reduce_only,
                        positionSide="BOTH", origType=order.type, time=order.time_ms)  # fmt: skip
            return body
        body.update(orderListId=-1, cummulativeQuoteQty=str(order.quote), workingTime=order.time_ms,
                    selfTradePreventionMode="EXPIRE_MAKER")  # fmt: skip
        if full:
            body["transactTime"] = order.time_ms
            body["fills"] = [
                {"price": str(t.price), "qty": str(t.quantity), "commission": str(t.commission),
                 "commissionAsset": t.commission_asset, "tradeId": t.trade_id}
                for t in self.trades if t.order is order
            ]  # fmt: skip
        else:
            body.update(time=order.time_ms, isWorking=True, origQuoteOrderQty="0")
        return body

    def _trade_json(self, trade: DeskTrade) -> dict[str, Any]:
        order = trade.order
        body: dict[str, Any] = {
            "symbol": order.symbol, "id": trade.trade_id, "orderId": order.order_id, "price": str(trade.price),
            "qty": str(trade.quantity), "quoteQty": str(trade.price * trade.quantity),
            "commission": str(trade.commission), "commissionAsset": trade.commission_asset, "time": trade.time_ms,
        }  # fmt: skip
        if order.api == "usdm":
            body.update(buyer=order.side == "BUY", maker=trade.maker, side=order.side, positionSide="BOTH",
                        realizedPnl="0")  # fmt: skip
        else:
            body.update(orderListId=-1, isBuyer=order.side == "BUY", isMaker=trade.maker, isBestMatch=True)
        return body


def _error(status: int, code: int, message: str) -> web.Response:
    return web.json_response({"code": code, "msg": message}, status=status)
