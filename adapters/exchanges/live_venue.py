"""The live venue: the `application.ports.Venue` port over a ccxt async exchange.

Orders go out as REST requests from order commands; what the exchange answers becomes order events that are
inputs of the session (recorded in the venue's `orders.<venue>` stream, so a replay reads them back instead
of asking the exchange). The kernel calls `submit` synchronously: the request runs as a task, and its answer
reaches the kernel through the session's inbox, never through `drain`.

Idempotency. The client order id is derived from the order id (`client_ids`). A request that fails without
an answer (timeout, 429, 5xx) leaves the order's fate unknown, so every retry first looks the order up by
its client id and only sends it again when the exchange does not know it.

One record of what the session knows per order (`_Order`), fed both by what this adapter reports and by the
recorded events it sees again after a restart (`on_market`), so a fill is reported once per venue trade id
(`_Order.take_new`, the one dedupe rule here) whether it came from an order answer, polling or
reconciliation.

Order updates: pushed by the exchange where ccxt.pro has `watch_orders` (`watch`), and REST polling
(`poll`: the order by client id, then its trades by order id), which also covers a dropped stream.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt

from adapters.exchanges.breaker import BreakerConfig, CircuitBreaker, Transition
from adapters.exchanges.client_ids import FOUND_IN_ORDER_LISTS, by_client_id, client_order_id
from adapters.exchanges.errors import describe
from domain.events import (
    CancelOrder,
    Envelope,
    EventBase,
    OrderAccepted,
    OrderCanceled,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderFillEvent,
    OrderPartiallyFilled,
    OrderRejected,
    PlaceOrder,
    VenueCircuitChanged,
    input_event_id,
)
from domain.values import Liquidity, OrderType, TimeInForce

_ZERO = Decimal(0)
_NS_PER_MS = 1_000_000

Inbox = Callable[[tuple[str, EventBase]], None]
"""Where the venue's reports go: (stream, event), in the order they must be recorded."""


REFUSALS = (ccxt.AuthenticationError, ccxt.ArgumentsRequired, ccxt.BadRequest, ccxt.OperationRejected,
            ccxt.InsufficientFunds, ccxt.InvalidOrder, ccxt.NotSupported)  # fmt: skip
"""ccxt errors in which the exchange answered and refused. Anything else (timeouts, 429, a 5xx, an error
code ccxt does not know, a garbled answer) leaves the outcome unknown: Binance documents a 5xx as "execution
status UNKNOWN". Such a request is retried after a lookup, and counts against the breaker."""


def venue_stream(venue: str) -> str:
    """The input stream of a live venue's reports."""
    return f"orders.{venue}"


