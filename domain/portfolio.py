"""Portfolio: positions per venue from fills, accounted as their instrument's specification says (an
`InstrumentDefined` event, the first record of every market-data stream), valued at recorded prices; equity
sampled on event time.

Accounting (all Decimal in `domain.values.DECIMAL_CONTEXT`; the arithmetic itself is `domain.instruments`):

* No guessing from a symbol: a fill on an instrument no InstrumentDefined has specified is not accounted; it is
  counted and named in every later EquitySampled (`unaccounted_fills`).
* Spot: a position per (venue, base asset) in base units; a buy pays `price * units` of the quote currency out
  of the venue's cash, a sell receives it; the position is valued at the latest mid of the instrument it last
  traded on that venue (at cost until a mid is known).
* Linear and inverse contracts: a position per (venue, instrument), in units (`domain.instruments.units`);
  margin style: a fill moves no cash, realized PnL is paid into the venue's settlement-currency cash and open
  PnL is marked to the instrument's latest mid. Inverse contracts are accounted in the settlement coin:
  long 10 x 100 USD BTCUSD_PERP from 60,000 to 61,000 earns 1000/60000 - 1000/61000 BTC.
* Reducing or flipping realizes PnL against the average cost; the flipped remainder opens at the fill price.
* Fees are charged in their own currency, from that currency's cash on the venue.
* Currencies are never added at par: each currency's holdings (cash + spot positions at their mark +
  derivative open PnL) are converted to the report currency (`PortfolioConfig.quote_currency`) at the latest
  recorded mid of an instrument that prices one in the other (spot preferred, then the most recent mid, then
  venue and instrument name); a currency without such a price is reported unconverted and left out of every
  total. EquitySampled lists each currency with the price and instrument used.

`decide` emits `EquitySampled` on the first event at or after each multiple of `sample_interval_ns` of event
time (and on the very first event), valued as of just before that event: the value at the boundary.
Duplicate fills (same venue and venue_trade_id) are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from domain.events import (
    CurrencyValuation,
    EquitySampled,
    EventBase,
    InstrumentDefined,
    OrderFillEvent,
    QuoteTick,
    derive_envelope,
)
from domain.instruments import (
    is_inverse,
    is_spot,
    position_after_fill,
    settlement_value,
    units,
    unrealized_pnl,
)
from domain.market_view import MarketView
from domain.values import Side, in_decimal_context
from domain.wake import ALWAYS, WakeSpec

_ZERO = Decimal(0)
_ONE = Decimal(1)
_TWO = Decimal(2)

InstrumentKey = tuple[str, str]
"""(venue, instrument)."""


@dataclass(frozen=True)
class PortfolioConfig:
    account: str = "default"
    quote_currency: str = "USDT"
    """The report currency of EquitySampled; other currencies are converted into it at recorded prices."""
    initial_cash: tuple[tuple[str, str, Decimal], ...] = ()
    """(venue, currency, amount) starting balances."""
    sample_interval_ns: int = 60_000_000_000


@dataclass(slots=True)
class Position:
    venue: str
    asset: str
    """The base asset (spot) or the instrument (contracts)."""
    spec: InstrumentDefined
    """The instrument it last traded (its mid marks the position)."""
    quantity: Decimal = _ZERO
    """Signed units (`domain.instruments.units`): positive long, negative short."""
    cost: Decimal = _ZERO
    """Signed cost basis in the settlement currency."""
    realized_pnl: Decimal = _ZERO

    @property
    def settlement(self) -> str:
        return self.spec.settlement

    @property
    def avg_cost(self) -> Decimal | None:
        return None if self.quantity == _ZERO else self.cost / self.quantity


@dataclass(slots=True)
class PortfolioState:
    specs: dict[InstrumentKey, InstrumentDefined] = field(default_factory=dict)
    """The latest definition of each instrument seen."""
    positions: dict[tuple[str, str], Position] = field(default_factory=dict)
    """(venue, asset) -> position, in order of first fill."""
    cash: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    """(venue, currency) -> balance."""
    realized: dict[str, Decimal] = field(default_factory=dict)
    """Currency -> realized PnL."""
    fees: dict[str, Decimal] = field(default_factory=dict)
    """Currency -> fees paid."""
    unaccounted: dict[InstrumentKey, int] = field(default_factory=dict)
    """Fills on instruments without a specification, by instrument."""
    fill_count: int = 0
    last_sample_bucket: int | None = None
    seen_fills: set[tuple[str, str]] = field(default_factory=set)
    """(venue, venue_trade_id) of applied fills: membership tests only, never iterated."""


def _add(book: dict[str, Decimal], currency: str, amount: Decimal) -> None:
    book[currency] = book.get(currency, _ZERO) + amount


Marks = dict[InstrumentKey, tuple[Decimal, int]]
"""(venue, instrument) -> (mid of its last valid quote, that quote's event time)."""


def marks(view: MarketView, before: EventBase | None = None) -> Marks:
    """The mids of the view's valid quotes (bid > 0, ask >= bid); as of just before `before` when it is a
    quote (the view already holds it)."""
    found: Marks = {}
    for key, quote in view.valid_quotes():
        if isinstance(before, QuoteTick) and key == (before.venue, before.instrument):
            prior = view.prior_valid_quote(*key)
            if prior is None:
                continue
            quote = prior
        found[key] = ((quote.bid_price + quote.ask_price) / _TWO, quote.envelope.event_time_ns)
    return found


def position_mark(marks: Marks, position: Position) -> Decimal | None:
    found = marks.get((position.venue, position.spec.instrument))
    return None if found is None else found[0]


def position_holding(marks: Marks, position: Position) -> tuple[Decimal, Decimal]:
    """(what the position adds to its settlement currency's holdings, its open PnL). Spot carries its cost
    (the cash it took) plus open PnL; contracts carry only their open PnL."""
    mark = position_mark(marks, position)
    inverse = is_inverse(position.spec)
    pnl = _ZERO if mark is None else unrealized_pnl(position.quantity, position.cost, mark, inverse)
    carried = position.cost if is_spot(position.spec) else _ZERO
    return carried + pnl, pnl


def position_fee(spec: InstrumentDefined, fill: OrderFillEvent) -> Decimal | None:
    """A fill's fee in the position's settlement currency: as charged when charged in it, at the fill's own
    price when charged in the base asset of a spot or linear instrument, None (not convertible from this fill
    alone) otherwise. The read models' per-position fee column uses this rule."""
    if fill.fee_currency == spec.settlement:
        return fill.fee
    if fill.fee_currency == spec.base and not is_inverse(spec):
        return fill.fee * fill.price
    return None


def position_asset(spec: InstrumentDefined, settlement_held: str | None) -> str:
    """What a fill's position is kept under on its venue: the base asset for spot (one BTC holding), the
    instrument for contracts. `settlement_held` is the currency of the spot position already held in that base
    (None if none): spot bought in another quote currency (BTCUSDT, then BTCFDUSD) is kept apart under the
    instrument, since one cost basis is in one currency."""
    if is_spot(spec) and settlement_held in (None, spec.settlement):
        return spec.base
    return spec.instrument


def apply_fill(state: PortfolioState, fill: OrderFillEvent, spec: InstrumentDefined) -> None:
    """Fold one (new, valid) fill on an instrument specified by `spec` into the state."""
    signed = units(spec, fill.quantity) if fill.side is Side.BUY else -units(spec, fill.quantity)
    spot = is_spot(spec)
    held = state.positions.get((fill.venue, spec.base))
    key = (fill.venue, position_asset(spec, None if held is None else held.settlement))
    position = state.positions.get(key)
    if position is None:
        position = state.positions[key] = Position(fill.venue, key[1], spec)
    position.spec = spec
    inverse = is_inverse(spec)
    position.quantity, position.cost, realized = position_after_fill(
        position.quantity, position.cost, signed, fill.price, inverse
    )
    position.realized_pnl += realized
    _add(state.realized, spec.settlement, realized)
    cash_key = (fill.venue, spec.settlement)
    if spot:
        moved = -settlement_value(signed, fill.price, inverse)
    else:
        moved = realized
    fee_key = (fill.venue, fill.fee_currency)
    state.cash[cash_key] = state.cash.get(cash_key, _ZERO) + moved
    state.cash[fee_key] = state.cash.get(fee_key, _ZERO) - fill.fee
    _add(state.fees, fill.fee_currency, fill.fee)
    state.fill_count += 1


@dataclass(frozen=True, slots=True)
class Conversion:
    price: Decimal
    instrument: str
    """"venue:instrument" whose mid gave the price ("" for the report currency itself)."""
    divide: bool
    """True when the instrument quotes the report currency in this currency (value = amount / price)."""

    def apply(self, amount: Decimal) -> Decimal:
        return amount / self.price if self.divide else amount * self.price


def conversion(state: PortfolioState, marks: Marks, currency: str, report: str) -> Conversion | None:
    """How `currency` converts to `report` at recorded prices, or None when nothing recorded prices it."""
    if currency == report:
        return Conversion(_ONE, "", False)
    best: tuple[tuple[bool, int, str, str], Conversion] | None = None
    for key, (mid, time_ns) in marks.items():
        spec = state.specs.get(key)
        if spec is None:
            continue
        if (spec.base, spec.quote) == (currency, report):
            divide = False
        elif (spec.base, spec.quote) == (report, currency):
            divide = True
        else:
            continue
        rank = (not is_spot(spec), -time_ns, key[0], key[1])
        if best is None or rank < best[0]:
            best = (rank, Conversion(mid, f"{key[0]}:{key[1]}", divide))
    return None if best is None else best[1]


@dataclass(frozen=True, slots=True)
class Valuation:
    """Totals in the report currency, and the per-currency detail behind them."""

    equity: Decimal
    cash: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    fees: Decimal
    currencies: tuple[CurrencyValuation, ...]


def valuation(state: PortfolioState, marks: Marks, report: str) -> Valuation:
    """Per currency: cash, realized, open PnL, fees and holdings (cash + spot positions at their mark +
    contract PnL); each converted at `conversion`'s price, the unconvertible ones listed and left out."""
    cash: dict[str, Decimal] = {}
    unrealized: dict[str, Decimal] = {}
    holdings: dict[str, Decimal] = {}
    for (_, currency), amount in state.cash.items():
        _add(cash, currency, amount)
        _add(holdings, currency, amount)
    for position in state.positions.values():
        held, pnl = position_holding(marks, position)
        _add(holdings, position.settlement, held)
        _add(unrealized, position.settlement, pnl)
    books = (holdings, cash, state.realized, unrealized, state.fees)
    totals = [_ZERO] * len(books)
    rows = []
    for currency in sorted(set().union(*books)):
        balance = holdings.get(currency, _ZERO)
        rate = conversion(state, marks, currency, report)
        if rate is None:
            rows.append(CurrencyValuation(currency=currency, balance=balance, price=None, price_instrument="",
                                          value=None))  # fmt: skip
            continue
        for index, book in enumerate(books):
            totals[index] += rate.apply(book.get(currency, _ZERO))
        rows.append(CurrencyValuation(currency=currency, balance=balance, price=rate.price,
                                      price_instrument=rate.instrument, value=rate.apply(balance)))  # fmt: skip
    equity_, cash_, realized_, unrealized_, fees_ = totals
    return Valuation(equity_, cash_, realized_, unrealized_, fees_, tuple(rows))


def unaccounted_names(state: PortfolioState) -> tuple[str, ...]:
    return tuple(sorted(f"{venue}:{instrument}" for venue, instrument in state.unaccounted))


class PortfolioDecider:
    def __init__(self, config: PortfolioConfig | None = None, name: str = "portfolio") -> None:
        self.config = config or PortfolioConfig()
        self.name = name
        if self.config.sample_interval_ns <= 0:
            raise ValueError("sample_interval_ns must be positive")

    @in_decimal_context
    def initial_state(self) -> PortfolioState:
        state = PortfolioState()
        for venue, currency, amount in self.config.initial_cash:
            state.cash[(venue, currency)] = state.cash.get((venue, currency), _ZERO) + amount
        return state

    def _bucket(self, event: EventBase) -> int:
        return event.envelope.event_time_ns // self.config.sample_interval_ns

    def wake(self, state: PortfolioState) -> WakeSpec:
        """Market rows only move marks (read from the view): the portfolio acts on the first row at or after
        the next multiple of the sample interval."""
        if state.last_sample_bucket is None:
            return ALWAYS
        return WakeSpec(timer_at_ns=(state.last_sample_bucket + 1) * self.config.sample_interval_ns)

    @in_decimal_context
    def decide(self, state: PortfolioState, event: EventBase, view: MarketView) -> list[EventBase]:
        if isinstance(event, EquitySampled):
            return []
        bucket = self._bucket(event)
        if state.last_sample_bucket is not None and bucket <= state.last_sample_bucket:
            return []
        value = valuation(state, marks(view, before=event), self.config.quote_currency)
        return [
            EquitySampled(
                envelope=derive_envelope(event.envelope, self.name, 0),
                account=self.config.account,
                quote_currency=self.config.quote_currency,
                equity=value.equity,
                cash=value.cash,
                realized_pnl=value.realized_pnl,
                unrealized_pnl=value.unrealized_pnl,
                fees=value.fees,
                valuations=value.currencies,
                unaccounted_fills=unaccounted_names(state),
            )
        ]

    @in_decimal_context
    def evolve(self, state: PortfolioState, event: EventBase, view: MarketView) -> PortfolioState:
        if isinstance(event, EquitySampled):
            return state
        bucket = self._bucket(event)
        if state.last_sample_bucket is None or bucket > state.last_sample_bucket:
            state.last_sample_bucket = bucket
        if isinstance(event, InstrumentDefined):
            state.specs[(event.venue, event.instrument)] = event
        elif isinstance(event, OrderFillEvent):
            fill_key = (event.venue, event.venue_trade_id)
            if fill_key in state.seen_fills or event.quantity <= _ZERO or event.price <= _ZERO:
                return state
            state.seen_fills.add(fill_key)
            spec = state.specs.get((event.venue, event.instrument))
            if spec is None:
                key = (event.venue, event.instrument)
                state.unaccounted[key] = state.unaccounted.get(key, 0) + 1
                return state
            apply_fill(state, event, spec)
        return state
