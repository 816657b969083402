"""A deterministic simulated venue for backtests: the `application.ports.Venue` port over recorded data.

One instance simulates one venue (its `name`, e.g. 'binance-spot'); it only looks at market events of that
venue. Time is event time only. See docs/simulated-venue.md for the model and what it leaves out.

* `submit(PlaceOrder | CancelOrder)` at command time t: the command arrives at t + order latency.
* An arriving order is checked, accepted, and takes liquidity from the book as it is then (market and
  crossing limit orders, taker fee); the part of a market or IOC order that finds no liquidity is canceled;
  the rest of a GTC limit order rests at its price with a queue-position estimate.
* A resting order fills (maker fee, at its own price) on trades: a trade at its price on the other side
  first eats the quantity ahead, the excess fills it; a trade through its price fills it directly. Level
  decreases shrink the quantity ahead (never below zero; increases join behind).
* Liquidity taken by simulated orders is remembered per level until the next book update of that level, so
  two orders cannot take the same resting quantity.
* Venue events carry event_time = when they happen at the venue, and are released by `drain` once
  response latency has passed, in (due time, sequence) order. `submit` and `on_market` return whatever is
  already due at their own event time (non-empty only with zero latencies).
"""

from __future__ import annotations

import heapq
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from domain.book import (
    DeltaAction,
    L2Book,
    apply_delta,
    apply_snapshot,
    apply_top_of_book,
    check_delta,
    check_snapshot,
)
from domain.events import (
    BookDelta,
    BookSnapshot,
    CancelOrder,
    Envelope,
    Event,
    EventBase,
    InstrumentDefined,
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderPartiallyFilled,
    OrderRejected,
    PlaceOrder,
    QuoteTick,
    TradeTick,
    derive_envelope,
)
from domain.instruments import is_inverse, settlement_value, units
from domain.values import BPS, Liquidity, OrderType, Side, TimeInForce

_ZERO = Decimal(0)

_Builder = Callable[[Envelope], Event]
"""Makes a venue event from its envelope."""


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    maker_bps: Decimal
    taker_bps: Decimal


DEFAULT_FEES: Mapping[str, FeeSchedule] = {
    "binance-spot": FeeSchedule(Decimal(10), Decimal(10)),
    "binance-usdm": FeeSchedule(Decimal(2), Decimal(5)),
    "binance-futures": FeeSchedule(Decimal(2), Decimal(5)),
}
"""Base-tier fees (no BNB discount). Venues not listed get `SimulatedVenueConfig.default_fees`."""


@dataclass(frozen=True)
class SimulatedVenueConfig:
    order_latency_ns: int = 5_000_000
    """Engine -> venue: a command sent at t acts at the venue at t + this."""
    response_latency_ns: int = 5_000_000
    """Venue -> engine: an event that happens at the venue at t is released at t + this."""
    fees: Mapping[str, FeeSchedule] = field(default_factory=lambda: dict(DEFAULT_FEES))
    default_fees: FeeSchedule = FeeSchedule(Decimal(10), Decimal(10))
    instruments: Mapping[str, InstrumentDefined] = field(default_factory=dict)
    """Specifications known before the session's own InstrumentDefined events (which replace them)."""

    def fees_for(self, venue: str) -> FeeSchedule:
        found = self.fees.get(venue)
        return found if found is not None else self.default_fees


@dataclass(slots=True)
class RestingOrder:
    command: PlaceOrder
    venue_order_id: str
    price: Decimal
    remaining: Decimal
    filled: Decimal = _ZERO
    queue_ahead: Decimal = _ZERO
    """Estimated quantity ahead of this order at its price level."""

    @property
    def rests_on_bids(self) -> bool:
        return self.command.side is Side.BUY


