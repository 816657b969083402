"""Pre-trade risk for one account: every PlaceOrder of the account gets RiskCheckPassed or RiskCheckRejected.

Rules, checked in this fixed order; the first that fails names itself in `rule` with its `limit` and
`actual` numbers (all amounts in the instrument's quote currency, positions in base units):

 1. "kill_switch"          kill switch engaged (limit 0, actual 1).
 2. "drawdown_halt"        a drawdown breach with action "halt" is active: every new order is refused
                           (limit = max_drawdown_fraction, actual = drawdown at the last equity sample).
    "drawdown_reduce_only" a breach with action "reduce_only" is active: only an order that shrinks the
                           existing position on its venue/instrument passes, i.e. opposite side and quantity
                           <= |position| (limit = |position| if the side reduces else 0, actual = quantity).
 3. "reduce_only"          the order itself is reduce_only but would not shrink the position (same numbers).
 4. "invalid_order"        a limit order without a limit price (limit 0, actual 0).
    "no_reference_price"   a market order with no mid yet for its venue/instrument (limit 0, actual 0).
 5. "max_order_notional"   quantity * price > max_order_notional; price = limit price, or the last mid
                           of the venue/instrument for a market order.
 6. "max_position"         |position after the order| > max_position_per_asset_venue, assuming the order
                           fills; positions are per (venue, instrument). An order that shrinks |position|
                           passes even above the limit (so hedge/unwind legs can always get out).
 7. "max_gross_exposure"   sum over (venue, instrument) of |position| * mark after the order >
                           max_gross_exposure, and the order raises it (one that lowers it passes). Mark =
                           the order's price for its own key (before and after), else the last mid, else
                           the last fill price.
 8. "max_open_orders"      open orders + 1 > max_open_orders (open = passed and not yet terminal).
 9. "no_reference_price"   a limit order with no mid yet: the collar cannot be checked.
    "price_collar"         |limit price - mid| / mid * 10_000 > price_collar_bps (actual rounded to 0.0001).
10. "order_rate"           orders passed on the venue in the last second of event time (t > now - 1 s),
                           plus this one, > max_orders_per_venue_per_second.

State. Positions come from OrderPartiallyFilled/OrderFilled of this account's orders (orders known from
its PlaceOrder), deduplicated by (venue, venue_trade_id). Open orders: added on RiskCheckPassed, removed
on OrderFilled/OrderRejected/OrderCanceled/OrderExpired. Mids from QuoteTick ((bid + ask) / 2).

Kill switch. EngageKillSwitch -> KillSwitchEngaged, ReleaseKillSwitch -> KillSwitchReleased, only when the
state changes (a repeated command is a no-op). UpdateRiskLimits replaces the limits as a whole.

Drawdown. On EquitySampled for the account: peak = max(previous peak, equity); drawdown = (peak - equity)
/ peak. When drawdown >= max_drawdown_fraction and no breach is active, DrawdownBreached is emitted once,
with the limits' drawdown_action ("halt" or "reduce_only"; anything else is treated as "halt", the safe
side). The breach, and its restriction, lasts until a later sample's drawdown is below the limit again;
a new breach after that is reported again.
  * halt: every new order is rejected (rule "drawdown_halt"), including reducing ones; operators flatten
    by hand or lift the halt with UpdateRiskLimits (a larger max_drawdown_fraction) and a new sample.
  * reduce_only: only orders that shrink an existing position on their venue/instrument pass (rule
    "drawdown_reduce_only"); they then go through every other rule as usual.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext
from typing import Literal

from domain.events import (
    DrawdownBreached,
    EngageKillSwitch,
    EquitySampled,
    EventBase,
    KillSwitchEngaged,
    KillSwitchReleased,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderPartiallyFilled,
    OrderRejected,
    PlaceOrder,
    QuoteTick,
    ReleaseKillSwitch,
    RiskCheckPassed,
    RiskCheckRejected,
    UpdateRiskLimits,
)
from domain.events import (
    derive_envelope as _derive,
)
from domain.values import BPS, ZERO, OrderType, RiskLimits

_CTX = Context(prec=34, rounding=ROUND_HALF_EVEN)
_BPS_QUANTUM = Decimal("0.0001")
_FRACTION_QUANTUM = Decimal("0.0000000001")
RATE_WINDOW_NS = 1_000_000_000

Key = tuple[str, str]
"""(venue, instrument)."""


@dataclass
class RiskState:
    limits: RiskLimits
    kill_switch: bool = False
    positions: dict[Key, Decimal] = field(default_factory=dict)
    last_fill_price: dict[Key, Decimal] = field(default_factory=dict)
    mids: dict[Key, Decimal] = field(default_factory=dict)
    orders: dict[uuid.UUID, PlaceOrder] = field(default_factory=dict)
    """This account's orders, by id (to attribute fills and checks)."""
    open_orders: dict[uuid.UUID, None] = field(default_factory=dict)
    """Ordered set of open order ids."""
    seen_trades: set[tuple[str, str]] = field(default_factory=set)
    """(venue, venue_trade_id) of applied fills; membership tests only, never iterated."""
    passed_times: dict[str, list[int]] = field(default_factory=dict)
    """Venue -> event times of orders passed within the rate window."""
    peak_equity: Decimal | None = None
    drawdown: Decimal = ZERO
    breach_action: Literal["halt", "reduce_only"] | None = None


