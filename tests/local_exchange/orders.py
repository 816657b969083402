"""The local exchange's order and account side: Binance spot (`/api/v3`) and USD-M (`/fapi`), Bybit v5 spot,
Kraken spot (`tests.local_exchange.kraken_orders`).

What ccxt's binance / binanceusdm classes call to trade, answering in Binance's documented formats and
error codes (https://developers.binance.com/docs: "Spot Trading / Account", "USDS-M Futures / Trade"):
  POST/GET/DELETE /api/v3/order, GET /api/v3/openOrders, /api/v3/myTrades, /api/v3/account
  POST/GET/DELETE /fapi/v1/order, GET /fapi/v1/openOrders, /fapi/v1/userTrades, /fapi/v2/balance
(and Bybit's, `BybitOrders`). Server time and market metadata are the market-data side's.
Errors: -2010 NEW_ORDER_REJECTED (insufficient balance, "Duplicate order sent."), -2011 unknown order on
cancel, -2013 "Order does not exist.", -1021 outside recvWindow is not modelled (the clock is the test's).

Orders fill against the top of book the test sets (`set_book`: a marketable order takes it at once) or by
test control (`fill`, a maker fill of a resting order: what a market trade through its price does).
Order faults (`fault`), beside the venue's HTTP faults (`tests.local_exchange.faults`: 429, 5xx, delays): the
next N order requests are rejected, or time out after the order was accepted ("accept_then_timeout": the
order exists, the answer never arrives, which is what a retry must not turn into a second order).
`install_orders(desk)` adds these routes to every venue of a `LocalExchange`; the desk is then the server
thread's: change it from a test through `venue.call`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from aiohttp import web

from tests.local_exchange.server import Handler, Installer, VenueServer

FaultKind = Literal["accept_then_timeout", "reject"]
OPEN = ("NEW", "PARTIALLY_FILLED")
"""The desk keeps Binance's status names; each wire format translates them."""


