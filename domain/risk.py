"""Pre-trade risk for one account: every PlaceOrder of the account gets RiskCheckPassed or RiskCheckRejected.

Exposure in flight. An order counts from the moment risk passes it (in `evolve` of its PlaceOrder, so the
next order of the same cascade already sees it) until it is terminal (filled, rejected, canceled, expired).
Such a "working" order counts with its unfilled quantity. Per (venue, instrument), with P the filled
position, WB / WS the unfilled quantity of working buys / sells:
    long bound  = P + WB   (the position if every working buy fills and no sell does)
    short bound = P - WS
Groups. The legs of one spread (`legs_in_group` > 1, same `leg_group_id`) are judged together when the last
one arrives: each leg is checked with the earlier legs counted as working; if one fails, every leg of the
group is rejected (the failing one with its rule, the others with rule "spread_pair" and the failing leg's
numbers), so one leg never goes out alone. A group left incomplete (any other event arrives first) is
rejected with rule "incomplete_group".

Rules, in this fixed order; the first that fails names itself in `rule` with `limit` and `actual`
(amounts in the instrument's quote currency, positions in the order's quantity unit):

 1. "kill_switch"          the global or this account's switch is engaged (limit 0, actual 1). A leg
                           repair passes when the limits' `repairs_under_kill_switch` is on. A "leg
                           repair" here is an order marked `repair` that only takes off its leg group's
                           own imbalance: the group's filled net, less what the group's working repairs
                           already take off (anything else marked `repair` is an ordinary order).
 2. "drawdown_halt"        a latched breach with action "halt" (limit = max_drawdown_fraction, actual =
                           the drawdown at the last equity sample). Leg repairs pass: they take risk off.
    "drawdown_reduce_only" a latched breach with action "reduce_only": only an order that shrinks the
                           position passes: quantity <= reducible, where reducible = |P| less the working
                           orders already reducing it, for an order against the position, else 0
                           (limit = reducible, actual = quantity). Leg repairs pass.
 3. "reduce_only"          the order itself is reduce_only and quantity > reducible (same numbers).
 4. "invalid_order"        a limit order without a limit price (limit 0, actual 0).
    "no_reference_price"   a market order with no quote for its venue/instrument (limit 0, actual 0).
 5. "max_order_notional"   the order's notional > max_order_notional. Values by `domain.instruments.notional`
                           of the instrument's InstrumentDefined (read as it flows): quantity x price for spot
                           and linear (x contract size), the face value for inverse (10 COIN-M BTCUSD_PERP
                           contracts are 1,000 USD at any price); quantity x price while no specification has
                           been seen. A limit order: at its limit price. A market order: what it would pay
                           walking the book it is sent to (`market_notional`), level by level:
                           * the L2 book of (venue, instrument), a `SyncedBook` risk keeps itself (the one
                             implementation of the sync rules), when it is in sync, was built from a snapshot
                             and is not older than the last quote (the quote's update id <= the book's applied
                             update id; without an id, by event time);
                           * otherwise the last quote's top level (price and size), and the detail says why
                             (no L2 book, out of sync, older than the quote).
                           What the levels do not hold is valued at the collar's worst price (mid +/-
                           price_collar_bps), never better than the last level walked.
 6. "max_position"         the bound on the order's side after it (long bound + quantity for a buy, short
                           bound - quantity for a sell) ends on the order's side beyond the limit:
                           limit = max_position_per_asset_venue, actual = |bound after|. So two working buys
                           of 8 make 16 against 10, and a sell of 19 from +10 is measured as |-9|. An order
                           that leaves its bound on the other side of zero (it only reduces) passes, even
                           above the limit, so positions can always be brought back. Positions and this limit
                           are in the unit of the order's quantity: base units for spot, contracts for
                           linear and inverse instruments.
 7. "max_gross_exposure"   sum over (venue, instrument), in sorted order, of the value (as in rule 5) of
                           max(|long bound|, |short bound|) at the mark, after the order > max_gross_exposure,
                           and the order raises it. Mark = the order's price for its own key (a market
                           order's: the price it walks to), else the mid, else the last fill price.
 8. "max_open_orders"      working orders (and earlier legs of the group) + 1 > max_open_orders.
 9. "no_reference_price"   a limit order with no quote yet: the collar cannot be checked.
    "price_collar"         |limit price - mid| / mid x 10_000 > price_collar_bps (actual rounded to 0.0001).
10. "order_rate"           orders passed on the venue in the last second of event time (t > now - 1 s),
                           earlier legs of the group, plus this one, > max_orders_per_venue_per_second.

Positions come from OrderPartiallyFilled/OrderFilled of this account's orders, deduplicated by (venue,
venue_trade_id). Mids and top levels are the market view's last quote with positive prices; L2 books are the
view's (only for the instruments given as `book_instruments`, when given), out of sync after BookResyncNeeded.

Operator commands (`account` None: every account, else that account only):
  * EngageKillSwitch -> KillSwitchEngaged and one CancelOrder per working order not yet asked to cancel;
    new orders are refused from then on. There are two switches, global and this account's; an order is
    refused while either is engaged. ReleaseKillSwitch releases its own scope -> KillSwitchReleased
    (`still_engaged` when the other scope still is). A command that changes nothing emits nothing.
  * UpdateRiskLimits replaces the limits as a whole.
  * ReleaseDrawdownHalt lifts a latched breach -> DrawdownHaltReleased; the peak restarts at the last
    equity sample, so the drawdown is measured from the release.

Drawdown. On EquitySampled for the account: peak = max(previous peak, equity); drawdown = (peak - equity)
/ peak. When drawdown >= max_drawdown_fraction and no breach is latched, DrawdownBreached is emitted once
with the limits' drawdown_action, and the breach stays latched, whatever later samples show, until an
operator releases it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from domain.book import SyncedBook
from domain.events import (
    BookDelta,
    BookResyncNeeded,
    BookSnapshot,
    CancelOrder,
    DrawdownBreached,
    DrawdownHaltReleased,
    EngageKillSwitch,
    EquitySampled,
    EventBase,
    InstrumentDefined,
    KillSwitchEngaged,
    KillSwitchReleased,
    Level,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderPartiallyFilled,
    OrderRejected,
    PlaceOrder,
    QuoteTick,
    ReleaseDrawdownHalt,
    ReleaseKillSwitch,
    RiskCheckPassed,
    RiskCheckRejected,
    UpdateRiskLimits,
    applies_to,
)
from domain.events import (
    derive_envelope as _derive,
)
from domain.instruments import notional as instrument_notional
from domain.market_view import MarketView
from domain.values import BPS, ZERO, DrawdownAction, OrderType, RiskLimits, Side, in_decimal_context
from domain.wake import NEVER, Always, RowKind, WakeSpec

_BPS_QUANTUM = Decimal("0.0001")
_FRACTION_QUANTUM = Decimal("0.0000000001")
_TWO = Decimal(2)
RATE_WINDOW_NS = 1_000_000_000
_HELD_WAKE = WakeSpec((Always(frozenset({RowKind.QUOTE, RowKind.DELTA, RowKind.SNAPSHOT})),))
"""The market rows risk consumes: while a group is held, any of them rejects it."""

Key = tuple[str, str]
"""(venue, instrument)."""


@dataclass
class Working:
    """An order that passed risk and is not terminal yet."""

    order: PlaceOrder
    filled: Decimal = ZERO
    cancel_sent: bool = False

    @property
    def leaves(self) -> Decimal:
        return self.order.quantity - self.filled


@dataclass
class RiskState:
    limits: RiskLimits
    global_kill: bool = False
    account_kill: bool = False
    positions: dict[Key, Decimal] = field(default_factory=dict)
    last_fill_price: dict[Key, Decimal] = field(default_factory=dict)
    specs: dict[Key, InstrumentDefined] = field(default_factory=dict)
    """Instrument specifications as they flowed (first record of each market-data stream)."""
    orders: dict[uuid.UUID, PlaceOrder] = field(default_factory=dict)
    """This account's orders, by id (to attribute fills)."""
    working: dict[uuid.UUID, Working] = field(default_factory=dict)
    """Passed and not terminal, in the order they passed."""
    held: list[PlaceOrder] = field(default_factory=list)
    """Earlier legs of a group waiting for its last leg."""
    group_net: dict[uuid.UUID, Decimal] = field(default_factory=dict)
    """Leg group -> filled buys minus sells of its orders, while not zero: what a repair may take off."""
    seen_trades: set[tuple[str, str]] = field(default_factory=set)
    """(venue, venue_trade_id) of applied fills; membership tests only, never iterated."""
    passed_times: dict[str, list[int]] = field(default_factory=dict)
    """Venue -> event times of orders passed within the rate window."""
    peak_equity: Decimal | None = None
    last_equity: Decimal | None = None
    drawdown: Decimal = ZERO
    breach_action: DrawdownAction | None = None
    """Latched until an operator releases it."""

    @property
    def kill_switch(self) -> bool:
        return self.global_kill or self.account_kill