@dataclass(frozen=True)
class _Rejection:
    rule: str
    limit: Decimal
    actual: Decimal
    detail: str


class RiskDecider:
    """Decider for one account; `name` defaults to f"risk.{account}"."""

    consumes = (
        QuoteTick, PlaceOrder, RiskCheckPassed, OrderPartiallyFilled, OrderFilled, OrderRejected, OrderCanceled,
        OrderExpired, EngageKillSwitch, ReleaseKillSwitch, KillSwitchEngaged, KillSwitchReleased,
        UpdateRiskLimits, EquitySampled, DrawdownBreached,
    )  # fmt: skip

    def __init__(self, account: str, limits: RiskLimits | None = None, name: str | None = None) -> None:
        self.account = account
        self.limits = limits or RiskLimits()
        self.name = name or f"risk.{account}"

    def initial_state(self) -> RiskState:
        return RiskState(limits=self.limits)

    # ------------------------------------------------------------------ decide

    def decide(self, state: RiskState, event: EventBase) -> list[EventBase]:
        with localcontext(_CTX):  # the caller's decimal context never changes a result
            return self._decide(state, event)

    def _decide(self, state: RiskState, event: EventBase) -> list[EventBase]:
        if isinstance(event, PlaceOrder):
            if event.account != self.account:
                return []
            rejection = self._check(state, event)
            envelope = _derive(event.envelope, self.name, 0)
            if rejection is None:
                return [RiskCheckPassed(envelope=envelope, order_id=event.order_id)]
            return [
                RiskCheckRejected(
                    envelope=envelope,
                    order_id=event.order_id,
                    rule=rejection.rule,
                    limit=rejection.limit,
                    actual=rejection.actual,
                    detail=rejection.detail,
                )
            ]
        if isinstance(event, EngageKillSwitch) and not state.kill_switch:
            return [KillSwitchEngaged(envelope=_derive(event.envelope, self.name, 0), reason=event.reason)]
        if isinstance(event, ReleaseKillSwitch) and state.kill_switch:
            return [KillSwitchReleased(envelope=_derive(event.envelope, self.name, 0), reason=event.reason)]
        if isinstance(event, EquitySampled) and event.account == self.account:
            return self._on_equity(state, event)
        return []

    def _on_equity(self, state: RiskState, event: EquitySampled) -> list[EventBase]:
        limits = state.limits
        peak = event.equity if state.peak_equity is None else max(state.peak_equity, event.equity)
        if state.breach_action is not None or peak <= 0:
            return []
        with localcontext(_CTX):
            if peak - event.equity < limits.max_drawdown_fraction * peak:
                return []
            fraction = ((peak - event.equity) / peak).quantize(_FRACTION_QUANTUM)
        return [
            DrawdownBreached(
                envelope=_derive(event.envelope, self.name, 0),
                peak_equity=peak,
                equity=event.equity,
                drawdown_fraction=fraction,
                limit_fraction=limits.max_drawdown_fraction,
                action=_action(limits.drawdown_action),
            )
        ]

    def _check(self, state: RiskState, order: PlaceOrder) -> _Rejection | None:
        limits = state.limits
        key = (order.venue, order.instrument)
        position = state.positions.get(key, ZERO)
        signed = order.quantity * order.side.sign
        reducible = abs(position) if position * order.side.sign < 0 else ZERO
        now = order.envelope.event_time_ns

        if state.kill_switch:
            return _Rejection("kill_switch", ZERO, Decimal(1), "kill switch engaged")
        if state.breach_action == "halt":
            return _Rejection(
                "drawdown_halt",
                limits.max_drawdown_fraction,
                state.drawdown,
                "drawdown breach: trading halted",
            )
        if state.breach_action == "reduce_only" and order.quantity > reducible:
            return _Rejection(
                "drawdown_reduce_only",
                reducible,
                order.quantity,
                f"drawdown breach: only reducing orders; position {position} on {order.venue}",
            )
        if order.reduce_only and order.quantity > reducible:
            return _Rejection(
                "reduce_only",
                reducible,
                order.quantity,
                f"would not reduce position {position} on {order.venue}",
            )
        mid = state.mids.get(key)
        if order.order_type is OrderType.LIMIT:
            if order.limit_price is None:
                return _Rejection("invalid_order", ZERO, ZERO, "limit order without limit_price")
            price: Decimal = order.limit_price
        else:
            if mid is None:
                return _Rejection(
                    "no_reference_price", ZERO, ZERO, f"no mid for {order.instrument} on {order.venue}"
                )
            price = mid
        with localcontext(_CTX):
            notional = order.quantity * price
            if notional > limits.max_order_notional:
                return _Rejection(
                    "max_order_notional", limits.max_order_notional, notional, f"{order.quantity} x {price}"
                )
            after = position + signed
            if abs(after) > limits.max_position_per_asset_venue and abs(after) >= abs(position):
                return _Rejection(
                    "max_position",
                    limits.max_position_per_asset_venue,
                    abs(after),
                    f"position {position} -> {after} on {order.venue} {order.instrument}",
                )
            before_exposure, after_exposure = _gross_exposure(state, key, after, price)
            if after_exposure > limits.max_gross_exposure and after_exposure > before_exposure:
                return _Rejection(
                    "max_gross_exposure",
                    limits.max_gross_exposure,
                    after_exposure,
                    f"gross exposure {before_exposure} -> {after_exposure}",
                )
            open_after = len(state.open_orders) + 1
            if open_after > limits.max_open_orders:
                return _Rejection("max_open_orders", Decimal(limits.max_open_orders), Decimal(open_after), "")
            if order.order_type is OrderType.LIMIT:
                if mid is None or mid <= 0:
                    return _Rejection(
                        "no_reference_price", ZERO, ZERO, f"no mid for {order.instrument} on {order.venue}"
                    )
                deviation = abs(price - mid) * BPS / mid
                if deviation > limits.price_collar_bps:
                    return _Rejection(
                        "price_collar",
                        limits.price_collar_bps,
                        deviation.quantize(_BPS_QUANTUM),
                        f"limit {price} vs mid {mid}",
                    )
        recent = sum(1 for t in state.passed_times.get(order.venue, ()) if t > now - RATE_WINDOW_NS)
        if recent + 1 > limits.max_orders_per_venue_per_second:
            return _Rejection(
                "order_rate",
                Decimal(limits.max_orders_per_venue_per_second),
                Decimal(recent + 1),
                f"orders on {order.venue} in the last second",
            )
        return None

    # ------------------------------------------------------------------ evolve

    def evolve(self, state: RiskState, event: EventBase) -> RiskState:
        with localcontext(_CTX):
            return self._evolve(state, event)

    def _evolve(self, state: RiskState, event: EventBase) -> RiskState:
        if isinstance(event, QuoteTick):
            if event.bid_price > 0 and event.ask_price > 0:
                with localcontext(_CTX):
                    state.mids[(event.venue, event.instrument)] = (event.bid_price + event.ask_price) / 2
        elif isinstance(event, PlaceOrder):
            if event.account == self.account:
                state.orders.setdefault(event.order_id, event)
        elif isinstance(event, RiskCheckPassed):
            order = state.orders.get(event.order_id)
            if order is not None:
                state.open_orders[event.order_id] = None
                now = event.envelope.event_time_ns
                times = [t for t in state.passed_times.get(order.venue, []) if t > now - RATE_WINDOW_NS]
                times.append(now)
                state.passed_times[order.venue] = times
        elif isinstance(event, OrderPartiallyFilled | OrderFilled):
            self._apply_fill(state, event)
        elif isinstance(event, OrderRejected | OrderCanceled | OrderExpired):
            state.open_orders.pop(event.order_id, None)
        elif isinstance(event, KillSwitchEngaged):
            state.kill_switch = True
        elif isinstance(event, KillSwitchReleased):
            state.kill_switch = False
        elif isinstance(event, UpdateRiskLimits):
            state.limits = event.limits
        elif isinstance(event, EquitySampled):
            if event.account == self.account:
                self._apply_equity(state, event)
        elif isinstance(event, DrawdownBreached):
            # Only our own breach: other accounts' risk deciders emit theirs under their own name.
            if event.envelope.source == self.name:
                state.breach_action = event.action
        return state

    def _apply_fill(self, state: RiskState, event: OrderPartiallyFilled | OrderFilled) -> None:
        if event.order_id not in state.orders:
            return
        if isinstance(event, OrderFilled):
            state.open_orders.pop(event.order_id, None)
        trade = (event.venue, event.venue_trade_id)
        if trade in state.seen_trades:
            return
        state.seen_trades.add(trade)
        key = (event.venue, event.instrument)
        state.positions[key] = state.positions.get(key, ZERO) + event.quantity * event.side.sign
        state.last_fill_price[key] = event.price

    def _apply_equity(self, state: RiskState, event: EquitySampled) -> None:
        peak = event.equity if state.peak_equity is None else max(state.peak_equity, event.equity)
        state.peak_equity = peak
        if peak <= 0:
            state.drawdown = ZERO
            return
        with localcontext(_CTX):
            state.drawdown = ((peak - event.equity) / peak).quantize(_FRACTION_QUANTUM)
            below = peak - event.equity < state.limits.max_drawdown_fraction * peak
        if below:
            state.breach_action = None


def _action(value: str) -> Literal["halt", "reduce_only"]:
    return "reduce_only" if value == "reduce_only" else "halt"


def _gross_exposure(
    state: RiskState, key: Key, position_after: Decimal, price: Decimal
) -> tuple[Decimal, Decimal]:
    """Gross exposure (sum of |position| * mark) before and after the order, over keys in sorted order."""
    before = after = ZERO
    keys = sorted(state.positions) if key in state.positions else sorted([*state.positions, key])
    for k in keys:
        position = state.positions.get(k, ZERO)
        if k == key:
            before += abs(position) * price
            after += abs(position_after) * price
        else:
            exposure = abs(position) * _mark(state, k, price)
            before += exposure
            after += exposure
    return before, after


def _mark(state: RiskState, key: Key, order_price: Decimal) -> Decimal:
    mid = state.mids.get(key)
    if mid is not None:
        return mid
    return state.last_fill_price.get(key, order_price)
