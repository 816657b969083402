"""Backtest metrics, computed from the same events the log holds (inputs and derived).

Money sums stay Decimal; ratios (Sharpe, Sortino, hit ratio, slippage in bps) are floats because they are
statistics, not money.

- Trades are round trips (`application.round_trips`: FIFO per venue and instrument, fees included); the hit
  ratio is the share of round trips with a positive PnL after fees, None when there is none.
- End inventory: the position per (venue, instrument) with its asset, in the instrument's units and in base
  units (contracts times their size; an inverse contract's size is in quote, so its base value depends on
  the mark), marked at the last mid of that venue/instrument; unhedged exposure: per asset, the net base
  quantity over all venues and its value (a spread long on one venue and short on another nets to zero;
  what does not net is the risk left). Instrument specs come from `InstrumentDefined`; without one, an
  instrument is spot-like (one base unit per unit traded) and its asset is parsed from its name.
- Risk rejections are counted per rule.
- Sharpe/Sortino: from one-minute returns (last equity sample of each minute), annualised by
  sqrt(minutes per year), and only with at least `MIN_RETURNS` of them; otherwise None with a note saying
  how many returns over how long there were. The horizon is stated either way.
- Drawdown: one pass over the equity samples with a running peak (`drawdown_series`), O(n).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from application.round_trips import RoundTripBook
from domain.events import (
    EquitySampled,
    EventBase,
    InstrumentDefined,
    OrderFillEvent,
    PlaceOrder,
    QuoteTick,
    RiskCheckRejected,
    SpreadOpportunityDetected,
)
from domain.instruments import is_inverse, settlement_value, units
from domain.market_view import MarketView, ReferenceMarketView
from domain.values import ZERO, canonical_amount

MINUTE_NS = 60_000_000_000
MINUTES_PER_YEAR = 365 * 24 * 60
AVERAGE_QUANTUM = Decimal("1e-8")
"""An average (PnL per trade) is a division: shown to 8 places (half even), not to 34 digits."""
MIN_RETURNS = 60
"""One-minute returns needed before a Sharpe/Sortino is reported (an hour): fewer say nothing annualisable."""


@dataclass
class LegStats:
    orders: int = 0
    ordered_quantity: Decimal = ZERO
    filled_quantity: Decimal = ZERO
    notional: Decimal = ZERO
    fees: Decimal = ZERO
    slippage_bps_weighted: float = 0.0
    """Sum of quantity-weighted slippage against the arrival mid, in bps (positive = paid more than mid)."""

    def as_dict(self) -> dict[str, Any]:
        filled = float(self.filled_quantity)
        return {
            "orders": self.orders,
            "ordered_quantity": canonical_amount(self.ordered_quantity),
            "filled_quantity": canonical_amount(self.filled_quantity),
            "fill_ratio": filled / float(self.ordered_quantity) if self.ordered_quantity else 0.0,
            "notional": canonical_amount(self.notional),
            "fees": canonical_amount(self.fees),
            "avg_slippage_bps": self.slippage_bps_weighted / filled if filled else 0.0,
        }


@dataclass
class BacktestMetrics:
    """Feed it every event of a run (`observe`), then read `summary()`."""

    equity: list[tuple[int, Decimal]] = field(default_factory=list)
    spreads: list[tuple[int, float]] = field(default_factory=list)
    opportunities: int = 0
    rejections_by_rule: dict[str, int] = field(default_factory=dict)
    fees: Decimal = ZERO
    legs: dict[str, LegStats] = field(default_factory=dict)
    round_trips: RoundTripBook = field(default_factory=RoundTripBook)
    market: MarketView = field(default_factory=ReferenceMarketView)
    """Where mids come from (an order's arrival mid, the end inventory's marks): the last quote of each
    (venue, instrument). Its own view, fed the quotes `observe` is given, until `follow` shares the run's."""
    _own_market: ReferenceMarketView | None = None

    def __post_init__(self) -> None:
        if isinstance(self.market, ReferenceMarketView):
            self._own_market = self.market
    _specs: dict[tuple[str, str], InstrumentDefined] = field(default_factory=dict)
    _arrival_mid: dict[uuid.UUID, Decimal] = field(default_factory=dict)

    def observe(self, event: EventBase) -> None:
        if isinstance(event, QuoteTick):
            if self._own_market is not None:
                self._own_market.apply(event)
        elif isinstance(event, InstrumentDefined):
            self._specs[(event.venue, event.instrument)] = event
        elif isinstance(event, SpreadOpportunityDetected):
            self.opportunities += 1
            self.spreads.append((event.envelope.event_time_ns, float(event.gross_edge_bps)))
        elif isinstance(event, PlaceOrder):
            self._on_order(event)
        elif isinstance(event, OrderFillEvent):
            self._on_fill(event)
        elif isinstance(event, EquitySampled):
            self.equity.append((event.envelope.event_time_ns, event.equity))
        elif isinstance(event, RiskCheckRejected):
            self.rejections_by_rule[event.rule] = self.rejections_by_rule.get(event.rule, 0) + 1

    def follow(self, market: MarketView) -> None:
        """Read mids from the run's market view (`Kernel.market`, which the kernel keeps): at an order, the
        last quote the engine had when it derived it, even where a market core skipped the quotes."""
        self.market = market
        self._own_market = None

    def _mid(self, venue: str, instrument: str) -> Decimal | None:
        quote = self.market.quote(venue, instrument)
        return None if quote is None else (quote.bid_price + quote.ask_price) / 2

    def _on_order(self, order: PlaceOrder) -> None:
        leg = self.legs.setdefault(order.venue, LegStats())
        leg.orders += 1
        leg.ordered_quantity += order.quantity
        mid = self._mid(order.venue, order.instrument)
        if mid is not None:
            self._arrival_mid[order.order_id] = mid

    def _on_fill(self, fill: OrderFillEvent) -> None:
        # A fee charged in the base asset is valued at the fill price, as the portfolio does.
        fee = (
            fill.fee * fill.price
            if fill.fee_currency == self._base(fill.venue, fill.instrument)
            else fill.fee
        )
        leg = self.legs.setdefault(fill.venue, LegStats())
        leg.filled_quantity += fill.quantity
        leg.notional += fill.price * fill.quantity
        leg.fees += fee
        self.fees += fee
        mid = self._arrival_mid.get(fill.order_id)
        if mid:
            slip = float((fill.price - mid) / mid) * 10_000 * fill.side.sign
            leg.slippage_bps_weighted += slip * float(fill.quantity)
        spec = self._specs.get((fill.venue, fill.instrument))
        if spec is None:
            self.round_trips.add(fill, fee)
        else:
            self.round_trips.add(fill, fee, spec.contract_size, spec.kind == "inverse")

    def _base(self, venue: str, instrument: str) -> str:
        spec = self._specs.get((venue, instrument))
        # An instrument without a definition is never guessed from its symbol: it is listed under its own name.
        return spec.base if spec is not None else instrument

    def _in_base(self, venue: str, instrument: str, quantity: Decimal, mark: Decimal) -> Decimal:
        """Base units of `quantity` of the instrument (contracts of an inverse one valued at `mark`)."""
        spec = self._specs.get((venue, instrument))
        if spec is None:
            return quantity
        held = units(spec, quantity)
        if not is_inverse(spec):
            return held
        return settlement_value(held, mark, inverse=True) if mark else ZERO

    def end_inventory(self) -> list[dict[str, str]]:
        """Open positions per (venue, instrument), in name order, marked at the last mid (cost if none)."""
        rows = []
        for venue, instrument in sorted(self.round_trips.lots):
            quantity = self.round_trips.open_quantity(venue, instrument)
            if quantity == 0:
                continue
            lots = self.round_trips.lots[(venue, instrument)]
            mid = self._mid(venue, instrument)
            mark = lots[-1].price if mid is None else mid
            base = self._in_base(venue, instrument, quantity, mark)
            rows.append({"venue": venue, "instrument": instrument, "asset": self._base(venue, instrument),
                         "quantity": canonical_amount(quantity), "base_quantity": canonical_amount(base), "mark": canonical_amount(mark),
                         "notional": canonical_amount(base * mark)})  # fmt: skip
        return rows

    def summary(self, starting_equity: Decimal) -> dict[str, Any]:
        final = self.equity[-1][1] if self.equity else starting_equity
        traded = sum((leg.notional for leg in self.legs.values()), ZERO)
        ordered = sum((leg.ordered_quantity for leg in self.legs.values()), ZERO)
        filled = sum((leg.filled_quantity for leg in self.legs.values()), ZERO)
        trips = self.round_trips.trips
        realized = sum((t.pnl for t in trips), ZERO)
        inventory = self.end_inventory()
        sharpe, sortino, horizon = risk_adjusted(self.equity)
        return {
            "starting_equity": canonical_amount(starting_equity),
            "final_equity": canonical_amount(final),
            "pnl": canonical_amount(final - starting_equity),
            "fees": canonical_amount(self.fees),
            "end_inventory": inventory,
            "unhedged_exposure": unhedged_exposure(inventory),
            "trades": len(trips),
            "hit_ratio": sum(1 for t in trips if t.pnl > 0) / len(trips) if trips else None,
            "round_trip_pnl": canonical_amount(realized),
            "avg_pnl_per_trade": canonical_amount((realized / len(trips)).quantize(AVERAGE_QUANTUM))
            if trips
            else None,
            "sharpe_annualized": sharpe,
            "sortino_annualized": sortino,
            "performance_horizon": horizon,
            "max_drawdown_fraction": max_drawdown(self.equity),
            "turnover": canonical_amount(traded),
            "turnover_over_equity": float(traded / starting_equity) if starting_equity else 0.0,
            "opportunities": self.opportunities,
            "fill_ratio": float(filled / ordered) if ordered else 0.0,
            "risk_rejections": sum(self.rejections_by_rule.values()),
            "risk_rejections_by_rule": dict(sorted(self.rejections_by_rule.items())),
            "equity_samples": len(self.equity),
            "legs": {venue: self.legs[venue].as_dict() for venue in sorted(self.legs)},
        }


