"""Cross-exchange spread strategy: one instrument over N venues, taker on both legs.

Signal. For every ordered pair of distinct venues (B = buy venue, S = sell venue) the strategy compares the
best bid on S with the best ask on B, using the latest QuoteTick of each venue:

    gross_edge_bps = (bid_S - ask_B) / ask_B * 10_000        (edge measured against the BUY price)
    net_edge_bps   = gross_edge_bps - taker_fee_bps[B] - taker_fee_bps[S]

A pair is tradeable when `net_edge_bps > min_edge_bps` (strictly: exactly at the threshold does not fire;
the test is done exactly, as (bid_S - ask_B) * 10_000 > (fee_B + fee_S + min_edge_bps) * ask_B), both top
sizes (ask size on B, bid size on S) are >= `min_size`, and both quotes are fresh: `now - quote_time <=
max_quote_age_ns`, where `now` is the event time of the QuoteTick being handled (event time, never a clock).
Among tradeable pairs the best net edge wins; ties go to venue order (lowest buy-venue index, then lowest
sell-venue index in `config.venues`). Nothing fires while stopped, in cooldown (`now - last_trade_time <
cooldown_ns`) or when `max_legs_in_flight` leg groups are open.

Exit (convergence). With `exit_edge_bps` set, a spread the strategy holds is closed when the basis comes
back: the strategy's own inventory per venue (the sum of its fills, repairs included) is long on X and short
on Y, and selling on X / buying on Y has `net_edge_bps > exit_edge_bps` (usually negative: what the
strategy accepts to pay to flatten). The exit is judged before any entry and is sized like an entry, capped
at the held pair (min(long on X, short on Y)). It is an ordinary leg group (two IOC limits, judged together
by risk, repaired the same way) whose buy and sell venues are the reverse of the held spread's. Without
`exit_edge_bps` the strategy never closes what it holds.

Sizing. quantity = min(ask_size_B, bid_size_S, max_order_quantity, budget) rounded DOWN to `quantity_step`,
where budget = max_notional_per_trade / (value of one unit) on each leg, the smaller of the two: the value of
a unit is `domain.instruments.notional` of the venue's InstrumentDefined for one contract at the leg's price
(price x contract size for spot and linear, the face value, e.g. 100 USD, for an inverse contract at any
price; the price while no specification has been seen), so the budget caps the notional of each leg. If
that is below `min_size` (or zero) nothing fires.

Orders. On a trade it emits SpreadOpportunityDetected and two IOC limit PlaceOrder commands at the quoted
prices: index 0 buys on B at ask_B, index 1 sells on S at bid_S. Ids are reproducible anywhere:
opportunity_id = uuid5(cause event id, f"{name}:opportunity"); leg order id = uuid5(opportunity_id,
f"leg:{index}"); repair k (0-based, see below) is leg 2 + k; `leg_group_id` = opportunity_id.

Legs. Both legs carry `legs_in_group=2`: risk judges them together, so either both go out or neither does.
The strategy follows its own orders through OrderPartiallyFilled/OrderFilled (filled quantity =
cumulative_quantity, so duplicates are harmless), OrderRejected/OrderCanceled/OrderExpired (terminal), and
RiskCheckRejected (the order never went out: terminal, unfilled).

Leg failure. When every order of a group is terminal and the group's net filled quantity (buys minus sells,
repairs included) is not zero, one market IOC repair order (`repair=True`, so it passes a drawdown halt)
takes the imbalance |net| off, on the first venue of the policy's list where neither risk nor the venue has
refused an order of this group:
  * "hedge":  the venue of the leg that filled less (do what it failed to do), then the strategy's other
              venues in config order, then the venue of the leg that filled more (unwind);
  * "unwind": the venue of the leg that filled more (undo its excess), then the other venues, then the venue
              of the leg that filled less.
The repair is never reduce_only: its size is measured against the group's own fills, not the venue's net
position (which an earlier opposite position may have brought to zero). A repair that fills partly, expires
or is refused leads to the next one for what is left, up to `max_repair_attempts` repairs. When the budget
is spent, or every venue refused, the strategy emits LegExposureUnresolved (venue and side of the excess,
size, age since the group's first fill, attempts) and stops (as after StopStrategy) until an operator
starts it again; the group is closed. So an imbalance is always either repaired or reported.
Repairs are sent even while the strategy is stopped. A group stays in flight until its net is zero with
every order terminal, or it was reported unresolved.

StartStrategy/StopStrategy toggle `started` when they name this strategy (or none) and this strategy's
account (or none). Invalid quotes (non-positive prices, negative sizes) are ignored for signals; nothing here
raises on input.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from decimal import ROUND_FLOOR, Decimal
from fractions import Fraction
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.events import (
    EventBase,
    InstrumentDefined,
    LegExposureUnresolved,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderPartiallyFilled,
    OrderRejected,
    PlaceOrder,
    QuoteTick,
    RiskCheckRejected,
    SpreadOpportunityDetected,
    StartStrategy,
    StopStrategy,
    applies_to,
    derive_envelope,
)
from domain.instruments import notional
from domain.market_view import MarketView
from domain.values import (
    BPS,
    DECIMAL_CONTEXT,
    ZERO,
    Amount,
    OrderType,
    Side,
    TimeInForce,
    in_decimal_context,
)
from domain.wake import NEVER, CrossEdge, Hurdle, Ratio, WakeSpec, ratio

_EDGE_QUANTUM = Decimal("0.0001")
REPAIR_LEG_INDEX = 2


class SpreadStrategyConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    strategy_id: str
    account: str
    instrument: str
    venues: tuple[str, ...] = Field(min_length=2)
    """Ordered: the order is the tie-break between equally good venue pairs."""
    taker_fee_bps: dict[str, Amount]
    """Taker fee per venue in bps of notional; every venue needs one."""
    min_edge_bps: Amount = Decimal("0")
    max_quote_age_ns: int = Field(default=1_000_000_000, ge=0)
    min_size: Amount = Field(default=Decimal("0"), ge=0)
    max_order_quantity: Amount = Field(gt=0)
    max_notional_per_trade: Amount = Field(gt=0)
    """Risk budget: the most either leg may be worth, in quote currency."""
    quantity_step: Amount = Field(default=Decimal("0.0001"), gt=0)
    cooldown_ns: int = Field(default=0, ge=0)
    max_legs_in_flight: int = Field(default=1, ge=0)
    """Most leg groups (spread trades) open at once; a group is open until its legs (and repair) end."""
    exit_edge_bps: Amount | None = None
    """Close a held spread when reversing it nets more than this many bps (see Exit); None: never."""
    on_leg_failure: Literal["hedge", "unwind"] = "hedge"
    max_repair_attempts: int = Field(default=3, ge=1)
    """Repair orders a failed group may send before it is reported unresolved and the strategy stops."""
    started: bool = True

    @model_validator(mode="after")
    def _check_venues(self) -> SpreadStrategyConfig:
        if len(set(self.venues)) != len(self.venues):
            raise ValueError("venues must be distinct")
        missing = [v for v in self.venues if v not in self.taker_fee_bps]
        if missing:
            raise ValueError(f"taker_fee_bps missing for venues {missing}")
        if self.min_size > self.max_order_quantity:
            raise ValueError(f"min_size {self.min_size} is above max_order_quantity {self.max_order_quantity}: "
                             "the strategy could never trade")  # fmt: skip
        return self


@dataclass
class Leg:
    order_id: uuid.UUID
    venue: str
    side: Side
    filled: Decimal = ZERO
    terminal: bool = False
    refused: bool = False
    """Refused by risk or by the venue: not a place to send this group's repair."""