class Refused(Exception):
    """The exchange refuses the request: `kind` picks the venue's error code, `message` its text."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind, self.message = kind, message


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
    reason: str | None = None
    """Why the exchange closed it on its own (Kraken's post-only cancel)."""


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
    fill_at_limit: bool = False
    """Every limit order takes its whole quantity at its own price at once (a market deep enough there): for
    tests where the strategy's orders must fill whatever the recorded prices were."""
    hang_s: float = 30.0
    """How long a timed-out request hangs: beyond the client's timeout (the server shuts down only after)."""
    requests: list[tuple[str, str]] = field(default_factory=list)
    listeners: list[Callable[[DeskOrder], None]] = field(default_factory=list)
    streams: list[web.WebSocketResponse] = field(default_factory=list)
    """Open user-data websockets (`drop_streams` closes them: the dropped-connection fault)."""
    """Called with every order that changed (accepted, filled, canceled, expired): the user-data streams."""
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

    def drop_streams(self) -> None:
        """Close every user-data websocket (on the server's loop)."""
        for ws in list(self.streams):
            asyncio.ensure_future(ws.close())

    def by_client_id(self, client_id: str) -> list[DeskOrder]:
        return [o for o in self.orders if o.client_id == client_id]

    def fill(self, client_id: str, quantity: str, price: str | None = None) -> DeskTrade:
        """A maker fill of the resting order `client_id` (a market trade reached it)."""
        (order,) = [o for o in self.by_client_id(client_id) if o.status in OPEN]
        fill_price = Decimal(price) if price is not None else order.price
        assert fill_price is not None
        return self._trade(order, fill_price, Decimal(quantity), maker=True)

    # ---- the exchange's rules (venue-neutral; the wire formats below) ---------------------------------

    def place(self, api: str, symbol: str, side: str, kind: str, time_in_force: str, quantity: Decimal,
              price: Decimal | None, client_id: str, reduce_only: bool = False,
              post_only_cancels: bool = False) -> DeskOrder:  # fmt: skip
        """Accept (and match) an order, or raise `Refused`. `side` BUY/SELL, `kind` LIMIT/LIMIT_MAKER/MARKET.
        A post-only order that would take is refused (Binance, Bybit), or with `post_only_cancels` accepted
        and canceled at once (Kraken: status canceled, reason "Post only order")."""
        if any(o.status in OPEN for o in self.by_client_id(client_id)):
            raise Refused("duplicate", "Duplicate order sent.")
        now = self.now_ms()
        order = DeskOrder(api, symbol, next(self._ids), client_id, side, kind, time_in_force, quantity, price,
                          reduce_only, now, update_ms=now)  # fmt: skip
        if api != "usdm" and not self._affordable(order):
            raise Refused("insufficient", "Account has insufficient balance for requested action.")
        book = self.books.get(symbol)
        crosses = book is not None and (
            price is None or (price >= book.ask if side == "BUY" else price <= book.bid)
        )
        if kind == "LIMIT_MAKER" and crosses and not post_only_cancels:
            raise Refused("would_take", "Order would immediately match and take.")
        if kind == "MARKET" and book is None:
            raise Refused("no_market", "Market is closed.")
        self.orders.append(order)
        if kind == "LIMIT_MAKER" and crosses:
            order.status, order.reason = "CANCELED", "Post only order"
        elif self.fill_at_limit and price is not None and kind != "LIMIT_MAKER":
            self._trade(order, price, quantity, maker=False)
        elif crosses and book is not None:
            self._trade(
                order, book.ask if side == "BUY" else book.bid, min(order.quantity, book.size), maker=False
            )
        if order.status in OPEN and (kind == "MARKET" or time_in_force == "IOC"):
            order.status = "EXPIRED"
        self._changed(order)
        return order

    def find(
        self, api: str, symbol: str | None, client_id: str | None, order_id: str | None
    ) -> DeskOrder | None:
        for order in self.orders:
            if (
                order.api == api
                and order.symbol == symbol
                and (order.client_id == client_id if client_id else str(order.order_id) == order_id)
            ):
                return order
        return None

    def cancel(self, order: DeskOrder | None) -> DeskOrder:
        if order is None or order.status not in OPEN:
            raise Refused("unknown", "Unknown order sent.")
        order.status = "CANCELED"
        order.update_ms = self.now_ms()
        self._changed(order)
        return order

    def open_orders(self, api: str, symbol: str | None) -> list[DeskOrder]:
        return [o for o in self.orders if o.api == api and o.status in OPEN and symbol in (None, o.symbol)]

    def trades_of(self, api: str, symbol: str | None, order_id: str | None) -> list[DeskTrade]:
        return [t for t in self.trades if t.order.api == api and t.order.symbol == symbol
                and (order_id is None or str(t.order.order_id) == order_id)]  # fmt: skip

    def _changed(self, order: DeskOrder) -> None:
        for listener in list(self.listeners):
            listener(order)

    def take_fault(self, path: str) -> FaultKind | None:
        queue = self.faults.get(path, [])
        while queue and queue[0].remaining <= 0:
            queue.pop(0)
        if not queue:
            return None
        queue[0].remaining -= 1
        return queue[0].kind

    async def serve(self, request: web.Request, key_header: str, refuse: Callable[[Refused], web.Response],
                    action: Callable[[dict[str, str]], web.Response]) -> web.StreamResponse:  # fmt: skip
        """One order/account request: the API key, the injected faults, then `action` on the parameters
        (query, form or JSON body); a `Refused` becomes the venue's error via `refuse`."""
        self.requests.append((request.method, request.path))
        params = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                params.update(
                    {k: v if isinstance(v, str) else json.dumps(v) for k, v in (await request.json()).items()}
                )
            else:
                params.update(dict(await request.post()))  # type: ignore[arg-type]
        if key_header not in request.headers:
            return refuse(Refused("auth", "Invalid API-key, IP, or permissions for action."))
        fault = self.take_fault(request.path)
        if fault == "reject":
            return refuse(Refused("would_take", "Order would immediately match and take."))
        try:
            response = action(params)
        except Refused as refused:
            return refuse(refused)
        if fault == "accept_then_timeout":
            await asyncio.sleep(self.hang_s)
        return response

    def _affordable(self, order: DeskOrder) -> bool:
        base, quote = order.symbol[:-4], order.symbol[-4:]
        if order.side == "SELL":
            return self.balances.get(base, Decimal(0)) >= order.quantity
        book = self.books.get(order.symbol)
        price = order.price or (book.ask if book else Decimal(0))
        return self.balances.get(quote, Decimal(0)) >= order.quantity * price

    def _trade(self, order: DeskOrder, price: Decimal, quantity: Decimal, maker: bool) -> DeskTrade:
        rate = self.maker_fee if maker else self.taker_fee
        base, quote = order.symbol[:-4], order.symbol[-4:]
        # Bybit spot charges a buy's fee in the coin received (base); Binance (no BNB) and sells: the quote.
        in_base = order.api == "bybit-spot" and order.side == "BUY"
        fee, fee_asset = (rate * quantity, base) if in_base else (rate * price * quantity, quote)
        trade = DeskTrade(
            order, 1000 + len(self.trades) + 1, price, quantity, maker, self.now_ms(), fee, fee_asset
        )
        self.trades.append(trade)
        order.executed += quantity
        order.quote += price * quantity
        order.update_ms = trade.time_ms
        order.status = "FILLED" if order.executed >= order.quantity else "PARTIALLY_FILLED"
        if order.api != "usdm":  # spot balances move; futures margin is not modelled
            sign = 1 if order.side == "BUY" else -1
            self.balances[base] = self.balances.get(base, Decimal(0)) + sign * quantity
            self.balances[quote] = self.balances.get(quote, Decimal(0)) - sign * price * quantity
            self.balances[fee_asset] -= fee
        self._changed(order)
        return trade


class BinanceOrders:
    """Binance spot (`/api/v3`) and USD-M (`/fapi`) order/account endpoints over a desk."""

    def __init__(self, desk: OrderDesk) -> None:
        self.desk = desk

    def register(self, app: web.Application, api: Literal["spot", "usdm"]) -> None:
        root = "/api/v3" if api == "spot" else "/fapi/v1"
        app.router.add_route("POST", f"{root}/order", self._route(api, self._place))
        app.router.add_route("GET", f"{root}/order", self._route(api, self._query))
        app.router.add_route("DELETE", f"{root}/order", self._route(api, self._cancel))
        app.router.add_route("GET", f"{root}/openOrders", self._route(api, self._open_orders))
        if api == "spot":
            app.router.add_route("GET", "/api/v3/myTrades", self._route("spot", self._my_trades))
            app.router.add_route("GET", "/api/v3/account", self._route("spot", self._account))
        else:
            app.router.add_route("GET", "/fapi/v1/userTrades", self._route("usdm", self._my_trades))
            app.router.add_route("GET", "/fapi/v2/balance", self._route("usdm", self._futures_balance))

    def _route(self, api: str, action: Callable[[str, dict[str, str]], Any]) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self.desk.serve(request, "X-MBX-APIKEY", _binance_error,
                                         lambda params: web.json_response(action(api, params)))  # fmt: skip

        return handle

    def _place(self, api: str, params: dict[str, str]) -> Any:
        order = self.desk.place(
            api, params["symbol"], params["side"], params["type"], params.get("timeInForce", "GTC"),
            Decimal(params["quantity"]), Decimal(params["price"]) if "price" in params else None,
            params.get("newClientOrderId") or f"local-{len(self.desk.orders) + 1}", params.get("reduceOnly") == "true",
        )  # fmt: skip
        return self._order_json(order, full=True)

    def _find(self, api: str, params: dict[str, str]) -> DeskOrder | None:
        return self.desk.find(
            api, params.get("symbol"), params.get("origClientOrderId"), params.get("orderId")
        )

    def _query(self, api: str, params: dict[str, str]) -> Any:
        order = self._find(api, params)
        if order is None:
            raise Refused("not_found", "Order does not exist.")
        return self._order_json(order)

    def _cancel(self, api: str, params: dict[str, str]) -> Any:
        return self._order_json(self.desk.cancel(self._find(api, params)))

    def _open_orders(self, api: str, params: dict[str, str]) -> Any:
        return [self._order_json(o) for o in self.desk.open_orders(api, params.get("symbol"))]

    def _my_trades(self, api: str, params: dict[str, str]) -> Any:
        return [
            self._trade_json(t) for t in self.desk.trades_of(api, params.get("symbol"), params.get("orderId"))
        ]

    def _account(self, api: str, params: dict[str, str]) -> Any:
        balances = [
            {"asset": a, "free": str(v), "locked": "0"} for a, v in sorted(self.desk.balances.items())
        ]
        return {"makerCommission": 10, "takerCommission": 10, "canTrade": True, "updateTime": self.desk.now_ms(),
                "accountType": "SPOT", "balances": balances, "permissions": ["SPOT"]}  # fmt: skip

    def _futures_balance(self, api: str, params: dict[str, str]) -> Any:
        return [
            {"accountAlias": "local", "asset": a, "balance": str(v), "crossWalletBalance": str(v),
             "crossUnPnl": "0", "availableBalance": str(v), "maxWithdrawAmount": str(v),
             "marginAvailable": True, "updateTime": self.desk.now_ms()}
            for a, v in sorted(self.desk.balances.items())
        ]  # fmt: skip

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
                for t in self.desk.trades if t.order is order
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


_BINANCE_CODES = {"duplicate": (400, -2010), "insufficient": (400, -2010), "would_take": (400, -2010),
                  "no_market": (400, -2010), "unknown": (400, -2011), "not_found": (400, -2013),
                  "auth": (401, -2015), "rate_limit": (429, -1003)}  # fmt: skip


def _binance_error(refused: Refused) -> web.Response:
    status, code = _BINANCE_CODES[refused.kind]
    return web.json_response({"code": code, "msg": refused.message}, status=status)


class BybitOrders:
    """Bybit v5 spot (category `spot`) order/account endpoints over a desk, in the documented formats
    (bybit-exchange.github.io/docs/v5: "Trade", "Account"): POST /v5/order/create, /v5/order/cancel,
    GET /v5/order/realtime (open and recent orders, by orderId or orderLinkId), /v5/execution/list,
    /v5/account/wallet-balance, and the private websocket `/v5/private` (order updates). Errors are HTTP 200 with `retCode`: 170213 order does not exist, 110072
    duplicate orderLinkId, 170131 insufficient balance, 10001 parameter error, 10003 invalid key, 10006 rate
    limit."""

    API = "bybit-spot"

    def __init__(self, desk: OrderDesk) -> None:
        self.desk = desk

    def register(self, app: web.Application) -> None:
        app.router.add_route("POST", "/v5/order/create", self._route(self._place))
        app.router.add_route("POST", "/v5/order/cancel", self._route(self._cancel))
        app.router.add_route("GET", "/v5/order/realtime", self._route(self._realtime))
        app.router.add_route("GET", "/v5/execution/list", self._route(self._executions))
        app.router.add_route("GET", "/v5/account/wallet-balance", self._route(self._wallet))
        app.router.add_route("GET", "/v5/private", self._private_stream)

    async def _private_stream(self, request: web.Request) -> web.StreamResponse:
        """The private websocket (docs/v5/ws/connect, websocket/private/order): `auth` with [key, expires,
        signature], `subscribe` to `order`, then every change of this account's spot orders is pushed as
        {"topic": "order", "data": [order, with "category": "spot"]}. `drop_streams` closes it."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.desk.requests.append(("WS", request.path))
        changed: asyncio.Queue[DeskOrder] = asyncio.Queue()
        authenticated, topics = False, set()

        def listener(order: DeskOrder) -> None:
            if authenticated and "order" in topics and order.api == self.API:
                changed.put_nowait(order)

        async def push() -> None:
            while True:
                order = await changed.get()
                body = dict(self._order_json(order), category="spot")
                await ws.send_json({"id": f"local-{order.order_id}-{order.update_ms}", "topic": "order",
                                    "creationTime": self.desk.now_ms(), "data": [body]})  # fmt: skip

        self.desk.listeners.append(listener)
        self.desk.streams.append(ws)
        pusher = asyncio.ensure_future(push())
        try:
            async for message in ws:
                request_body = json.loads(message.data)
                op, req_id = request_body.get("op"), request_body.get("req_id", "")
                if op == "auth":
                    authenticated = len(request_body.get("args", [])) == 3
                    await ws.send_json({"success": authenticated, "ret_msg": "" if authenticated else "auth failed",
                                        "op": "auth", "conn_id": "local"})  # fmt: skip
                elif op == "subscribe":
                    topics.update(request_body.get("args", []))
                    self.desk.requests.append(("WS", "subscribe " + ",".join(request_body.get("args", []))))
                    await ws.send_json({"success": authenticated, "ret_msg": "", "conn_id": "local",
                                        "req_id": req_id, "op": "subscribe"})  # fmt: skip
                elif op == "ping":
                    await ws.send_json({"success": True, "ret_msg": "pong", "conn_id": "local", "req_id": req_id,
                                        "op": "ping"})  # fmt: skip
        finally:
            pusher.cancel()
            self.desk.listeners.remove(listener)
            self.desk.streams.remove(ws)
        return ws

    def _route(self, action: Callable[[dict[str, str]], Any]) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self.desk.serve(
                request, "X-BAPI-API-KEY", _bybit_error, lambda p: _bybit_ok(action(p))
            )

        return handle

    def _place(self, params: dict[str, str]) -> Any:
        if params.get("category") != "spot":
            raise Refused("params", f"category {params.get('category')!r} is not served (spot only)")
        tif = params.get("timeInForce", "GTC")
        kind = (
            "MARKET" if params["orderType"] == "Market" else "LIMIT_MAKER" if tif == "PostOnly" else "LIMIT"
        )
        order = self.desk.place(
            self.API, params["symbol"], params["side"].upper(), kind, "IOC" if tif == "IOC" else "GTC",
            Decimal(params["qty"]), Decimal(params["price"]) if "price" in params else None,
            params.get("orderLinkId") or f"local-{len(self.desk.orders) + 1}",
        )  # fmt: skip
        return {"orderId": str(order.order_id), "orderLinkId": order.client_id}

    def _find(self, params: dict[str, str]) -> DeskOrder | None:
        return self.desk.find(
            self.API, params.get("symbol"), params.get("orderLinkId"), params.get("orderId")
        )

    def _cancel(self, params: dict[str, str]) -> Any:
        order = self.desk.cancel(self._find(params))
        return {"orderId": str(order.order_id), "orderLinkId": order.client_id}

    def _realtime(self, params: dict[str, str]) -> Any:
        if params.get("orderLinkId") or params.get("orderId"):
            found = self._find(params)
            orders = [] if found is None else [found]
        else:
            orders = self.desk.open_orders(self.API, params.get("symbol"))
        return {"list": [self._order_json(o) for o in orders], "nextPageCursor": "", "category": "spot"}

    def _executions(self, params: dict[str, str]) -> Any:
        trades = self.desk.trades_of(self.API, params.get("symbol"), params.get("orderId"))
        return {"list": [self._execution_json(t) for t in trades], "nextPageCursor": "", "category": "spot"}

    def _wallet(self, params: dict[str, str]) -> Any:
        coins = [{"coin": a, "walletBalance": str(v), "equity": str(v), "locked": "0", "free": str(v)}
                 for a, v in sorted(self.desk.balances.items())]  # fmt: skip
        return {"list": [{"accountType": "UNIFIED", "coin": coins}]}

    @staticmethod
    def _order_json(order: DeskOrder) -> dict[str, Any]:
        status = {"NEW": "New", "PARTIALLY_FILLED": "PartiallyFilled", "FILLED": "Filled"}.get(
            order.status, "Cancelled"
        )
        average = order.quote / order.executed if order.executed else Decimal(0)
        return {
            "orderId": str(order.order_id), "orderLinkId": order.client_id, "symbol": order.symbol,
            "price": str(order.price or 0), "qty": str(order.quantity), "side": order.side.capitalize(),
            "orderStatus": status, "avgPrice": str(average), "leavesQty": str(order.quantity - order.executed),
            "cumExecQty": str(order.executed), "cumExecValue": str(order.quote), "cumExecFee": "0",
            "timeInForce": order.time_in_force, "orderType": "Market" if order.type == "MARKET" else "Limit",
            "reduceOnly": False, "createdTime": str(order.time_ms), "updatedTime": str(order.update_ms),
        }  # fmt: skip

    @staticmethod
    def _execution_json(trade: DeskTrade) -> dict[str, Any]:
        order = trade.order
        return {
            "symbol": order.symbol, "orderId": str(order.order_id), "orderLinkId": order.client_id,
            "side": order.side.capitalize(), "orderPrice": str(order.price or 0), "orderQty": str(order.quantity),
            "orderType": "Market" if order.type == "MARKET" else "Limit", "execFee": str(trade.commission),
            "execId": str(trade.trade_id), "execPrice": str(trade.price), "execQty": str(trade.quantity),
            "execType": "Trade", "execValue": str(trade.price * trade.quantity), "execTime": str(trade.time_ms),
            "isMaker": trade.maker, "feeRate": "0.001",
        }  # fmt: skip


_BYBIT_CODES = {"duplicate": 110072, "insufficient": 170131, "would_take": 10001, "no_market": 10001,
                "params": 10001, "unknown": 170213, "not_found": 170213, "auth": 10003, "rate_limit": 10006}  # fmt: skip


def _bybit_ok(result: Any) -> web.Response:
    return web.json_response({"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {},
                              "time": OrderDesk.now_ms()})  # fmt: skip


def _bybit_error(refused: Refused) -> web.Response:
    return web.json_response({"retCode": _BYBIT_CODES[refused.kind], "retMsg": refused.message, "result": {},
                              "retExtInfo": {}, "time": OrderDesk.now_ms()})  # fmt: skip


def install_orders(desk: OrderDesk) -> Installer:
    """The order side of every venue of a `LocalExchange` that has one (Binance spot and USD-M, Bybit,
    Kraken)."""

    def install(venue: VenueServer) -> None:
        from tests.local_exchange.kraken_orders import KrakenOrders  # (it builds on this module)

        venue.state["orders"] = desk
        if venue.name == "binance":
            BinanceOrders(desk).register(venue.app, "spot")
        elif venue.name == "binanceusdm":
            BinanceOrders(desk).register(venue.app, "usdm")
        elif venue.name == "bybit":
            BybitOrders(desk).register(venue.app)
        elif venue.name == "kraken":
            KrakenOrders(desk).register(venue.app)

    return install