def unhedged_exposure(inventory: Iterable[dict[str, str]]) -> dict[str, dict[str, str]]:
    """Per asset: net and gross quantity over all venues, and the net value at each venue's mark."""
    out: dict[str, dict[str, Decimal]] = {}
    for row in inventory:
        quantity, notional = Decimal(row["base_quantity"]), Decimal(row["notional"])
        asset = out.setdefault(
            row["asset"], {"net_quantity": ZERO, "gross_quantity": ZERO, "net_notional": ZERO}
        )
        asset["net_quantity"] += quantity
        asset["gross_quantity"] += abs(quantity)
        asset["net_notional"] += notional
    return {name: {k: canonical_amount(v) for k, v in values.items()} for name, values in sorted(out.items())}


def drawdown_series(equity: Iterable[tuple[int, Decimal]]) -> list[float]:
    """Drawdown from the running peak at each sample, as a fraction of that peak (0 at a new peak)."""
    series: list[float] = []
    peak: Decimal | None = None
    for _, value in equity:
        peak = value if peak is None or value > peak else peak
        series.append(float((peak - value) / peak) if peak > 0 else 0.0)
    return series


def max_drawdown(equity: Iterable[tuple[int, Decimal]]) -> float:
    return max(drawdown_series(equity), default=0.0)