@dataclass(frozen=True, slots=True)
class _Market:
    """What risk reads of the market view: the last quote with positive prices per key (the mid, and the top
    level a market order walks when the L2 book cannot be used), and the L2 books of the instruments risk
    walks books for."""

    view: MarketView
    book_instruments: frozenset[str] | None

    def quote(self, key: Key) -> QuoteTick | None:
        return self.view.priced_quote(*key)

    def book(self, key: Key) -> SyncedBook | None:
        if self.book_instruments is not None and key[1] not in self.book_instruments:
            return None
        return self.view.book(*key)


@dataclass(frozen=True)
class _Rejection:
    rule: str
    limit: Decimal
    actual: Decimal
    detail: str


@dataclass(frozen=True)
class _Exposure:
    """One (venue, instrument): filled position and unfilled working quantity per side."""

    position: Decimal
    working_buy: Decimal
    working_sell: Decimal

    def bound(self, side: Side) -> Decimal:
        return self.position + self.working_buy if side is Side.BUY else self.position - self.working_sell

    def worst(self) -> Decimal:
        return max(abs(self.bound(Side.BUY)), abs(self.bound(Side.SELL)))

    def reducible(self, side: Side) -> Decimal:
        """How much an order on `side` can still shrink the position, net of working orders doing so."""
        if self.position * side.sign >= 0:
            return ZERO
        already = self.working_buy if side is Side.BUY else self.working_sell
        return max(abs(self.position) - already, ZERO)

    def with_order(self, side: Side, quantity: Decimal) -> _Exposure:
        if side is Side.BUY:
            return _Exposure(self.position, self.working_buy + quantity, self.working_sell)
        return _Exposure(self.position, self.working_buy, self.working_sell + quantity)