@dataclass
class LegGroup:
    group_id: uuid.UUID
    buy: Leg
    sell: Leg
    repairs: list[Leg] = field(default_factory=list)
    first_fill_ns: int | None = None
    repair_due: bool = False
    """A repair order (or the unresolved report) was decided and has not come back through evolve yet."""

    def legs(self) -> list[Leg]:
        return [self.buy, self.sell, *self.repairs]

    @property
    def net(self) -> Decimal:
        """Filled buys minus filled sells over every order of the group: the exposure it leaves."""
        return sum((leg.filled * leg.side.sign for leg in self.legs()), ZERO)

    @property
    def settled(self) -> bool:
        return all(leg.terminal for leg in self.legs())

    def copy(self) -> LegGroup:
        return replace(self, buy=replace(self.buy), sell=replace(self.sell),
                       repairs=[replace(leg) for leg in self.repairs])  # fmt: skip


@dataclass
class SpreadState:
    started: bool
    specs: dict[str, InstrumentDefined] = field(default_factory=dict)
    """The instrument's specification per configured venue, as it flowed (sizes the notional budget)."""
    groups: dict[uuid.UUID, LegGroup] = field(default_factory=dict)
    """Open leg groups, in the order they were opened."""
    order_groups: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)
    """Order id -> group id, for the orders of open groups."""
    last_trade_ns: int | None = None
    inventory: dict[str, Decimal] = field(default_factory=dict)
    """Net filled quantity per venue from this strategy's own orders (what an exit can close)."""

    @property
    def legs_in_flight(self) -> int:
        return len(self.groups)