@dataclass
class _Order:
    command: PlaceOrder
    client_id: str
    symbol: str
    venue_order_id: str | None = None
    accepted: bool = False
    done: bool = False
    filled: Decimal = _ZERO
    trade_ids: set[str] = field(default_factory=set)
    """Venue trade ids already reported or recorded: membership only, never iterated."""
    sent_ns: int = 0
    """Local time of the last placement request (the command's time until one is sent)."""
    in_flight: bool = False
    """A placement is running: its own task settles the order's fate."""
    cancel_requested: str | None = None
    """The reason of a CancelOrder the exchange has not confirmed yet."""

    def take_new(self, trades: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The trades of this order not reported yet, in venue time order; they count as reported from now."""
        fresh = []
        for trade in sorted(trades, key=lambda t: (t.get("timestamp") or 0, str(t["id"]))):
            trade_id = str(trade["id"])
            if trade_id not in self.trade_ids:
                self.trade_ids.add(trade_id)
                fresh.append(trade)
        return fresh


@dataclass(frozen=True)
class LiveVenueConfig:
    retries: int = 3
    """Attempts after the first when a request gets no answer (each retry looks the order up first)."""
    retry_backoff_s: float = 0.2
    request_horizon_ns: int = 10_000_000_000
    """How long a placement request may still reach the exchange: Binance's `recvWindow` as ccxt sends it
    (10 s; Bybit's `recv_window` is 5 s). Only after it can "not found by client id" mean "never placed"."""
    breaker: BreakerConfig = field(default_factory=BreakerConfig)


class LiveVenue:
    def __init__(
        self, name: str, exchange: ccxt.Exchange, session_id: str, inbox: Inbox, clock: Callable[[], int],
        *, config: LiveVenueConfig | None = None, market_type: str | None = None, first_sequence: int = 0,
    ) -> None:  # fmt: skip
        self.name = name
        self.exchange = exchange
        exchange.number = str  # amounts as the exchange wrote them, never floats
        self.stream = venue_stream(name)
        self.config = config or LiveVenueConfig()
        self.breaker = CircuitBreaker(self.config.breaker)
        self.restoring = False
        """While a restarted session re-runs its recorded inputs: commands are noted, never sent."""
        self._session_id = session_id
        self._inbox = inbox
        self._clock = clock
        self._market_type = market_type
        self._sequence = first_sequence
        self._by_client: dict[str, _Order] = {}
        self._orders: dict[uuid.UUID, _Order] = {}
        """In the order they were submitted (polling walks them in that order)."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._counts = {"orders_sent": 0, "retries": 0, "found_by_client_id": 0, "failures": 0}

    # ---- the port -------------------------------------------------------------------------------------

    def submit(self, command: EventBase) -> list[EventBase]:
        if isinstance(command, PlaceOrder) and command.venue == self.name:
            client_id = client_order_id(self.exchange.id, command.order_id)
            try:
                symbol = self.symbol(command.instrument)
            except ValueError as exc:  # not traded here: refused without a request
                symbol, refusal = "", str(exc)
            else:
                refusal = ""
            order = _Order(command, client_id, symbol, sent_ns=command.envelope.event_time_ns)
            self._orders[command.order_id] = order
            self._by_client[client_id] = order
            if refusal:
                order.done = True
                if not self.restoring:  # (a restarted session recorded the rejection already)
                    self._report(order, OrderRejected, reason=refusal)
            elif not self.restoring:
                order.in_flight = True
                self._spawn(self._place(order))
        elif isinstance(command, CancelOrder) and command.venue == self.name:
            order = self._orders.get(command.order_id)
            if order is not None and not order.done:
                order.cancel_requested = command.reason or "canceled"
                if not self.restoring and not order.in_flight:
                    self._spawn(self._cancel(order))
        return []

    def on_market(self, event: EventBase) -> list[EventBase]:
        """Inputs pass by here: this venue's recorded reports tell it what the session already knows."""
        if isinstance(event, OrderEvent) and event.venue == self.name:
            order = self._orders.get(event.order_id)
            if order is not None:
                _observe(order, event)
        elif isinstance(event, VenueCircuitChanged) and event.venue == self.name and self.restoring:
            self.breaker.restore(event.state, event.failures, event.envelope.event_time_ns)
        return []

    def drain(self, until_ns: int) -> list[EventBase]:
        return []  # reports are inputs of the session: they come back through the inbox, recorded

    def counters(self) -> dict[str, Any]:
        return {**self._counts, "breaker": self.breaker.state, "breaker_opened": self.breaker.opened}

    # ---- lifecycle ------------------------------------------------------------------------------------

    def symbol(self, instrument: str) -> str:
        """The ccxt symbol of the venue's instrument id (e.g. BTCUSDT -> BTC/USDT on spot)."""
        markets = [m for m in self.exchange.markets_by_id.get(instrument, [])
                   if self._market_type is None or m["type"] == self._market_type]  # fmt: skip
        if not markets:
            kind = f"{self._market_type} " if self._market_type else ""
            raise ValueError(f"{self.name}: {self.exchange.id} lists no {kind}market {instrument!r}")
        return str(markets[0]["symbol"])

    async def settle(self) -> None:
        """Wait for every request in flight (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks))

    async def reconcile(self) -> None:
        """After a restart: ask the exchange about every order the session does not know to be done, and
        report what it missed (acceptances, fills, cancels); re-send cancels it had asked for."""
        await self.poll()
        for order in list(self._orders.values()):
            if order.cancel_requested is not None and order.accepted and not order.done:
                self._spawn(self._cancel(order))
        await self.settle()

    async def poll(self) -> None:
        """One round of REST polling: probe an open breaker when due, else refresh every open order."""
        transition = self.breaker.probe_due(self._clock())
        if transition is not None:
            self._report_breaker(transition)
            try:
                await self._request("probe", self.exchange.fetch_time)
            except ccxt.BaseError:
                return
        if not self.breaker.allows_orders:
            return
        for order in [o for o in self._orders.values() if not o.done and not o.in_flight]:
            try:
                await self._refresh(order)
            except ccxt.BaseError:
                return

    @property
    def streams_orders(self) -> bool:
        """Whether the exchange pushes order updates (a ccxt.pro exchange with watchOrders)."""
        return bool(self.exchange.has.get("watchOrders"))

    async def watch(self) -> None:
        """Order updates pushed by the exchange (ccxt.pro `watch_orders`), until cancelled: each is applied as
        a poll of that order would be, at once. Polling stays the safety net (a dropped stream, a missed
        message); a placement in flight is left to its own task."""
        backoff = self.config.retry_backoff_s
        while True:
            try:
                updates = await self.exchange.watch_orders()
            except ccxt.NetworkError:  # dropped: reconnect, backing off up to 30 s
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            except (
                ccxt.BaseError
            ):  # the exchange refuses the stream (e.g. the key lacks the right): poll only
                return
            backoff = self.config.retry_backoff_s
            for update in updates:
                order = self._by_client.get(str(update.get("clientOrderId")))
                if order is not None and not order.done and not order.in_flight:
                    await self._apply_or_leave(order, update)

    async def close(self) -> None:
        await self.settle()
        await self.exchange.close()

    # ---- requests -------------------------------------------------------------------------------------

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _request(self, what: str, call: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """One request; its outcome feeds the breaker: a refusal is an answer, anything else a failure."""
        try:
            result = await call(*args)
        except REFUSALS:
            self._report_breaker(self.breaker.success(what))
            raise
        except ccxt.BaseError as exc:
            self._counts["failures"] += 1
            self._report_breaker(self.breaker.failure(self._clock(), f"{what}: {describe(exc)}"))
            raise
        self._report_breaker(self.breaker.success(what))
        return result

    async def _lookup(self, order: _Order) -> dict[str, Any] | None:
        """The exchange's view of the order, by client id; None when it does not know it."""
        params = by_client_id(self.exchange.id, order.client_id)
        if self.exchange.id in FOUND_IN_ORDER_LISTS:  # with the order's trade ids (`_order_trades`)
            listed_with_trades = {**params, "trades": True}
            for listing in (self.exchange.fetch_open_orders, self.exchange.fetch_closed_orders):
                listed = await self._request(
                    "order lookup", listing, order.symbol, None, None, listed_with_trades
                )
                if listed:
                    return dict(listed[0])
            return None
        try:
            found: dict[str, Any] = await self._request(
                "order lookup",
                self.exchange.fetch_order,
                None,
                order.symbol,
                params,
            )
        except ccxt.OrderNotFound:
            return None
        return found

    async def _place(self, order: _Order) -> None:
        try:
            answer = await self._send(order)
        finally:
            order.in_flight = False
        if answer is not None:
            await self._apply_or_leave(order, answer)
        if order.cancel_requested is not None and order.accepted and not order.done:
            await self._cancel(order)

    async def _send(self, order: _Order) -> dict[str, Any] | None:
        """Place the order at most once: the exchange's order structure, or None when the venue refused it
        (reported) or its fate is unknown (polling looks it up by client id once the venue answers again)."""
        command = order.command
        for attempt in range(self.config.retries + 1):
            if not self.breaker.allows_orders:
                if attempt == 0:  # nothing sent: a plain refusal
                    self._reject(order, f"circuit breaker of {self.name} is {self.breaker.state}")
                return None
            try:
                if attempt:
                    self._counts["retries"] += 1
                    found = await self._lookup(order)
                    if found is not None:
                        self._counts["found_by_client_id"] += 1
                        return found
                self._counts["orders_sent"] += 1
                order.sent_ns = self._clock()
                answer: dict[str, Any] = await self._request(
                    "place order", self.exchange.create_order, order.symbol, command.order_type.value,
                    command.side.value, str(command.quantity), _price(command), self._order_params(order),
                )  # fmt: skip
                return answer
            except REFUSALS as exc:
                self._reject(order, describe(exc))
                return None
            except ccxt.BaseError:
                await asyncio.sleep(self.config.retry_backoff_s * (attempt + 1))
        return None

    def _reject(self, order: _Order, reason: str) -> None:
        self._report(order, OrderRejected, reason=reason)
        order.done = True

    def _order_params(self, order: _Order) -> dict[str, Any]:
        command = order.command
        params: dict[str, Any] = {"clientOrderId": order.client_id}
        if command.order_type is OrderType.LIMIT:
            params["timeInForce"] = "IOC" if command.time_in_force is TimeInForce.IOC else "GTC"
        if command.post_only:
            params["postOnly"] = True
        if command.reduce_only:
            params["reduceOnly"] = True
        return params

    async def _cancel(self, order: _Order) -> None:
        for attempt in range(self.config.retries + 1):
            if order.done or not self.breaker.allows_orders:
                return
            try:
                answer = await self._request("cancel order", self.exchange.cancel_order, None, order.symbol,
                                             by_client_id(self.exchange.id, order.client_id))  # fmt: skip
            except ccxt.OrderNotFound:
                answer = None  # already done (filled, canceled) or never placed: the lookup says which
            except REFUSALS:
                return  # refused: polling reports what the order does
            except ccxt.BaseError:
                await asyncio.sleep(self.config.retry_backoff_s * (attempt + 1))
                continue
            if answer is None or answer.get("status") is None:  # Bybit answers a cancel with the ids only
                try:
                    answer = await self._lookup(order)
                except ccxt.BaseError:
                    return  # polling will
                if answer is None:
                    return
            await self._apply_or_leave(order, answer)
            return

    async def _refresh(self, order: _Order) -> None:
        found = await self._lookup(order)
        if found is not None:
            await self._apply(order, found)
        elif not order.accepted and self._clock() - order.sent_ns >= self.config.request_horizon_ns:
            # No request of ours can still reach the exchange (each is void after the horizon): never placed.
            self._reject(order, "not known to the venue by its client order id: never placed")

    async def _apply_or_leave(self, order: _Order, answer: dict[str, Any]) -> None:
        """`_apply` from a request's own answer; a failure fetching its trades is left to polling."""
        try:
            await self._apply(order, answer)
        except ccxt.BaseError:
            return

    # ---- answers -> events ----------------------------------------------------------------------------

    async def _apply(self, order: _Order, answer: dict[str, Any]) -> None:
        """What an exchange order structure says: acceptance, the fills not reported yet, a terminal state."""
        if order.done:
            return
        status = answer.get("status")
        if not order.accepted:
            if status == "rejected":
                self._report(order, OrderRejected, reason=f"rejected by {self.exchange.id}")
                order.done = True
                return
            order.venue_order_id = str(answer["id"])
            order.accepted = True
            self._report(order, OrderAccepted, venue_order_id=order.venue_order_id,
                         exchange_time_ns=_ns(answer.get("timestamp")))  # fmt: skip
        filled = Decimal(answer.get("filled") or 0)
        if filled > order.filled:
            trades = await self._order_trades(order, answer)
            self._report_fills(order, [t for t in trades if str(t.get("order")) == order.venue_order_id])
        if order.done or order.filled < filled:  # a terminal state waits for every fill before it
            return
        if status == "canceled":
            self._report(order, OrderCanceled, reason=order.cancel_requested or f"canceled at {self.exchange.id}",
                         exchange_time_ns=_ns(answer.get("lastUpdateTimestamp")))  # fmt: skip
            order.done = True
        elif status == "expired":
            self._report(order, OrderExpired, exchange_time_ns=_ns(answer.get("lastUpdateTimestamp")))
            order.done = True

    async def _order_trades(self, order: _Order, answer: dict[str, Any]) -> list[dict[str, Any]]:
        """The trades of the order. Kraken's TradesHistory has no order filter and pages by 50 (a busy account
        would hide older fills): its orders list their own trade ids, read by QueryTrades."""
        args: tuple[Any, ...]
        if self.exchange.id not in FOUND_IN_ORDER_LISTS:
            call = self.exchange.fetch_my_trades
            args = (order.symbol, None, None, {"orderId": order.venue_order_id})
        elif answer.get("trades"):
            call = self.exchange.fetch_order_trades
            args = (order.venue_order_id, order.symbol, None, None, {"trades": answer["trades"]})
        else:  # an answer without them (AddOrder's): the next lookup brings them
            return []
        trades: list[dict[str, Any]] = await self._request("order trades", call, *args)
        return trades

    def _report_fills(self, order: _Order, trades: list[dict[str, Any]]) -> None:
        command = order.command
        for trade in order.take_new(trades):
            quantity = Decimal(trade["amount"])
            order.filled += quantity
            leaves = command.quantity - order.filled
            fee = trade.get("fee") or {}
            cls: type[OrderFillEvent] = OrderFilled if leaves <= _ZERO else OrderPartiallyFilled
            self._report(
                order, cls, instrument=command.instrument, side=command.side, price=Decimal(trade["price"]),
                quantity=quantity, fee=Decimal(fee.get("cost") or 0), fee_currency=fee.get("currency") or "",
                liquidity=Liquidity.MAKER if trade.get("takerOrMaker") == "maker" else Liquidity.TAKER,
                venue_trade_id=str(trade["id"]), cumulative_quantity=order.filled,
                leaves_quantity=max(leaves, _ZERO), exchange_time_ns=_ns(trade.get("timestamp")),
            )  # fmt: skip
            if leaves <= _ZERO:
                order.done = True

    def _envelope(self, cause: EventBase | None) -> Envelope:
        sequence = self._sequence
        self._sequence += 1
        now = self._clock()
        cause_id = None if cause is None else cause.envelope.event_id
        correlation = None if cause is None else (cause.envelope.correlation_id or cause_id)
        return Envelope(event_id=input_event_id(self._session_id, self.stream, sequence), causation_id=cause_id,
                        correlation_id=correlation, session_id=self._session_id, sequence=sequence,
                        event_time_ns=now, ingest_time_ns=now, source=self.name)  # fmt: skip

    def _report(self, order: _Order, cls: type[OrderEvent], **fields: Any) -> None:
        event = cls(envelope=self._envelope(order.command), order_id=order.command.order_id, venue=self.name,
                    **fields)  # fmt: skip
        self._inbox((self.stream, event))

    def _report_breaker(self, transition: Transition | None) -> None:
        if transition is None:
            return
        event = VenueCircuitChanged(envelope=self._envelope(None), venue=self.name, state=transition.state,
                                    failures=transition.failures, reason=transition.reason)  # fmt: skip
        self._inbox((self.stream, event))


def _observe(order: _Order, event: OrderEvent) -> None:
    """A recorded report of the order (after a restart): the session knows it, so it is never reported again."""
    if isinstance(event, OrderAccepted):
        order.accepted, order.venue_order_id = True, event.venue_order_id
    elif isinstance(event, OrderFillEvent):
        order.take_new([{"id": event.venue_trade_id}])
        order.filled = event.cumulative_quantity
        order.done = order.done or isinstance(event, OrderFilled)
    elif isinstance(event, OrderRejected | OrderCanceled | OrderExpired):
        order.done = True


def _price(command: PlaceOrder) -> str | None:
    return None if command.limit_price is None else str(command.limit_price)


def _ns(millis: Any) -> int | None:
    return None if millis is None else int(millis) * _NS_PER_MS