class RiskDecider:
    """Decider for one account; `name` defaults to f"risk.{account}"."""

    consumes = (
        InstrumentDefined, BookSnapshot, BookDelta, BookResyncNeeded, QuoteTick, PlaceOrder, OrderPartiallyFilled, OrderFilled, OrderRejected, OrderCanceled, OrderExpired,
        EngageKillSwitch, ReleaseKillSwitch, UpdateRiskLimits, ReleaseDrawdownHalt, EquitySampled,
    )  # fmt: skip

    def __init__(
        self,
        account: str,
        limits: RiskLimits | None = None,
        name: str | None = None,
        book_instruments: Collection[str] | None = None,
    ) -> None:
        self.account = account
        self.limits = limits or RiskLimits()
        self.name = name or f"risk.{account}"
        self.book_instruments = None if book_instruments is None else frozenset(book_instruments)
        """Instruments whose L2 books risk walks to value market orders (None: every instrument); a market
        order on another instrument is valued at its quote's top level."""

    def initial_state(self) -> RiskState:
        return RiskState(limits=self.limits)

    # ------------------------------------------------------------------ decide

    def wake(self, state: RiskState) -> WakeSpec:
        """A market row only matters while a leg group waits for its last leg (any event then rejects it):
        quotes and books are read from the view."""
        return _HELD_WAKE if state.held else NEVER

    @in_decimal_context  # the caller's decimal context never changes a result
    def decide(self, state: RiskState, event: EventBase, view: MarketView) -> list[EventBase]:
        return self._incomplete_group(state, event) + self._decide(state, event, view)

    def _incomplete_group(self, state: RiskState, event: EventBase) -> list[EventBase]:
        if not self._breaks_group(state, event):
            return []
        rejection = _Rejection(
            "incomplete_group", Decimal(state.held[0].legs_in_group), Decimal(len(state.held)),
            "the other legs of the group never arrived",
        )  # fmt: skip
        return [self._verdict(order, rejection) for order in state.held]

    def _breaks_group(self, state: RiskState, event: EventBase) -> bool:
        if not state.held:
            return False
        if isinstance(event, PlaceOrder):
            return event.account == self.account and event.leg_group_id != state.held[0].leg_group_id
        return True

    def _decide(self, state: RiskState, event: EventBase, view: MarketView) -> list[EventBase]:
        if isinstance(event, PlaceOrder):
            if event.account != self.account:
                return []
            held = [] if self._breaks_group(state, event) else state.held
            verdicts = self._judge(state, _Market(view, self.book_instruments), held, event)
            return [self._verdict(order, rejection) for order, rejection in verdicts]
        if isinstance(event, EngageKillSwitch | ReleaseKillSwitch) and applies_to(
            event.account, self.account
        ):
            return self._on_kill_switch(state, event)
        if isinstance(event, ReleaseDrawdownHalt) and applies_to(event.account, self.account):
            if state.breach_action is None:
                return []
            return [
                DrawdownHaltReleased(
                    envelope=_derive(event.envelope, self.name, 0),
                    account=self.account,
                    reason=event.reason,
                    operator=event.operator,
                    peak_equity=state.last_equity,
                )
            ]
        if isinstance(event, EquitySampled) and event.account == self.account:
            return self._on_equity(state, event)
        return []

    def _verdict(self, order: PlaceOrder, rejection: _Rejection | None) -> EventBase:
        envelope = _derive(order.envelope, self.name, 0)
        if rejection is None:
            return RiskCheckPassed(envelope=envelope, order_id=order.order_id)
        return RiskCheckRejected(
            envelope=envelope,
            order_id=order.order_id,
            rule=rejection.rule,
            limit=rejection.limit,
            actual=rejection.actual,
            detail=rejection.detail,
        )

    def _judge(
        self, state: RiskState, market: _Market, held: list[PlaceOrder], order: PlaceOrder
    ) -> list[tuple[PlaceOrder, _Rejection | None]]:
        """Verdicts due on `order`: none while its group waits for more legs, else one per leg (all or none)."""
        grouped = order.leg_group_id is not None and order.legs_in_group > 1
        legs = [*held, order] if grouped else [order]
        if grouped and len(legs) < order.legs_in_group:
            return []
        accepted: list[PlaceOrder] = []
        for leg in legs:
            rejection = _check(state, market, leg, accepted)
            if rejection is not None:
                return [(other, rejection if other is leg else _partner(leg, rejection)) for other in legs]
            accepted.append(leg)
        return [(leg, None) for leg in legs]

    def _on_kill_switch(
        self, state: RiskState, event: EngageKillSwitch | ReleaseKillSwitch
    ) -> list[EventBase]:
        scope: Literal["global", "account"] = "global" if event.account is None else "account"
        engaged = state.global_kill if scope == "global" else state.account_kill
        other = state.account_kill if scope == "global" else state.global_kill
        envelope = _derive(event.envelope, self.name, 0)
        if isinstance(event, ReleaseKillSwitch):
            if not engaged:
                return []
            return [KillSwitchReleased(envelope=envelope, reason=event.reason, account=self.account, scope=scope,
                                       still_engaged=other)]  # fmt: skip
        if engaged:
            return []
        out: list[EventBase] = [
            KillSwitchEngaged(envelope=envelope, reason=event.reason, account=self.account, scope=scope)
        ]
        for working in state.working.values():
            if not working.cancel_sent:
                out.append(
                    CancelOrder(
                        envelope=_derive(event.envelope, self.name, len(out)),
                        order_id=working.order.order_id,
                        venue=working.order.venue,
                        reason=f"kill switch: {event.reason}",
                    )
                )
        return out

    def _on_equity(self, state: RiskState, event: EquitySampled) -> list[EventBase]:
        if state.breach_action is not None:
            return []
        limits = state.limits
        peak, drawdown = _drawdown(state.peak_equity, event.equity)
        if not _breached(peak, event.equity, limits.max_drawdown_fraction):
            return []
        return [
            DrawdownBreached(
                envelope=_derive(event.envelope, self.name, 0),
                peak_equity=peak,
                equity=event.equity,
                drawdown_fraction=drawdown,
                limit_fraction=limits.max_drawdown_fraction,
                action="halt" if limits.drawdown_action is DrawdownAction.HALT else "reduce_only",
                account=self.account,
            )
        ]

    # ------------------------------------------------------------------ evolve

    @in_decimal_context
    def evolve(self, state: RiskState, event: EventBase, view: MarketView) -> RiskState:
        if self._breaks_group(state, event):
            state.held = []
        return self._evolve(state, event, view)

    def _evolve(self, state: RiskState, event: EventBase, view: MarketView) -> RiskState:
        if isinstance(event, InstrumentDefined):
            state.specs[(event.venue, event.instrument)] = event
        elif isinstance(event, PlaceOrder):
            if event.account == self.account:
                self._apply_order(state, _Market(view, self.book_instruments), event)
        elif isinstance(event, OrderPartiallyFilled | OrderFilled):
            self._apply_fill(state, event)
        elif isinstance(event, OrderRejected | OrderCanceled | OrderExpired):
            state.working.pop(event.order_id, None)
        elif isinstance(event, EngageKillSwitch | ReleaseKillSwitch):
            if applies_to(event.account, self.account):
                engaged = isinstance(event, EngageKillSwitch)
                if event.account is None:
                    state.global_kill = engaged
                else:
                    state.account_kill = engaged
                if engaged:  # decide asked the venues to cancel every working order
                    for working in state.working.values():
                        working.cancel_sent = True
        elif isinstance(event, UpdateRiskLimits):
            if applies_to(event.account, self.account):
                state.limits = event.limits
        elif isinstance(event, ReleaseDrawdownHalt):
            if applies_to(event.account, self.account) and state.breach_action is not None:
                state.breach_action = None
                state.peak_equity = state.last_equity
                state.drawdown = ZERO
        elif isinstance(event, EquitySampled):
            if event.account == self.account:
                self._apply_equity(state, event)
        return state

    def _apply_order(self, state: RiskState, market: _Market, order: PlaceOrder) -> None:
        state.orders.setdefault(order.order_id, order)
        verdicts = self._judge(state, market, state.held, order)
        if not verdicts:
            state.held.append(order)
            return
        state.held = []
        now = order.envelope.event_time_ns
        for leg, rejection in verdicts:
            if rejection is None:
                state.working[leg.order_id] = Working(leg)
                times = [t for t in state.passed_times.get(leg.venue, []) if t > now - RATE_WINDOW_NS]
                times.append(now)
                state.passed_times[leg.venue] = times

    def _apply_fill(self, state: RiskState, event: OrderPartiallyFilled | OrderFilled) -> None:
        if event.order_id not in state.orders:
            return
        trade = (event.venue, event.venue_trade_id)
        if trade not in state.seen_trades:
            state.seen_trades.add(trade)
            key = (event.venue, event.instrument)
            state.positions[key] = state.positions.get(key, ZERO) + event.quantity * event.side.sign
            state.last_fill_price[key] = event.price
            group = state.orders[event.order_id].leg_group_id
            if group is not None:
                net = state.group_net.get(group, ZERO) + event.quantity * event.side.sign
                if net == 0:  # balanced again: nothing to remember
                    state.group_net.pop(group, None)
                else:
                    state.group_net[group] = net
            working = state.working.get(event.order_id)
            if working is not None:
                working.filled += event.quantity
        if isinstance(event, OrderFilled):
            state.working.pop(event.order_id, None)

    def _apply_equity(self, state: RiskState, event: EquitySampled) -> None:
        state.peak_equity, state.drawdown = _drawdown(state.peak_equity, event.equity)
        state.last_equity = event.equity
        if state.breach_action is None and _breached(
            state.peak_equity, event.equity, state.limits.max_drawdown_fraction
        ):
            state.breach_action = state.limits.drawdown_action