def minute_returns(equity: list[tuple[int, Decimal]]) -> list[float]:
    """Returns between the last equity sample of consecutive minutes (samples may be finer than a minute)."""
    last_of_minute: dict[int, Decimal] = {}
    for time_ns, value in equity:  # in event-time order, so the dict keeps minutes in order
        last_of_minute[time_ns // MINUTE_NS] = value
    values = [float(e) for e in last_of_minute.values()]
    return [(b - a) / a for a, b in zip(values, values[1:], strict=False) if a]


def risk_adjusted(equity: list[tuple[int, Decimal]]) -> tuple[float | None, float | None, str]:
    """(Sharpe, Sortino, horizon): both None, and the horizon says why, below `MIN_RETURNS` returns."""
    returns = minute_returns(equity)
    span = _duration(equity[-1][0] - equity[0][0]) if equity else "0s"
    if len(returns) < MIN_RETURNS:
        return None, None, (f"n/a: {len(returns)} one-minute returns over {span} "
                            f"(Sharpe/Sortino need at least {MIN_RETURNS})")  # fmt: skip
    horizon = f"annualised from {len(returns)} one-minute returns over {span}"
    return _ratio(returns, downside_only=False), _ratio(returns, downside_only=True), horizon


def _ratio(returns: list[float], downside_only: bool) -> float | None:
    mean = sum(returns) / len(returns)
    deviations = [min(r, 0.0) for r in returns] if downside_only else [r - mean for r in returns]
    variance = sum(d * d for d in deviations) / (len(returns) - (0 if downside_only else 1))
    if variance <= 0:
        return None  # no variation (or no loss, for Sortino): the ratio is undefined, not infinite
    return mean / math.sqrt(variance) * math.sqrt(MINUTES_PER_YEAR)


def _duration(ns: int) -> str:
    seconds = ns // 1_000_000_000
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days}d"] * bool(days) + [f"{hours}h"] * bool(hours) + [f"{minutes}m"] * bool(minutes)
    return "".join(parts) + f"{secs}s"
