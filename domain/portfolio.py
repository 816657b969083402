"""Portfolio: positions per (venue, asset) from fills, valued at the latest mid; equity sampled on event time.

Accounting (all Decimal, exact but for the pro-rata cost of a partial reduction, rounded to 1e-12):

* An instrument maps to (base, quote, contract multiplier): `PortfolioConfig.instruments`, else
  `parse_instrument` ('BTCUSDT', 'BTC-USD', 'BTCUSD_PERP' -> BTC/USD...). A fill of q contracts at p is
  q * multiplier base units at p quote per base unit.
* Every instrument is accounted like spot (linear): a buy pays `p * q` out of the venue's quote cash and adds
  that to the position's cost basis; a sell receives it. For a linear perpetual this gives the same equity
  as margin accounting (cash here is not the margin balance). Inverse contracts are not modelled.
* Reducing or flipping realizes PnL against the average cost: realized = closed * (p - avg) for a long,
  closed * (avg - p) for a short; the flipped remainder opens at p.
* Fees are charged in the quote currency: a fee in the base asset is valued at the fill price; any other
  fee currency is taken at par. Quote currencies are summed at par (USDT = USD = USDC) into one equity.
* Unrealized PnL marks each position to the latest mid (QuoteTick) of the instrument it last traded on that
  venue; a position with no mark yet is carried at cost.
* Invariant: sum(cash) + sum(cost basis) == initial cash + realized PnL - fees.

`decide` emits `EquitySampled` on the first event at or after each multiple of `sample_interval_ns` of event
time (and on the very first event), valued as of just before that event: the value at the boundary.
Duplicate fills (same venue and venue_trade_id) are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal

from domain.events import EquitySampled, EventBase, OrderFillEvent, QuoteTick, derive_envelope
from domain.values import Side

_ZERO = Decimal(0)
_ONE = Decimal(1)
_TWO = Decimal(2)
COST_QUANTUM = Decimal("1e-12")
"""The pro-rata cost removed by a partial reduction is rounded (half even) to this many quote units."""

KNOWN_QUOTES: tuple[str, ...] = (
    "FDUSD", "USDT", "USDC", "BUSD", "TUSD", "DAI", "USD", "EUR", "GBP", "TRY", "BTC", "ETH", "BNB",
)  # fmt: skip
"""Quote suffixes `parse_instrument` recognizes, longest first where one ends another (USDT before USD)."""


@dataclass(frozen=True, slots=True)
class InstrumentSpec:
    base: str
    quote: str
    multiplier: Decimal = _ONE
    """Base units per contract (1 for spot and Binance USD-M linear perpetuals)."""


def parse_instrument(instrument: str, default_quote: str = "USDT") -> InstrumentSpec:
    """Default mapping: 'BTCUSDT' -> BTC/USDT, 'BTC-USD' or 'BTC/USD' -> BTC/USD, 'BTCUSD_PERP' -> BTC/USD,
    'BTCUSDT_240927' -> BTC/USDT; anything else is its own base in `default_quote`."""
    name = instrument.upper()
    for separator in ("-", "/"):
        if separator in name:
            parts = name.split(separator)
            if len(parts) >= 2 and parts[0] and parts[1]:
                return InstrumentSpec(parts[0], parts[1])
    name = name.split("_", 1)[0]
    for quote in KNOWN_QUOTES:
        if name.endswith(quote) and len(name) > len(quote):
            return InstrumentSpec(name[: -len(quote)], quote)
    return InstrumentSpec(name or instrument, default_quote)


@dataclass(frozen=True)
class PortfolioConfig:
    account: str = "default"
    quote_currency: str = "USDT"
    """The currency EquitySampled reports in (every quote currency is counted at par into it)."""
    initial_cash: tuple[tuple[str, str, Decimal], ...] = ()
    """(venue, currency, amount) starting balances."""
    instruments: Mapping[str, InstrumentSpec] = field(default_factory=dict)
    """Overrides of `parse_instrument`, by instrument name."""
    sample_interval_ns: int = 60_000_000_000

    def spec(self, instrument: str) -> InstrumentSpec:
        found = self.instruments.get(instrument)
        return found if found is not None else parse_instrument(instrument, self.quote_currency)


@dataclass(slots=True)
class Position:
    venue: str
    asset: str
    quote: str
    mark_instrument: str
    quantity: Decimal = _ZERO
    """Signed, in base units: positive long, negative short."""
    cost: Decimal = _ZERO
    """Signed cost basis in quote: quantity * average cost."""
    realized_pnl: Decimal = _ZERO

    @property
    def avg_cost(self) -> Decimal | None:
        return None if self.quantity == _ZERO else self.cost / self.quantity


@dataclass(slots=True)
class PortfolioState:
    positions: dict[tuple[str, str], Position] = field(default_factory=dict)
    """(venue, asset) -> position, in order of first fill."""
    cash: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    """(venue, currency) -> balance."""
    marks: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    """(venue, instrument) -> latest mid."""
    fees: Decimal = _ZERO
    realized_pnl: Decimal = _ZERO
    initial_cash: Decimal = _ZERO
    fill_count: int = 0
    last_sample_bucket: int | None = None
    seen_fills: set[tuple[str, str]] = field(default_factory=set)
    """(venue, venue_trade_id) of applied fills: membership tests only, never iterated."""


def position_mark(state: PortfolioState, position: Position) -> Decimal | None:
    return state.marks.get((position.venue, position.mark_instrument))


def unrealized_pnl(state: PortfolioState) -> Decimal:
    total = _ZERO
    for position in state.positions.values():
        mark = position_mark(state, position)
        if mark is not None and position.quantity != _ZERO:
            total += position.quantity * mark - position.cost
    return total


def total_cash(state: PortfolioState) -> Decimal:
    return sum(state.cash.values(), _ZERO)


def cost_basis(state: PortfolioState) -> Decimal:
    return sum((position.cost for position in state.positions.values()), _ZERO)


def equity(state: PortfolioState) -> Decimal:
    return total_cash(state) + cost_basis(state) + unrealized_pnl(state)


def position_after_fill(
    held: Decimal, cost: Decimal, signed_quantity: Decimal, price: Decimal
) -> tuple[Decimal, Decimal, Decimal]:
    """(quantity, cost basis, realized PnL) after a fill of `signed_quantity` at `price` on a position of
    `held` at `cost`. The one place position arithmetic lives: the read models use it too, so they agree to
    the last digit. Average-cost method; closing part of a position removes its pro-rata cost, rounded to
    COST_QUANTUM so every later sum stays exact."""
    realized = _ZERO
    if held == _ZERO or (held > _ZERO) == (signed_quantity > _ZERO):
        cost += signed_quantity * price
    else:
        quantity = abs(signed_quantity)
        closed = min(quantity, abs(held))
        if closed == abs(held):
            removed = cost
        else:
            removed = (cost * closed / abs(held)).quantize(COST_QUANTUM, rounding=ROUND_HALF_EVEN)
        proceeds = closed * price if held > _ZERO else -closed * price
        realized = proceeds - removed
        cost -= removed
        opened = quantity - closed
        if opened > _ZERO:
            cost += opened * price if signed_quantity > _ZERO else -opened * price
    held += signed_quantity
    if held == _ZERO:
        cost = _ZERO  # already exactly zero; guards against a stray digit from the division
    return held, cost, realized


def apply_fill(state: PortfolioState, fill: OrderFillEvent, spec: InstrumentSpec) -> None:
    """Fold one (new, valid) fill into the state."""
    quantity = fill.quantity * spec.multiplier
    price = fill.price
    signed = quantity if fill.side is Side.BUY else -quantity
    key = (fill.venue, spec.base)
    position = state.positions.get(key)
    if position is None:
        position = state.positions[key] = Position(fill.venue, spec.base, spec.quote, fill.instrument)
    position.mark_instrument = fill.instrument
    cash_key = (fill.venue, spec.quote)
    state.cash[cash_key] = state.cash.get(cash_key, _ZERO) - signed * price

    position.quantity, position.cost, realized = position_after_fill(position.quantity, position.cost, signed, price)
    position.realized_pnl += realized
    state.realized_pnl += realized

    if fill.fee_currency == spec.base:
        fee = fill.fee * price
    else:
        fee = fill.fee
    state.cash[cash_key] = state.cash[cash_key] - fee
    state.fees += fee
    state.fill_count += 1


class PortfolioDecider:
    def __init__(self, config: PortfolioConfig | None = None, name: str = "portfolio") -> None:
        self.config = config or PortfolioConfig()
        self.name = name
        if self.config.sample_interval_ns <= 0:
            raise ValueError("sample_interval_ns must be positive")

    def initial_state(self) -> PortfolioState:
        state = PortfolioState()
        for venue, currency, amount in self.config.initial_cash:
            state.cash[(venue, currency)] = state.cash.get((venue, currency), _ZERO) + amount
            state.initial_cash += amount
        return state

    def _bucket(self, event: EventBase) -> int:
        return event.envelope.event_time_ns // self.config.sample_interval_ns

    def decide(self, state: PortfolioState, event: EventBase) -> list[EventBase]:
        if isinstance(event, EquitySampled):
            return []
        bucket = self._bucket(event)
        if state.last_sample_bucket is not None and bucket <= state.last_sample_bucket:
            return []
        unrealized = unrealized_pnl(state)
        cash = total_cash(state)
        return [
            EquitySampled(
                envelope=derive_envelope(event.envelope, self.name, 0),
                account=self.config.account,
                quote_currency=self.config.quote_currency,
                equity=cash + cost_basis(state) + unrealized,
                cash=cash,
                realized_pnl=state.realized_pnl,
                unrealized_pnl=unrealized,
                fees=state.fees,
            )
        ]

    def evolve(self, state: PortfolioState, event: EventBase) -> PortfolioState:
        if isinstance(event, EquitySampled):
            return state
        bucket = self._bucket(event)
        if state.last_sample_bucket is None or bucket > state.last_sample_bucket:
            state.last_sample_bucket = bucket
        if isinstance(event, QuoteTick):
            if event.bid_price > _ZERO and event.ask_price >= event.bid_price:
                state.marks[(event.venue, event.instrument)] = (event.bid_price + event.ask_price) / _TWO
        elif isinstance(event, OrderFillEvent):
            key = (event.venue, event.venue_trade_id)
            if key in state.seen_fills or event.quantity <= _ZERO or event.price <= _ZERO:
                return state
            state.seen_fills.add(key)
            apply_fill(state, event, self.config.spec(event.instrument))
        return state