def _drawdown(peak: Decimal | None, equity: Decimal) -> tuple[Decimal, Decimal]:
    """(new peak, drawdown fraction from it) after an equity sample; 0 while the peak is not positive."""
    new_peak = equity if peak is None else max(peak, equity)
    if new_peak <= 0:
        return new_peak, ZERO
    return new_peak, ((new_peak - equity) / new_peak).quantize(_FRACTION_QUANTUM)


def _repairs_its_group(state: RiskState, order: PlaceOrder) -> bool:
    """Whether a repair order only takes off its leg group's own imbalance (filled net of the group, less
    what working repairs of the group already take off); only then does it get a repair's passes."""
    if order.leg_group_id is None:
        return False
    net = state.group_net.get(order.leg_group_id, ZERO)
    for working in state.working.values():
        other = working.order
        if other.leg_group_id == order.leg_group_id and other.repair:
            net += working.leaves * other.side.sign
    return net * order.side.sign < 0 and order.quantity <= abs(net)


def _breached(peak: Decimal, equity: Decimal, limit: Decimal) -> bool:
    """Drawdown >= limit, tested exactly (no division, no rounding)."""
    return peak > 0 and peak - equity >= limit * peak


def _partner(failed: PlaceOrder, rejection: _Rejection) -> _Rejection:
    return _Rejection(
        "spread_pair", rejection.limit, rejection.actual,
        f"leg {failed.side} {failed.quantity} on {failed.venue} refused by {rejection.rule}"
        + (f" ({rejection.detail})" if rejection.detail else ""),
    )  # fmt: skip