@dataclass(frozen=True)
class _Candidate:
    buy_venue: str
    sell_venue: str
    buy_price: Decimal
    sell_price: Decimal
    quantity: Decimal
    gross_edge_bps: Decimal
    net_edge_bps: Decimal


def _unit_value(spec: InstrumentDefined | None, price: Decimal) -> Decimal:
    """What one unit of quantity is worth at `price` in the quote currency (`domain.instruments.notional`):
    the price for spot or an unspecified instrument, contract size x price for linear, the contract's face
    value for inverse."""
    return price if spec is None else notional(spec, Decimal(1), price)


def leg_order_id(opportunity_id: uuid.UUID, index: int) -> uuid.UUID:
    return uuid.uuid5(opportunity_id, f"leg:{index}")


class SpreadStrategy:
    """Decider for one SpreadStrategyConfig; `name` defaults to f"spread.{strategy_id}"."""

    consumes = (
        InstrumentDefined, QuoteTick, SpreadOpportunityDetected, PlaceOrder, OrderPartiallyFilled, OrderFilled, OrderRejected,
        OrderCanceled, OrderExpired, RiskCheckRejected, StartStrategy, StopStrategy, LegExposureUnresolved,
    )  # fmt: skip

    def __init__(self, config: SpreadStrategyConfig, name: str | None = None) -> None:
        self.config = config
        self.name = name or f"spread.{config.strategy_id}"

    def initial_state(self) -> SpreadState:
        return SpreadState(started=self.config.started)

    # ------------------------------------------------------------------ decide

    def wake(self, state: SpreadState) -> WakeSpec:
        """Quotes can only fire a trade while started, below `max_legs_in_flight`, after the cooldown, and
        when some ordered pair's net edge is strictly above its hurdle (the entry's, or the exit's where the
        strategy holds that spread, whichever is lower) with fresh, large enough quotes."""
        cfg = self.config
        if not state.started or state.legs_in_flight >= cfg.max_legs_in_flight:
            return NEVER
        hurdles = []
        for buy_venue in cfg.venues:
            for sell_venue in cfg.venues:
                if buy_venue == sell_venue:
                    continue
                # Exact sums (Fraction): the hurdle must not depend on a decimal context's rounding.
                fees = Fraction(cfg.taker_fee_bps[buy_venue]) + Fraction(cfg.taker_fee_bps[sell_venue])
                hurdle = fees + Fraction(cfg.min_edge_bps)
                if (
                    cfg.exit_edge_bps is not None
                    and state.inventory.get(sell_venue, ZERO) > 0
                    and state.inventory.get(buy_venue, ZERO) < 0
                ):
                    hurdle = min(hurdle, fees + Fraction(cfg.exit_edge_bps))
                hurdles.append(Hurdle(buy_venue, sell_venue, Ratio(hurdle.numerator, hurdle.denominator)))
        not_before = None if state.last_trade_ns is None else state.last_trade_ns + cfg.cooldown_ns
        edge = CrossEdge(cfg.instrument, tuple(hurdles), cfg.max_quote_age_ns, ratio(cfg.min_size))
        return WakeSpec((edge,), not_before_ns=not_before)

    @in_decimal_context  # the caller's decimal context never changes a result
    def decide(self, state: SpreadState, event: EventBase, view: MarketView) -> list[EventBase]:
        return self._decide(state, event, view)

    def _decide(self, state: SpreadState, event: EventBase, view: MarketView) -> list[EventBase]:
        if isinstance(event, QuoteTick):
            return self._on_quote(state, event, view)
        if isinstance(
            event, OrderPartiallyFilled | OrderFilled | OrderRejected | OrderCanceled | OrderExpired
        ):
            return self._on_order_event(state, event, event.order_id)
        if isinstance(event, RiskCheckRejected):
            return self._on_order_event(state, event, event.order_id)
        return []

    def _on_quote(self, state: SpreadState, event: QuoteTick, view: MarketView) -> list[EventBase]:
        cfg = self.config
        if event.instrument != cfg.instrument or event.venue not in cfg.taker_fee_bps:
            return []
        if not state.started or state.legs_in_flight >= cfg.max_legs_in_flight:
            return []
        now = event.envelope.event_time_ns
        if state.last_trade_ns is not None and now - state.last_trade_ns < cfg.cooldown_ns:
            return []
        quotes = {venue: view.quote(venue, cfg.instrument) for venue in cfg.venues}
        best = self._best_exit(state, quotes, now) or self._best_candidate(quotes, state.specs, now)
        if best is None:
            return []
        opportunity_id = uuid.uuid5(event.envelope.event_id, f"{self.name}:opportunity")
        signal = SpreadOpportunityDetected(
            envelope=derive_envelope(event.envelope, self.name, 0),
            opportunity_id=opportunity_id,
            strategy_id=cfg.strategy_id,
            instrument=cfg.instrument,
            buy_venue=best.buy_venue,
            sell_venue=best.sell_venue,
            buy_price=best.buy_price,
            sell_price=best.sell_price,
            quantity=best.quantity,
            gross_edge_bps=best.gross_edge_bps.quantize(_EDGE_QUANTUM, context=DECIMAL_CONTEXT),
            net_edge_bps=best.net_edge_bps.quantize(_EDGE_QUANTUM, context=DECIMAL_CONTEXT),
        )
        legs = [
            (best.buy_venue, Side.BUY, best.buy_price),
            (best.sell_venue, Side.SELL, best.sell_price),
        ]
        orders: list[EventBase] = [
            PlaceOrder(
                envelope=derive_envelope(event.envelope, self.name, index + 1),
                order_id=leg_order_id(opportunity_id, index),
                account=cfg.account,
                strategy_id=cfg.strategy_id,
                venue=venue,
                instrument=cfg.instrument,
                side=side,
                order_type=OrderType.LIMIT,
                time_in_force=TimeInForce.IOC,
                quantity=best.quantity,
                limit_price=price,
                leg_group_id=opportunity_id,
                legs_in_group=len(legs),
            )
            for index, (venue, side, price) in enumerate(legs)
        ]
        return [signal, *orders]

    def _best_candidate(
        self, quotes: dict[str, QuoteTick | None], specs: dict[str, InstrumentDefined], now: int
    ) -> _Candidate | None:
        cfg = self.config
        best: _Candidate | None = None
        for buy_venue in cfg.venues:
            buy_quote = quotes.get(buy_venue)
            if buy_quote is None or not self._usable(buy_quote, now):
                continue
            for sell_venue in cfg.venues:
                sell_quote = quotes.get(sell_venue)
                if sell_venue == buy_venue or sell_quote is None or not self._usable(sell_quote, now):
                    continue
                candidate = self._evaluate(buy_venue, buy_quote, sell_venue, sell_quote, specs)
                # Strictly better only: on a tie the earlier pair (venue order) stays.
                if candidate is not None and (best is None or candidate.net_edge_bps > best.net_edge_bps):
                    best = candidate
        return best

    def _best_exit(
        self, state: SpreadState, quotes: dict[str, QuoteTick | None], now: int
    ) -> _Candidate | None:
        """The best closing pair: sell where the strategy is long, buy where it is short."""
        cfg = self.config
        if cfg.exit_edge_bps is None:
            return None
        best: _Candidate | None = None
        for sell_venue in cfg.venues:  # config order: deterministic tie-break, as for entries
            long = state.inventory.get(sell_venue, ZERO)
            sell_quote = quotes.get(sell_venue)
            if long <= 0 or sell_quote is None or not self._usable(sell_quote, now):
                continue
            for buy_venue in cfg.venues:
                short = -state.inventory.get(buy_venue, ZERO)
                buy_quote = quotes.get(buy_venue)
                if short <= 0 or buy_quote is None or not self._usable(buy_quote, now):
                    continue
                candidate = self._evaluate(buy_venue, buy_quote, sell_venue, sell_quote, state.specs,
                                           min_edge_bps=cfg.exit_edge_bps, held=min(long, short))  # fmt: skip
                if candidate is not None and (best is None or candidate.net_edge_bps > best.net_edge_bps):
                    best = candidate
        return best

    def _usable(self, quote: QuoteTick, now: int) -> bool:
        if quote.bid_price <= 0 or quote.ask_price <= 0 or quote.bid_size < 0 or quote.ask_size < 0:
            return False
        return now - quote.envelope.event_time_ns <= self.config.max_quote_age_ns

    def _evaluate(
        self,
        buy_venue: str,
        buy_quote: QuoteTick,
        sell_venue: str,
        sell_quote: QuoteTick,
        specs: dict[str, InstrumentDefined],
        min_edge_bps: Decimal | None = None,
        held: Decimal | None = None,
    ) -> _Candidate | None:
        """The pair if its net edge is strictly above `min_edge_bps` (default: the entry threshold), sized
        within the strategy's caps and, for an exit, the `held` quantity."""
        cfg = self.config
        threshold = cfg.min_edge_bps if min_edge_bps is None else min_edge_bps
        ask, bid = buy_quote.ask_price, sell_quote.bid_price
        ask_size, bid_size = buy_quote.ask_size, sell_quote.bid_size
        if ask_size < cfg.min_size or bid_size < cfg.min_size:
            return None
        hurdle_bps = cfg.taker_fee_bps[buy_venue] + cfg.taker_fee_bps[sell_venue] + threshold
        # Exact test (no division): net edge strictly above min_edge_bps.
        if (bid - ask) * BPS <= hurdle_bps * ask:
            return None
        gross = (bid - ask) * BPS / ask
        net = gross - cfg.taker_fee_bps[buy_venue] - cfg.taker_fee_bps[sell_venue]
        budget = min(
            cfg.max_notional_per_trade / _unit_value(specs.get(buy_venue), ask),
            cfg.max_notional_per_trade / _unit_value(specs.get(sell_venue), bid),
        )
        raw_quantity = min(ask_size, bid_size, cfg.max_order_quantity, budget)
        if held is not None:
            raw_quantity = min(raw_quantity, held)
        steps = (raw_quantity / cfg.quantity_step).to_integral_value(rounding=ROUND_FLOOR)
        quantity = steps * cfg.quantity_step
        if quantity <= 0 or quantity < cfg.min_size:
            return None
        return _Candidate(buy_venue, sell_venue, ask, bid, quantity, gross, net)

    def _on_order_event(self, state: SpreadState, event: EventBase, order_id: uuid.UUID) -> list[EventBase]:
        group_id = state.order_groups.get(order_id)
        group = None if group_id is None else state.groups.get(group_id)
        if group is None or group.repair_due:
            return []
        after = _group_after(group, event)
        if not after.settled or after.net == 0:
            return []
        cfg = self.config
        envelope = derive_envelope(event.envelope, self.name, 0)
        side = Side.SELL if after.net > 0 else Side.BUY
        venue = self._repair_venue(after, side)
        attempts = len(after.repairs)
        if venue is None or attempts >= cfg.max_repair_attempts:
            last = after.repairs[-1] if after.repairs else None
            why = (f"{attempts} repair orders sent (budget {cfg.max_repair_attempts})" if venue is not None
                   else "every venue refused this group's orders")  # fmt: skip
            if last is not None:
                why += f"; the last, on {last.venue}, filled {last.filled}"
            exposed = after.buy if after.net > 0 else after.sell
            first_fill = after.first_fill_ns if after.first_fill_ns is not None else envelope.event_time_ns
            return [
                LegExposureUnresolved(
                    envelope=envelope,
                    strategy_id=cfg.strategy_id,
                    account=cfg.account,
                    leg_group_id=group.group_id,
                    instrument=cfg.instrument,
                    venue=exposed.venue,
                    side=side.opposite,
                    quantity=abs(after.net),
                    age_ns=envelope.event_time_ns - first_fill,
                    attempts=attempts,
                    reason=why,
                )
            ]
        return [
            PlaceOrder(
                envelope=envelope,
                order_id=leg_order_id(group.group_id, REPAIR_LEG_INDEX + attempts),
                account=cfg.account,
                strategy_id=cfg.strategy_id,
                venue=venue,
                instrument=cfg.instrument,
                side=side,
                order_type=OrderType.MARKET,
                time_in_force=TimeInForce.IOC,
                quantity=abs(after.net),
                leg_group_id=group.group_id,
                repair=True,
            )
        ]

    def _repair_venue(self, group: LegGroup, side: Side) -> str | None:
        """Where the next repair goes (trading `side`): the policy's order, skipping refused venues."""
        short = group.sell if side is Side.SELL else group.buy  # the leg that did too little on `side`
        long = group.buy if side is Side.SELL else group.sell  # the leg whose excess is to be undone
        others = [v for v in self.config.venues if v not in (short.venue, long.venue)]
        if self.config.on_leg_failure == "hedge":
            order = [short.venue, *others, long.venue]
        else:
            order = [long.venue, *others, short.venue]
        refused = {leg.venue for leg in group.legs() if leg.refused}  # membership only
        return next((venue for venue in order if venue not in refused), None)

    # ------------------------------------------------------------------ evolve

    @in_decimal_context
    def evolve(self, state: SpreadState, event: EventBase, view: MarketView) -> SpreadState:
        return self._evolve(state, event)

    def _evolve(self, state: SpreadState, event: EventBase) -> SpreadState:
        cfg = self.config
        if isinstance(event, InstrumentDefined):
            if event.instrument == cfg.instrument and event.venue in cfg.taker_fee_bps:
                state.specs[event.venue] = event
        elif isinstance(event, SpreadOpportunityDetected):
            if event.strategy_id == cfg.strategy_id and event.opportunity_id not in state.groups:
                gid = event.opportunity_id
                group = LegGroup(
                    group_id=gid,
                    buy=Leg(leg_order_id(gid, 0), event.buy_venue, Side.BUY),
                    sell=Leg(leg_order_id(gid, 1), event.sell_venue, Side.SELL),
                )
                state.groups[gid] = group
                state.order_groups[group.buy.order_id] = gid
                state.order_groups[group.sell.order_id] = gid
                state.last_trade_ns = event.envelope.event_time_ns
        elif isinstance(event, PlaceOrder):
            owner = None if event.leg_group_id is None else state.groups.get(event.leg_group_id)
            if (
                owner is not None
                and event.strategy_id == cfg.strategy_id
                and event.order_id == leg_order_id(owner.group_id, REPAIR_LEG_INDEX + len(owner.repairs))
            ):
                owner.repairs.append(Leg(event.order_id, event.venue, event.side))
                owner.repair_due = False
                state.order_groups[event.order_id] = owner.group_id
        elif isinstance(
            event, OrderPartiallyFilled | OrderFilled | OrderRejected | OrderCanceled | OrderExpired
        ):
            self._apply_to_group(state, event, event.order_id)
        elif isinstance(event, RiskCheckRejected):
            self._apply_to_group(state, event, event.order_id)
        elif isinstance(event, LegExposureUnresolved):
            if event.strategy_id == cfg.strategy_id:
                self._close(state, event.leg_group_id)
                state.started = False
        elif isinstance(event, StartStrategy | StopStrategy):
            if event.strategy_id in (None, cfg.strategy_id) and applies_to(event.account, cfg.account):
                state.started = isinstance(event, StartStrategy)
        return state

    def _apply_to_group(self, state: SpreadState, event: EventBase, order_id: uuid.UUID) -> None:
        group_id = state.order_groups.get(order_id)
        group = None if group_id is None else state.groups.get(group_id)
        if group is None:
            return
        after = _group_after(group, event)
        for before_leg, after_leg in zip(group.legs(), after.legs(), strict=True):
            if after_leg.filled != before_leg.filled:
                change = (after_leg.filled - before_leg.filled) * after_leg.side.sign
                state.inventory[after_leg.venue] = state.inventory.get(after_leg.venue, ZERO) + change
        if after.settled and after.net == 0:
            self._close(state, after.group_id)
            return
        if after.settled and not group.repair_due:
            after.repair_due = True  # decide has just sent a repair or the unresolved report
        state.groups[after.group_id] = after

    @staticmethod
    def _close(state: SpreadState, group_id: uuid.UUID) -> None:
        group = state.groups.pop(group_id, None)
        if group is not None:
            for leg in group.legs():
                state.order_groups.pop(leg.order_id, None)


def _group_after(group: LegGroup, event: EventBase) -> LegGroup:
    """A copy of the group with `event` applied to the order it concerns."""
    after = group.copy()
    order_id = getattr(event, "order_id", None)
    for leg in after.legs():
        if leg.order_id != order_id:
            continue
        if isinstance(event, OrderPartiallyFilled | OrderFilled):
            leg.filled = max(leg.filled, event.cumulative_quantity)
            leg.terminal = leg.terminal or isinstance(event, OrderFilled)
            if after.first_fill_ns is None:
                after.first_fill_ns = event.envelope.event_time_ns
        else:  # rejected, canceled, expired, or refused by risk
            leg.terminal = True
            leg.refused = leg.refused or isinstance(event, RiskCheckRejected | OrderRejected)
    return after