class SimulatedVenue:
    def __init__(self, name: str, config: SimulatedVenueConfig | None = None) -> None:
        self.name = name
        self.config = config or SimulatedVenueConfig()
        if self.config.order_latency_ns < 0 or self.config.response_latency_ns < 0:
            raise ValueError("latencies must not be negative")
        self.fees = self.config.fees_for(name)
        self.books: dict[str, L2Book] = {}
        self.specs: dict[str, InstrumentDefined] = dict(self.config.instruments)
        self.resting: dict[uuid.UUID, RestingOrder] = {}
        """Working orders in arrival order (the order trades reach them)."""
        self._consumed: dict[str, dict[tuple[bool, Decimal], Decimal]] = {}
        self._seen_orders: set[uuid.UUID] = set()  # membership only
        self._actions: list[tuple[int, int, PlaceOrder | CancelOrder]] = []
        self._outbox: list[tuple[int, int, Event]] = []
        self._sequence = 0
        self._emitted = 0
        self._orders = 0
        self._trades = 0

    # ---- the port -------------------------------------------------------------------------------------

    def submit(self, command: EventBase) -> list[Event]:
        now = command.envelope.event_time_ns
        if isinstance(command, PlaceOrder | CancelOrder):
            if command.venue != self.name:
                if isinstance(command, PlaceOrder):
                    self._emit(command, now, lambda env: OrderRejected(
                        envelope=env, order_id=command.order_id, venue=command.venue,
                        reason=f"sent to venue {self.name!r}"))  # fmt: skip
            else:
                self._push_action(now + self.config.order_latency_ns, command)
        return self.drain(now)

    def on_market(self, event: EventBase) -> list[Event]:
        now = event.envelope.event_time_ns
        self._run_actions(now)  # orders arriving at or before this update see the book before it
        if isinstance(event, BookDelta):
            if event.venue == self.name:
                self._on_delta(event)
        elif isinstance(event, TradeTick):
            if event.venue == self.name:
                self._on_trade(event)
        elif isinstance(event, QuoteTick):
            if event.venue == self.name:
                self._on_quote(event)
        elif isinstance(event, BookSnapshot):
            if event.venue == self.name:
                self._on_snapshot(event)
        elif isinstance(event, InstrumentDefined):
            if event.venue == self.name:
                self.specs[event.instrument] = event
        return self._release(now)

    def drain(self, until_ns: int) -> list[Event]:
        self._run_actions(until_ns)
        return self._release(until_ns)

    # ---- scheduling -----------------------------------------------------------------------------------

    def _push_action(self, at_ns: int, command: PlaceOrder | CancelOrder) -> None:
        self._sequence += 1
        heapq.heappush(self._actions, (at_ns, self._sequence, command))

    def _run_actions(self, until_ns: int) -> None:
        actions = self._actions
        while actions and actions[0][0] <= until_ns:
            at_ns, _, command = heapq.heappop(actions)
            if isinstance(command, PlaceOrder):
                self._arrive(command, at_ns)
            else:
                self._cancel(command, at_ns)

    def _emit(self, cause: EventBase, at_ns: int, build: _Builder) -> None:
        envelope = derive_envelope(cause.envelope, self.name, self._emitted, event_time_ns=at_ns)
        self._emitted += 1
        self._sequence += 1
        heapq.heappush(
            self._outbox, (at_ns + self.config.response_latency_ns, self._sequence, build(envelope))
        )

    def _release(self, until_ns: int) -> list[Event]:
        out: list[Event] = []
        outbox = self._outbox
        while outbox and outbox[0][0] <= until_ns:
            out.append(heapq.heappop(outbox)[2])
        return out

    # ---- orders ---------------------------------------------------------------------------------------

    def _reject(self, command: PlaceOrder, at_ns: int, reason: str) -> None:
        self._emit(command, at_ns, lambda env: OrderRejected(
            envelope=env, order_id=command.order_id, venue=self.name, reason=reason))  # fmt: skip

    def _arrive(self, command: PlaceOrder, at_ns: int) -> None:
        if command.order_id in self._seen_orders:
            self._reject(command, at_ns, "duplicate order id")
            return
        self._seen_orders.add(command.order_id)
        limit = command.limit_price
        if command.order_type is OrderType.LIMIT and (limit is None or limit <= _ZERO):
            self._reject(command, at_ns, "limit order needs a positive limit_price")
            return
        if command.instrument not in self.specs:
            self._reject(command, at_ns, f"no InstrumentDefined for {command.instrument} on {self.name}")
            return
        if command.order_type is OrderType.MARKET:
            limit = None
        takes_only = command.order_type is OrderType.MARKET or command.time_in_force is TimeInForce.IOC
        book = self.books.get(command.instrument)
        if book is None and takes_only:
            self._reject(command, at_ns, f"no market data for {command.instrument} on {self.name}")
            return
        self._orders += 1
        venue_order_id = f"{self.name}-o{self._orders}"
        self._emit(command, at_ns, lambda env: OrderAccepted(
            envelope=env, order_id=command.order_id, venue=self.name, venue_order_id=venue_order_id))  # fmt: skip
        order = RestingOrder(command, venue_order_id, limit or _ZERO, command.quantity)
        if book is not None:
            self._take(order, book, limit, at_ns)
        if order.remaining == _ZERO:
            return
        if takes_only:
            reason = "IOC remainder canceled: no more liquidity" + (
                "" if limit is None else f" at {limit} or better"
            )
            self._emit(command, at_ns, lambda env: OrderCanceled(
                envelope=env, order_id=command.order_id, venue=self.name, reason=reason))  # fmt: skip
            return
        if book is not None:
            order.queue_ahead = book.side(order.rests_on_bids).quantity_at(order.price)
        self.resting[command.order_id] = order

    def _take(self, order: RestingOrder, book: L2Book, limit: Decimal | None, at_ns: int) -> None:
        """Walk the other side of the book from the best price, taking what simulated orders left."""
        buying = order.command.side is Side.BUY
        side = book.side(not buying)
        consumed = self._consumed.setdefault(order.command.instrument, {})
        walk = iter(side.prices) if buying else reversed(side.prices)  # best first: asks up, bids down
        fills: list[tuple[Decimal, Decimal]] = []
        remaining = order.remaining
        for price in walk:
            if remaining == _ZERO:
                break
            if limit is not None and (price > limit if buying else price < limit):
                break
            key = (not buying, price)
            available = side.levels[price] - consumed.get(key, _ZERO)
            if available <= _ZERO:
                continue
            take = min(remaining, available)
            consumed[key] = consumed.get(key, _ZERO) + take
            remaining -= take
            fills.append((price, take))
        for price, take in fills:
            self._fill(order, order.command, price, take, Liquidity.TAKER, at_ns)

    def _fill(
        self, order: RestingOrder, cause: EventBase, price: Decimal, quantity: Decimal, liquidity: Liquidity,
        at_ns: int,
    ) -> None:  # fmt: skip
        command = order.command
        spec = self.specs[command.instrument]
        bps = self.fees.maker_bps if liquidity is Liquidity.MAKER else self.fees.taker_bps
        fee = settlement_value(units(spec, quantity), price, is_inverse(spec)) * bps / BPS
        order.remaining -= quantity
        order.filled += quantity
        self._trades += 1
        trade_id = f"{self.name}-{self._trades}"
        cumulative, leaves = order.filled, order.remaining
        cls = OrderFilled if leaves == _ZERO else OrderPartiallyFilled

        def build(env: Envelope) -> Event:
            return cls(
                envelope=env, order_id=command.order_id, venue=self.name, instrument=command.instrument,
                side=command.side, price=price, quantity=quantity, fee=fee, fee_currency=spec.settlement,
                liquidity=liquidity, venue_trade_id=trade_id, cumulative_quantity=cumulative,
                leaves_quantity=leaves,
            )  # fmt: skip

        self._emit(cause, at_ns, build)

    def _cancel(self, command: CancelOrder, at_ns: int) -> None:
        order = self.resting.pop(command.order_id, None)
        if order is None:
            return  # unknown or already done: a real venue answers "unknown order"; nothing changes
        reason = command.reason or "canceled"
        self._emit(command, at_ns, lambda env: OrderCanceled(
            envelope=env, order_id=command.order_id, venue=self.name, reason=reason))  # fmt: skip

    # ---- market data ----------------------------------------------------------------------------------

    def _book(self, instrument: str) -> L2Book:
        book = self.books.get(instrument)
        if book is None:
            book = self.books[instrument] = L2Book(self.name, instrument)
        return book

    def _on_snapshot(self, event: BookSnapshot) -> None:
        book = self._book(event.instrument)
        if check_snapshot(event):
            book.in_sync = False  # keep the last good levels for matching
            return
        apply_snapshot(book, event)
        self._consumed.pop(event.instrument, None)
        self._requeue(event.instrument, book, None)

    def _on_delta(self, event: BookDelta) -> None:
        book = self.books.get(event.instrument)
        verdict = check_delta(book, event)
        if verdict.action is DeltaAction.RESYNC:
            self._book(event.instrument).in_sync = False
        if verdict.action is not DeltaAction.APPLY or book is None:
            return
        apply_delta(book, event)
        consumed = self._consumed.get(event.instrument)
        if consumed:
            for price, _ in event.bids:
                consumed.pop((True, price), None)
            for price, _ in event.asks:
                consumed.pop((False, price), None)
        if self.resting:
            self._requeue(event.instrument, book, event)

    def _on_quote(self, event: QuoteTick) -> None:
        book = self.books.get(event.instrument)
        if book is not None and book.has_snapshot:
            return  # L2 is authoritative once seen
        book = self._book(event.instrument)
        if apply_top_of_book(book, event):
            self._consumed.pop(event.instrument, None)
            self._requeue(event.instrument, book, None)

    def _requeue(self, instrument: str, book: L2Book, delta: BookDelta | None) -> None:
        """Level decreases shrink the quantity ahead: it never exceeds what the level now shows."""
        for order in self.resting.values():
            if order.command.instrument != instrument:
                continue
            side = book.side(order.rests_on_bids)
            if delta is not None:
                levels = delta.bids if order.rests_on_bids else delta.asks
                if not any(price == order.price for price, _ in levels):
                    continue
            order.queue_ahead = min(order.queue_ahead, side.quantity_at(order.price))

    def _on_trade(self, trade: TradeTick) -> None:
        if not self.resting or trade.size <= _ZERO:
            return
        left = trade.size
        for order in list(self.resting.values()):
            if left <= _ZERO:
                break
            command = order.command
            if command.instrument != trade.instrument:
                continue
            if command.side is Side.BUY:
                through = trade.price < order.price
                at_level = trade.price == order.price and trade.aggressor_side is Side.SELL
            else:
                through = trade.price > order.price
                at_level = trade.price == order.price and trade.aggressor_side is Side.BUY
            if through:
                order.queue_ahead = _ZERO
                quantity = min(order.remaining, left)
            elif at_level:
                excess = left - order.queue_ahead
                order.queue_ahead = max(_ZERO, order.queue_ahead - left)
                quantity = min(order.remaining, excess) if excess > _ZERO else _ZERO
            else:
                continue
            if quantity > _ZERO:
                left -= quantity
                self._fill(order, trade, order.price, quantity, Liquidity.MAKER, trade.envelope.event_time_ns)
                if order.remaining == _ZERO:
                    del self.resting[command.order_id]


def build_simulated_venues(
    names: Iterable[str], config: SimulatedVenueConfig | None = None
) -> dict[str, SimulatedVenue]:
    """One simulated venue per name, keyed by name (what `application.engine.Kernel` takes)."""
    return {name: SimulatedVenue(name, config) for name in names}