def _exposure(state: RiskState, key: Key, extra: Sequence[PlaceOrder]) -> _Exposure:
    buy = sell = ZERO
    for working in state.working.values():
        order = working.order
        if (order.venue, order.instrument) == key:
            if order.side is Side.BUY:
                buy += working.leaves
            else:
                sell += working.leaves
    for order in extra:
        if (order.venue, order.instrument) == key:
            if order.side is Side.BUY:
                buy += order.quantity
            else:
                sell += order.quantity
    return _Exposure(state.positions.get(key, ZERO), buy, sell)


def _check(
    state: RiskState, market: _Market, order: PlaceOrder, extra: Sequence[PlaceOrder]
) -> _Rejection | None:
    """The first rule `order` breaks, with `extra` (earlier legs of its group) counted as working."""
    limits = state.limits
    key = (order.venue, order.instrument)
    exposure = _exposure(state, key, extra)
    reducible = exposure.reducible(order.side)
    where = f"{order.venue} {order.instrument}"

    repair = order.repair and _repairs_its_group(state, order)
    if state.kill_switch and not (repair and limits.repairs_under_kill_switch):
        scope = "global" if state.global_kill else "account"
        return _Rejection("kill_switch", ZERO, Decimal(1), f"kill switch engaged ({scope})")
    if state.breach_action is DrawdownAction.HALT and not repair:
        return _Rejection("drawdown_halt", limits.max_drawdown_fraction, state.drawdown,
                          "drawdown breach: trading halted until an operator releases it")  # fmt: skip
    if state.breach_action is DrawdownAction.REDUCE_ONLY and not repair and order.quantity > reducible:
        return _Rejection("drawdown_reduce_only", reducible, order.quantity,
                          f"drawdown breach: only reducing orders; position {exposure.position} on {where}")  # fmt: skip
    if order.reduce_only and order.quantity > reducible:
        return _Rejection("reduce_only", reducible, order.quantity,
                          f"would not reduce position {exposure.position} on {where} "
                          f"(working buys {exposure.working_buy}, sells {exposure.working_sell})")  # fmt: skip
    quote = market.quote(key)
    value = _valuer(state.specs.get(key))
    if order.order_type is OrderType.LIMIT:
        if order.limit_price is None:
            return _Rejection("invalid_order", ZERO, ZERO, "limit order without limit_price")
        price: Decimal = order.limit_price
        notional = value(order.quantity, price)
        how = f"{order.quantity} x {price}"
    else:
        book, unusable = _walkable_book(market, key)
        walked = market_notional(book, quote, order.side, order.quantity, limits.price_collar_bps, value)
        if walked is None:
            return _Rejection("no_reference_price", ZERO, ZERO, f"no quote or L2 book for {where}")
        notional, price, path = walked
        if book is not None:
            how = f"walked the synced L2 book at update {book.applied_update_id}: {path}"
        else:
            how = f"walked the top-of-book quote ({unusable}), collar beyond: {path}"
    if notional > limits.max_order_notional:
        return _Rejection("max_order_notional", limits.max_order_notional, notional, how)

    after = exposure.with_order(order.side, order.quantity)
    bound = after.bound(order.side)
    if bound * order.side.sign > 0 and abs(bound) > limits.max_position_per_asset_venue:
        return _Rejection(
            "max_position", limits.max_position_per_asset_venue, abs(bound),
            f"position {exposure.position}, working buys {exposure.working_buy} / sells "
            f"{exposure.working_sell}, then {order.side} {order.quantity} -> {bound} on {where}",
        )  # fmt: skip
    before_gross, after_gross = _gross_exposure(state, market, key, exposure, after, price, extra)
    if after_gross > limits.max_gross_exposure and after_gross > before_gross:
        return _Rejection("max_gross_exposure", limits.max_gross_exposure, after_gross,
                          f"gross exposure {before_gross} -> {after_gross}, working orders included")  # fmt: skip

    open_after = len(state.working) + len(extra) + 1
    if open_after > limits.max_open_orders:
        return _Rejection("max_open_orders", Decimal(limits.max_open_orders), Decimal(open_after),
                          "working orders, this one included")  # fmt: skip
    if order.order_type is OrderType.LIMIT:
        if quote is None:
            return _Rejection("no_reference_price", ZERO, ZERO, f"no quote for {where}")
        mid = _mid(quote)
        deviation = abs(price - mid) * BPS / mid
        if deviation > limits.price_collar_bps:
            return _Rejection("price_collar", limits.price_collar_bps, deviation.quantize(_BPS_QUANTUM),
                              f"limit {price} vs mid {mid}")  # fmt: skip
    now = order.envelope.event_time_ns
    recent = sum(1 for t in state.passed_times.get(order.venue, ()) if t > now - RATE_WINDOW_NS)
    recent += sum(1 for leg in extra if leg.venue == order.venue)
    if recent + 1 > limits.max_orders_per_venue_per_second:
        return _Rejection("order_rate", Decimal(limits.max_orders_per_venue_per_second), Decimal(recent + 1),
                          f"orders on {order.venue} in the last second")  # fmt: skip
    return None


