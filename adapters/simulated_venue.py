"""A deterministic simulated venue for backtests: the `application.ports.Venue` port over recorded data.

One instance simulates one venue (its `name`, e.g. 'binance-spot'); it only looks at market events of that
venue. Time is event time only. docs/simulated-venue.md says exactly what is modelled and what is not.

Two clocks, as in hftbacktest: a command the engine sends at local time t acts at the venue at
t + order latency (the venue's clock); what happens at the venue at T reaches the engine at
T + response latency, which is the event's envelope time (so a reaction to it is stamped then), while
`exchange_time_ns` keeps T. The venue's market clock is the recorded receive time of the market data.
"""

from __future__ import annotations

import heapq
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from adapters.queue_models import QueueModel, QueuePosition
from adapters.venue_rules import (
    REDUCE_ONLY_REJECTED,
    UNKNOWN_SYMBOL,
    WOULD_TAKE,
    filter_failure,
    floor_to_lot,
)
from application.run_config import QueueModelName
from domain.book import SyncedBook, SyncStatus
from domain.events import (
    BookDelta,
    BookSnapshot,
    CancelOrder,
    EventBase,
    InstrumentDefined,
    Level,
    OrderAccepted,
    OrderCanceled,
    OrderEvent,
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
from domain.wake import Always, WakeSpec

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    maker_bps: Decimal
    taker_bps: Decimal


@dataclass(frozen=True)
class SimulatedVenueConfig:
    order_latency_ns: int = 5_000_000
    """Local -> venue: a command sent at local time t acts at the venue at t + this."""
    response_latency_ns: int = 5_000_000
    """Venue -> local: what happens at the venue at T reaches the engine at T + this."""
    fees: Mapping[str, FeeSchedule] = field(default_factory=dict)
    """Rates per venue as the run resolved them (`RunConfig.venues`); a venue not listed charges the rates of
    the instrument's specification (its InstrumentDefined), as the exchange does an account of its base tier."""
    queue_model: QueueModelName = "risk_averse"
    instruments: Mapping[str, InstrumentDefined] = field(default_factory=dict)
    """Specifications known before the session's own InstrumentDefined events (which replace them)."""


# Why the venue matched a taker order against the exchange's top of book (bookTicker) instead of its L2 book.
FALLBACK_OUT_OF_SYNC = "book out of sync"
FALLBACK_STALE = "book older than the ticker"


class VenueLiquidity(Protocol):
    """What the venue matches against on one instrument: its own view of the recorded L2 book and ticker.
    `OwnBook` keeps it in Python; a compiled market core keeps the same view in Rust (`track_venue`)."""

    def take(self, event: BookDelta | BookSnapshot | QuoteTick) -> bool:
        """Take one of the instrument's rows; True if the liquidity matched against may have changed."""
        ...

    def fallback_reason(self) -> str: ...

    def levels(self, bids: bool, reason: str) -> Iterator[Level]: ...

    def quantity_at(self, bids: bool, price: Decimal, reason: str) -> Decimal | None: ...


LiquiditySource = Callable[[str, str], VenueLiquidity]
"""(venue, instrument) -> the venue's liquidity of that instrument."""


@dataclass(slots=True)
class _Market:
    """What the venue knows of one instrument."""

    liquidity: VenueLiquidity
    spec: InstrumentDefined | None = None


@dataclass(slots=True)
class OwnBook:
    """`VenueLiquidity` kept by the venue itself: its own L2 book under the sync rules plus the last ticker
    it accepted."""

    venue: str
    instrument: str
    book: SyncedBook | None = None
    quote: QuoteTick | None = None

    def take(self, event: BookDelta | BookSnapshot | QuoteTick) -> bool:
        if isinstance(event, QuoteTick):
            if event.bid_price <= _ZERO or event.ask_price <= _ZERO or event.bid_price >= event.ask_price:
                return False  # a crossed or non-positive ticker cannot be matched against: ignored
            self.quote = event
            return True
        book = self.book = self.book or SyncedBook(self.venue, self.instrument)
        status = book.apply(event).status
        # Out of sync: matching falls back to the ticker from now on (a change too).
        return status is SyncStatus.OUT_OF_SYNC or status is SyncStatus.APPLIED

    def fallback_reason(self) -> str:
        """Why the L2 book must not be matched against now ('' if it may). No L2 book at all (a venue
        recorded with tickers only) is not a fallback: the ticker is then all the venue has."""
        book, quote = self.book, self.quote
        if book is None:
            return ""
        if not book.in_sync:
            return FALLBACK_OUT_OF_SYNC
        if quote is None:
            return ""
        return FALLBACK_STALE if book.behind(quote) else ""

    def levels(self, bids: bool, reason: str) -> Iterator[Level]:
        """The side's recorded liquidity, best first, as the venue holds it: the L2 book; with a fallback
        `reason` the ticker's level, then (the book in sync but older) the book's levels beyond it; with no
        L2 book at all, the ticker. An out-of-sync book is never used."""
        book, quote = self.book, self.quote
        beyond: Decimal | None = None
        if quote is not None and (book is None or reason):
            beyond, size = (quote.bid_price, quote.bid_size) if bids else (quote.ask_price, quote.ask_size)
            if size > _ZERO:
                yield beyond, size
        if book is None or not book.in_sync:
            return
        side = book.side(bids)
        for level in _walk(side.prices, bids):
            if beyond is None or (level < beyond if bids else level > beyond):
                yield level, side.levels[level]

    def quantity_at(self, bids: bool, price: Decimal, reason: str) -> Decimal | None:
        """Recorded quantity at `price` on a side; None when what the venue holds does not reach that deep
        (an out-of-sync book behind the ticker, or a price beyond the known levels)."""
        for level, size in self.levels(bids, reason):
            if level == price:
                return size
            if level < price if bids else level > price:
                return _ZERO
        return None


def _walk(prices: list[Decimal], bids: bool) -> Iterator[Decimal]:
    return reversed(prices) if bids else iter(prices)


@dataclass(slots=True)
class RestingOrder:
    command: PlaceOrder
    venue_order_id: str
    arrival: int
    """Arrival rank at the venue: time priority among our orders."""
    remaining: Decimal
    filled: Decimal = _ZERO
    queue: QueuePosition = field(default_factory=lambda: QueuePosition(_ZERO))
    level_quantity: Decimal | None = None
    """Recorded quantity at the order's price when the queue model last saw it (None: not known yet)."""

    @property
    def price(self) -> Decimal:
        assert self.command.limit_price is not None
        return self.command.limit_price

    @property
    def is_buy(self) -> bool:
        return self.command.side is Side.BUY


class SimulatedVenue:
    def __init__(self, name: str, config: SimulatedVenueConfig | None = None) -> None:
        self.name = name
        self._liquidity: LiquiditySource = OwnBook
        self.config = config or SimulatedVenueConfig()
        if self.config.order_latency_ns < 0 or self.config.response_latency_ns < 0:
            raise ValueError("latencies must not be negative")
        self.fees = self.config.fees.get(name)
        self.queue_model = QueueModel(self.config.queue_model)
        self.markets: dict[str, _Market] = {
            instrument: _Market(OwnBook(name, instrument), spec)
            for instrument, spec in sorted(self.config.instruments.items())
        }
        self.resting: dict[uuid.UUID, RestingOrder] = {}
        """Working orders in arrival order."""
        self.positions: dict[tuple[str, str], Decimal] = {}
        """(account, instrument) -> net quantity from this venue's fills (for reduce-only)."""
        self._taken: dict[tuple[str, bool, Decimal], tuple[Decimal, Decimal]] = {}
        """(instrument, bid side, price) -> (recorded quantity then, quantity our orders took from it)."""
        self.fallbacks: dict[str, int] = {}
        """Taker matches against the ticker instead of the L2 book, by reason (for the run's report)."""
        self._seen_orders: set[uuid.UUID] = set()  # membership only
        self._actions: list[tuple[int, int, PlaceOrder | CancelOrder]] = []
        self._outbox: list[tuple[int, int, EventBase]] = []
        self._sequence = 0
        self._emitted = 0
        self._orders = 0
        self._trades = 0

    # ---- the port -------------------------------------------------------------------------------------

    def submit(self, command: EventBase) -> list[EventBase]:
        now = command.envelope.event_time_ns
        if isinstance(command, PlaceOrder | CancelOrder):
            if command.venue != self.name:
                if isinstance(command, PlaceOrder):
                    self._emit(
                        command, now, OrderRejected, command.order_id, reason=f"sent to venue {self.name!r}"
                    )
            else:
                self._push_action(now + self.config.order_latency_ns, command)
        return self.drain(now)

    def on_market(self, event: EventBase) -> list[EventBase]:
        now = event.envelope.event_time_ns
        self._run_actions(now)  # orders arriving at or before this update see the book before it
        if getattr(event, "venue", None) == self.name:
            if isinstance(event, TradeTick):
                self._on_trade(event)
            elif isinstance(event, BookDelta | BookSnapshot | QuoteTick):
                if self._on_book(event):
                    self._match_resting(event, now)
            elif isinstance(event, InstrumentDefined):
                self._market(event.instrument).spec = event
        return self._release(now)

    def drain(self, until_ns: int) -> list[EventBase]:
        self._run_actions(until_ns)
        return self._release(until_ns)

    def keep_liquidity_in(self, source: LiquiditySource) -> None:
        """Have `source` keep the venue's view of the market (a compiled core that runs the market rows),
        before the run's first row; `observe` is then never needed."""
        self._liquidity = source
        for instrument, market in self.markets.items():
            market.liquidity = source(self.name, instrument)

    def observe(self, event: EventBase) -> None:
        """A market row a gated run did not wake the venue for (`wake` was false on it): only what the venue
        knows of the market moves, since nothing is due and no resting order is on its instrument."""
        if isinstance(event, BookDelta | BookSnapshot | QuoteTick) and event.venue == self.name:
            self._on_book(event)

    def wake(self) -> WakeSpec:
        """When the venue could act on a market row: at the first row at or after its next due action (an
        order arriving, a cancel, an answer reaching the engine), and on every row of an instrument it has
        resting orders on (queue positions, fills through the book, trades). Not `LevelTouched`: whether the
        venue matches against its L2 book or the ticker (out of sync, behind the ticker) changes with a delta at
        any price."""
        due = [queue[0][0] for queue in (self._actions, self._outbox) if queue]
        resting = frozenset((self.name, order.command.instrument) for order in self.resting.values())
        predicates = (Always(keys=resting),) if resting else ()
        return WakeSpec(predicates, timer_at_ns=min(due) if due else None)

    def counters(self) -> dict[str, Any]:
        """What the run's report shows of this venue: orders accepted, and how many of them were matched
        against the exchange's top of book instead of the L2 book, by reason."""
        return {"orders_accepted": self._orders, "fallbacks": dict(sorted(self.fallbacks.items()))}

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

    def _emit(
        self, cause: EventBase, at_ns: int, cls: type[OrderEvent], order_id: uuid.UUID, **fields: Any
    ) -> None:
        """An event that happens at the venue at `at_ns`; the engine learns of it a response latency later."""
        local_ns = at_ns + self.config.response_latency_ns
        envelope = derive_envelope(cause.envelope, self.name, self._emitted, event_time_ns=local_ns)
        self._emitted += 1
        self._sequence += 1
        event = cls(envelope=envelope, order_id=order_id, venue=self.name, exchange_time_ns=at_ns, **fields)
        heapq.heappush(self._outbox, (local_ns, self._sequence, event))

    def _release(self, until_ns: int) -> list[EventBase]:
        out: list[EventBase] = []
        outbox = self._outbox
        while outbox and outbox[0][0] <= until_ns:
            out.append(heapq.heappop(outbox)[2])
        return out

    # ---- orders ---------------------------------------------------------------------------------------

    def _reject(self, command: PlaceOrder, at_ns: int, reason: str) -> None:
        self._emit(command, at_ns, OrderRejected, command.order_id, reason=reason)

    def _refusal(self, command: PlaceOrder, market: _Market, reason: str) -> str:
        """Why the venue refuses the order at arrival ('' if it accepts it)."""
        spec = market.spec
        if spec is None:
            return f"{UNKNOWN_SYMBOL} (no instrument definition for {command.instrument} on {self.name})"
        if command.order_id in self._seen_orders:
            return "Duplicate order sent. (order id already used)"
        if command.order_type is OrderType.LIMIT and (
            command.limit_price is None or command.limit_price <= _ZERO
        ):
            return "Invalid price. (a limit order needs a positive limit_price)"
        if command.post_only and command.order_type is OrderType.MARKET:
            return f"{WOULD_TAKE} (a post-only order cannot be a market order)"
        buying = command.side is Side.BUY
        best = next(market.liquidity.levels(not buying, reason), None)
        price = command.limit_price if command.order_type is OrderType.LIMIT else (best[0] if best else None)
        failure = filter_failure(spec, command, price)
        if failure:
            return failure
        if command.post_only and best is not None and command.limit_price is not None:
            if best[0] <= command.limit_price if buying else best[0] >= command.limit_price:
                return (
                    f"{WOULD_TAKE} (best {'ask' if buying else 'bid'} {best[0]}, limit {command.limit_price})"
                )
        if command.reduce_only:
            position = self.positions.get((command.account, command.instrument), _ZERO)
            closes = -position if buying else position
            if command.quantity > closes:
                return f"{REDUCE_ONLY_REJECTED} (position {position}, order {command.side.value} {command.quantity})"
        if best is None and (
            command.order_type is OrderType.MARKET or command.time_in_force is TimeInForce.IOC
        ):
            why = f"{reason}, no ticker" if reason else "no market data"
            return f"nothing to take for {command.instrument} on {self.name} ({why})"
        return ""

    def _arrive(self, command: PlaceOrder, at_ns: int) -> None:
        market = self._market(command.instrument)
        reason = market.liquidity.fallback_reason()
        refusal = self._refusal(command, market, reason)
        self._seen_orders.add(command.order_id)
        if refusal:
            self._reject(command, at_ns, refusal)
            return
        self._orders += 1
        venue_order_id = f"{self.name}-o{self._orders}"
        self._emit(command, at_ns, OrderAccepted, command.order_id, venue_order_id=venue_order_id)
        order = RestingOrder(command, venue_order_id, self._orders, command.quantity)
        limit = command.limit_price if command.order_type is OrderType.LIMIT else None
        if reason:
            self.fallbacks[reason] = self.fallbacks.get(reason, 0) + 1
        for price, quantity in self._take(
            market, command.instrument, order.is_buy, limit, order.remaining, reason
        ):
            self._fill(order, command, price, quantity, Liquidity.TAKER, at_ns)
        if order.remaining == _ZERO:
            return
        if command.order_type is OrderType.MARKET or command.time_in_force is TimeInForce.IOC:
            detail = "" if limit is None else f" at {limit} or better"
            self._emit(command, at_ns, OrderCanceled, command.order_id,
                       reason=f"IOC remainder canceled: no more liquidity{detail}")  # fmt: skip
            return
        order.level_quantity = market.liquidity.quantity_at(order.is_buy, order.price, reason)
        order.queue = QueuePosition(order.level_quantity or _ZERO)
        self.resting[command.order_id] = order

    def _take(
        self, market: _Market, instrument: str, buying: bool, limit: Decimal | None, wanted: Decimal, reason: str,
    ) -> list[tuple[Decimal, Decimal]]:  # fmt: skip
        """Take up to `wanted` from the other side, best price first, up to `limit`, never what our orders
        already took: (price, quantity) per level."""
        taken: list[tuple[Decimal, Decimal]] = []
        for price, recorded in market.liquidity.levels(not buying, reason):
            if wanted == _ZERO or (limit is not None and (price > limit if buying else price < limit)):
                break
            key = (instrument, not buying, price)
            already = self._already_taken(key, recorded)
            take = min(wanted, recorded - already)
            if take > _ZERO:
                self._taken[key] = (recorded, already + take)
                wanted -= take
                taken.append((price, take))
        return taken

    def _already_taken(self, key: tuple[str, bool, Decimal], recorded: Decimal) -> Decimal:
        """What our orders took from this level and the market has not replenished: recorded growth since
        our take refills it; anything else (including a level that shrank and came back) does not."""
        found = self._taken.get(key)
        if found is None:
            return _ZERO
        then, took = found
        return min(recorded, max(_ZERO, took - max(_ZERO, recorded - then)))

    def _fill(
        self, order: RestingOrder, cause: EventBase, price: Decimal, quantity: Decimal, liquidity: Liquidity,
        at_ns: int,
    ) -> None:  # fmt: skip
        command = order.command
        spec = self.markets[command.instrument].spec
        assert spec is not None  # orders are only accepted for defined instruments
        fees = self.fees or FeeSchedule(spec.maker_fee_bps, spec.taker_fee_bps)
        bps = fees.maker_bps if liquidity is Liquidity.MAKER else fees.taker_bps
        fee = settlement_value(units(spec, quantity), price, is_inverse(spec)) * bps / BPS
        order.remaining -= quantity
        order.filled += quantity
        key = (command.account, command.instrument)
        signed = quantity if order.is_buy else -quantity
        self.positions[key] = self.positions.get(key, _ZERO) + signed
        self._trades += 1
        cls = OrderFilled if order.remaining == _ZERO else OrderPartiallyFilled
        self._emit(
            cause, at_ns, cls, command.order_id, instrument=command.instrument, side=command.side, price=price,
            quantity=quantity, fee=fee, fee_currency=spec.settlement, liquidity=liquidity,
            venue_trade_id=f"{self.name}-{self._trades}", cumulative_quantity=order.filled,
            leaves_quantity=order.remaining,
        )  # fmt: skip

    def _cancel(self, command: CancelOrder, at_ns: int) -> None:
        order = self.resting.pop(command.order_id, None)
        if order is None:
            return  # unknown or already done: a real venue answers "unknown order"; nothing changes
        self._emit(command, at_ns, OrderCanceled, command.order_id, reason=command.reason or "canceled")

    # ---- market data ----------------------------------------------------------------------------------

    def _market(self, instrument: str) -> _Market:
        market = self.markets.get(instrument)
        if market is None:
            market = self.markets[instrument] = _Market(self._liquidity(self.name, instrument))
        return market

    def _on_book(self, event: BookDelta | BookSnapshot | QuoteTick) -> bool:
        """Update what the venue knows; True if the liquidity it would match against may have changed."""
        return self._market(event.instrument).liquidity.take(event)

    def _match_resting(self, cause: EventBase, at_ns: int) -> None:
        """After a book or ticker change: queue positions follow their levels, and a resting order the
        other side now reaches fills at its own price (the book moved through it; no trade needed)."""
        instrument = cause.instrument  # type: ignore[attr-defined]
        orders = [o for o in self.resting.values() if o.command.instrument == instrument]
        if not orders:
            return
        market = self.markets[instrument]
        reason = market.liquidity.fallback_reason()
        for order in orders:
            level = market.liquidity.quantity_at(order.is_buy, order.price, reason)
            if level is None or level == order.level_quantity:
                continue
            if order.level_quantity is None:  # first sight of the level: we are behind all of it
                order.queue.front = level
            else:
                self.queue_model.depth(order.queue, order.level_quantity, level)
                order.queue.front = max(order.queue.front, _ZERO)  # cancellations never fill us
            order.level_quantity = level
        for order in _priority(orders):
            crossing = self._take(market, instrument, order.is_buy, order.price, order.remaining, reason)
            quantity = sum((q for _, q in crossing), _ZERO)
            if quantity > _ZERO:
                self._maker_fill(order, cause, quantity, at_ns)

    def _on_trade(self, trade: TradeTick) -> None:
        """A trade fills our resting orders it reaches, best price first then arrival: through an order's
        price directly, at its price once the queue ahead of it (and our earlier orders there) is used up."""
        if not self.resting or trade.size <= _ZERO:
            return
        hit_buys = trade.aggressor_side is Side.SELL
        reached = [
            o
            for o in self.resting.values()
            if o.command.instrument == trade.instrument and _reaches(o, trade, hit_buys)
        ]
        left = trade.size
        level_volume: Decimal | None = None
        ours_ahead = _ZERO
        at_ns = trade.envelope.event_time_ns
        for order in _priority(reached):
            if left <= _ZERO:
                break
            if order.price != trade.price:
                quantity = min(order.remaining, left)
            else:
                # The print's volume at the level passes the recorded queue ahead of each of our orders and
                # our earlier orders there; what is left of it fills the order.
                if level_volume is None:
                    level_volume = left
                self.queue_model.trade(order.queue, level_volume)
                quantity = min(order.remaining, left, max(_ZERO, -order.queue.front - ours_ahead))
                ours_ahead += order.remaining
                order.queue.front = max(order.queue.front, _ZERO)
            quantity = self._lots(order, quantity)
            if quantity > _ZERO:
                left -= quantity
                self._maker_fill(order, trade, quantity, at_ns)

    def _lots(self, order: RestingOrder, quantity: Decimal) -> Decimal:
        spec = self.markets[order.command.instrument].spec
        return quantity if spec is None else floor_to_lot(spec, quantity)

    def _maker_fill(self, order: RestingOrder, cause: EventBase, quantity: Decimal, at_ns: int) -> None:
        self._fill(order, cause, order.price, quantity, Liquidity.MAKER, at_ns)
        if order.remaining == _ZERO:
            del self.resting[order.command.order_id]


def _reaches(order: RestingOrder, trade: TradeTick, hit_buys: bool) -> bool:
    """A trade through the order's price reaches it whoever the aggressor; one at its price only when the
    aggressor is on the other side (a seller for a resting buy)."""
    if order.price == trade.price:
        return order.is_buy == hit_buys
    return order.price > trade.price if order.is_buy else order.price < trade.price


def _priority(orders: list[RestingOrder]) -> list[RestingOrder]:
    """Price-time priority among our orders: best price first (highest buy, lowest sell), then arrival."""
    return sorted(orders, key=lambda o: (-o.price if o.is_buy else o.price, o.arrival))


def build_simulated_venues(
    names: Iterable[str], config: SimulatedVenueConfig | None = None
) -> dict[str, SimulatedVenue]:
    """One simulated venue per name, keyed by name (what `application.engine.Kernel` takes)."""
    return {name: SimulatedVenue(name, config) for name in names}