Valuer = Callable[[Decimal, Decimal], Decimal]
"""(quantity, price) -> value in the quote currency, as the instrument's specification says."""


def _valuer(spec: InstrumentDefined | None) -> Valuer:
    """How much `quantity` at `price` is worth: `domain.instruments.notional` of the instrument's
    specification (an inverse contract is its face value at any price); quantity x price while no
    InstrumentDefined has been seen for it (one unit of a spot instrument)."""
    if spec is None:
        return _spot_value
    return lambda quantity, price: instrument_notional(spec, quantity, price)


def _spot_value(quantity: Decimal, price: Decimal) -> Decimal:
    return quantity * price


def _walkable_book(market: _Market, key: Key) -> tuple[SyncedBook | None, str]:
    """The L2 book of `key` when a market order may be walked on it: in sync, built from a snapshot, and not
    older than the last quote (by the quote's update id, else by event time). Else None and why not."""
    book = market.book(key)
    if book is None:
        return None, "no L2 book"
    if not book.in_sync or not book.has_snapshot:
        return None, "L2 book out of sync"
    quote = market.quote(key)
    if quote is None:
        return book, ""
    if book.behind(quote):
        return None, f"L2 book at update {book.applied_update_id} older than the quote"
    return book, ""


def market_notional(
    book: SyncedBook | None,
    quote: QuoteTick | None,
    side: Side,
    quantity: Decimal,
    collar_bps: Decimal,
    value: Valuer = _spot_value,
) -> tuple[Decimal, Decimal, str] | None:
    """What a market order pays walking the book it is sent to: (notional, the price it walks to, how it was
    walked), None when nothing prices it. `book` (usable, see `_walkable_book`): its levels best first;
    otherwise the quote's top level. What the levels do not hold is valued at the collar's worst price (mid
    -/+ collar; the mid of the book walked, else of the quote), never better than the last level, since a
    thinner book could only be worse."""
    levels: Iterable[Level]
    mid: Decimal | None = None
    if book is not None:
        levels = book.side(side is Side.SELL).walk()
        bid, ask = book.best_bid(), book.best_ask()
        if bid is not None and ask is not None:
            mid = (bid[0] + ask[0]) / _TWO
    else:
        if quote is None:
            return None
        levels = [
            (quote.ask_price, quote.ask_size) if side is Side.BUY else (quote.bid_price, quote.bid_size)
        ]
    if mid is None and quote is not None:
        mid = _mid(quote)
    collar = None if mid is None else mid * (BPS + collar_bps * side.sign) / BPS
    return walk(levels, quantity, collar, side, value)


def walk(
    levels: Iterable[Level],
    quantity: Decimal,
    collar: Decimal | None,
    side: Side,
    value: Valuer = _spot_value,
) -> tuple[Decimal, Decimal, str] | None:
    """(notional, the worst price reached, how) of taking `quantity` from `levels` (price, size), best first;
    what the levels do not hold is valued at the collar's price, or at the last level's if that is worse.
    None when levels run out with neither."""
    notional, left, parts = ZERO, quantity, []
    last: Decimal | None = None
    for price, size in levels:
        if left <= 0:
            break
        taken = min(left, size)
        notional += value(taken, price)
        left -= taken
        last = price
        parts.append(f"{taken} x {price}")
    if left > 0:
        known = [p for p in (collar, last) if p is not None]
        if not known:
            return None
        last = max(known) if side is Side.BUY else min(known)
        notional += value(left, last)
        parts.append(f"{left} beyond the known depth x {last}")
    if last is None:
        return None
    return notional, last, " + ".join(parts)


def _mid(quote: QuoteTick) -> Decimal:
    return (quote.bid_price + quote.ask_price) / _TWO


def _gross_exposure(
    state: RiskState,
    market: _Market,
    key: Key,
    before: _Exposure,
    after: _Exposure,
    price: Decimal,
    extra: Sequence[PlaceOrder],
) -> tuple[Decimal, Decimal]:
    """Gross exposure (sum of the value of worst |bound| at the mark, `domain.instruments.notional`) before
    and after the order, over keys in sorted order."""
    keys = {k for k in state.positions} | {
        (w.order.venue, w.order.instrument) for w in state.working.values()
    }
    keys |= {(leg.venue, leg.instrument) for leg in extra}
    keys.discard(key)
    value = _valuer(state.specs.get(key))
    total_before = value(before.worst(), price)
    total_after = value(after.worst(), price)
    for k in sorted(keys):
        exposure = _valuer(state.specs.get(k))(
            _exposure(state, k, extra).worst(), _mark(state, market, k, price)
        )
        total_before += exposure
        total_after += exposure
    return total_before, total_after


def _mark(state: RiskState, market: _Market, key: Key, order_price: Decimal) -> Decimal:
    quote = market.quote(key)
    if quote is not None:
        return _mid(quote)
    return state.last_fill_price.get(key, order_price)
