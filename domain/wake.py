"""Wake conditions: when a decider (or a simulated venue) could act on a market row, declared as data.

Each decider declares `wake(state) -> WakeSpec`, called after every call into it (its non-market state only
changes then, so the spec holds until the next call). A run may then skip a market row for every decider whose
spec is false on it: the compiled core evaluates specs in Rust and returns to Python only at rows where one is
true. `evaluate` below is the reference evaluator; the compiled one must give the same answer on every row (it
may be looser, i.e. true more often, never stricter).

Soundness rule (the proof obligation of every `wake`): if `evaluate(spec, view, row)` is false, then
`decide(state, row, view_with_row)` returns [] and `evolve(state, row)` changes nothing.

Rows. A *market row* is a `QuoteTick`, `TradeTick`, `BookDelta` or `BookSnapshot` (`RowKind`). Every other input
(instrument definitions, recorded resyncs, operator commands, session markers) and every derived or venue event
always reaches every decider: specs only ever gate market rows.

Evaluation of `spec` on market row r with event time t (ns), given the market view *before* r is applied:

    wake = (spec.timer_at_ns is not None and t >= spec.timer_at_ns)
           or ((spec.not_before_ns is None or t >= spec.not_before_ns)
               and any(predicate(r) for predicate in spec.predicates))

Predicates (a closed set; no other kind exists):
  * `Never`: false.
  * `Always(kinds, keys)`: r's kind is in `kinds` (empty: any market kind) and r's (venue, instrument) is in
    `keys` (None: any key).
  * `CrossEdge(instrument, hurdles, max_age_ns, min_size)`: r is a `QuoteTick` of `instrument` (any venue), and
    for some (buy venue B, sell venue S, hurdle h) in `hurdles`, with qB, qS the last quotes of B and S counting
    r itself (the view's `quote`, with r in place of its own key's):
        qB and qS exist, and for both: bid > 0, ask > 0, bid size >= 0, ask size >= 0, t - quote time <=
        max_age_ns; qB.ask_size >= min_size; qS.bid_size >= min_size; and
        (qS.bid - qB.ask) * 10_000 * h.den > h.num * qB.ask        (exact: no division, no rounding)
    i.e. the net edge of buying on B and selling on S is strictly above the hurdle h (bps, fees included).
  * `BookNotClean(keys)`: r is a `BookDelta`/`BookSnapshot` of a key in `keys` (None: any key) and applying it
    to the view's book of its key (a new empty book when there is none) puts the book out of sync
    (`domain.book.SyncedBook.check(r).status is OUT_OF_SYNC`).
  * `LevelTouched(key, at_or_below, at_or_above)`: r is of `key` and is a `QuoteTick`, `TradeTick` or
    `BookSnapshot`, or a `BookDelta` with some level (either side) whose price p has p <= at_or_below or
    p >= at_or_above (a None bound matches nothing).

Numbers are plain integers: times in ns, amounts as exact rationals `Ratio(num, den)` (den > 0) built from the
decimal amounts without rounding (`ratio`); comparisons cross-multiply (the Rust side in i128). Prices and
sizes of rows are compared as the exact values of their decimals (mantissa x 10^exponent).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import IntEnum
from fractions import Fraction
from typing import NamedTuple

from domain.book import BookKey, SyncedBook, SyncStatus
from domain.events import BookDelta, BookSnapshot, EventBase, QuoteTick, TradeTick
from domain.market_view import MarketView


class RowKind(IntEnum):
    """The market row kinds a spec can gate (the integer is the compiled core's kind code)."""

    QUOTE = 1
    TRADE = 2
    DELTA = 3
    SNAPSHOT = 4


_KIND_OF: dict[type, RowKind] = {
    QuoteTick: RowKind.QUOTE,
    TradeTick: RowKind.TRADE,
    BookDelta: RowKind.DELTA,
    BookSnapshot: RowKind.SNAPSHOT,
}
MARKET_ROWS = tuple(_KIND_OF)
_BPS = 10_000


def row_kind(event: EventBase) -> RowKind | None:
    """The event's market row kind; None for every other event (which always reaches every decider)."""
    return _KIND_OF.get(type(event))


class Ratio(NamedTuple):
    """An exact rational num/den, den > 0."""

    num: int
    den: int


def ratio(amount: Decimal | int) -> Ratio:
    """The exact value of a decimal amount (no rounding)."""
    value = Fraction(amount)
    return Ratio(value.numerator, value.denominator)


@dataclass(frozen=True, slots=True)
class Never:
    pass


@dataclass(frozen=True, slots=True)
class Always:
    kinds: frozenset[RowKind] = frozenset()
    """Empty: every market kind."""
    keys: frozenset[BookKey] | None = None
    """None: every (venue, instrument)."""


@dataclass(frozen=True, slots=True)
class Hurdle:
    buy_venue: str
    sell_venue: str
    bps: Ratio
    """The net edge, in bps of the buy price, that must be strictly exceeded (fees included)."""


@dataclass(frozen=True, slots=True)
class CrossEdge:
    instrument: str
    hurdles: tuple[Hurdle, ...]
    """Ordered (buy venue, sell venue) pairs with their hurdle; one entry per pair."""
    max_age_ns: int
    min_size: Ratio


@dataclass(frozen=True, slots=True)
class BookNotClean:
    keys: frozenset[BookKey] | None = None
    """None: every (venue, instrument)."""


@dataclass(frozen=True, slots=True)
class LevelTouched:
    key: BookKey
    at_or_below: Ratio | None = None
    at_or_above: Ratio | None = None


Predicate = Never | Always | CrossEdge | BookNotClean | LevelTouched


@dataclass(frozen=True, slots=True)
class WakeSpec:
    predicates: tuple[Predicate, ...] = ()
    not_before_ns: int | None = None
    """Predicates count only at rows with time >= this."""
    timer_at_ns: int | None = None
    """Wake at the first row with time >= this, whatever the predicates say."""


NEVER = WakeSpec()
ALWAYS = WakeSpec((Always(),))


def evaluate(spec: WakeSpec, view: MarketView, row: EventBase) -> bool:
    """Whether `spec` wakes its owner on `row` (a market row), the view as it was before the row."""
    time_ns = row.envelope.event_time_ns
    if spec.timer_at_ns is not None and time_ns >= spec.timer_at_ns:
        return True
    if spec.not_before_ns is not None and time_ns < spec.not_before_ns:
        return False
    return any(_holds(predicate, view, row) for predicate in spec.predicates)


def _holds(predicate: Predicate, view: MarketView, row: EventBase) -> bool:
    if isinstance(predicate, Always):
        kind = row_kind(row)
        if kind is None or (predicate.kinds and kind not in predicate.kinds):
            return False
        return predicate.keys is None or _key(row) in predicate.keys
    if isinstance(predicate, CrossEdge):
        return isinstance(row, QuoteTick) and _cross_edge(predicate, view, row)
    if isinstance(predicate, BookNotClean):
        if not isinstance(row, BookDelta | BookSnapshot):
            return False
        key = (row.venue, row.instrument)
        if predicate.keys is not None and key not in predicate.keys:
            return False
        book = view.book(*key) or SyncedBook(*key)
        return book.check(row).status is SyncStatus.OUT_OF_SYNC
    if isinstance(predicate, LevelTouched):
        return _level_touched(predicate, row)
    return False  # Never


def _key(row: EventBase) -> BookKey:
    return (row.venue, row.instrument)  # type: ignore[attr-defined]


def _cross_edge(predicate: CrossEdge, view: MarketView, row: QuoteTick) -> bool:
    if row.instrument != predicate.instrument:
        return False
    now = row.envelope.event_time_ns
    min_size = Fraction(*predicate.min_size)

    def usable(venue: str) -> QuoteTick | None:
        quote = row if venue == row.venue else view.quote(venue, predicate.instrument)
        if quote is None or quote.bid_price <= 0 or quote.ask_price <= 0:
            return None
        if quote.bid_size < 0 or quote.ask_size < 0:
            return None
        return quote if now - quote.envelope.event_time_ns <= predicate.max_age_ns else None

    for hurdle in predicate.hurdles:
        buy, sell = usable(hurdle.buy_venue), usable(hurdle.sell_venue)
        if buy is None or sell is None:
            continue
        if Fraction(buy.ask_size) < min_size or Fraction(sell.bid_size) < min_size:
            continue
        ask, bid = Fraction(buy.ask_price), Fraction(sell.bid_price)
        if (bid - ask) * _BPS * hurdle.bps.den > hurdle.bps.num * ask:
            return True
    return False


def _level_touched(predicate: LevelTouched, row: EventBase) -> bool:
    if not isinstance(row, QuoteTick | TradeTick | BookSnapshot | BookDelta) or _key(row) != predicate.key:
        return False
    if not isinstance(row, BookDelta):
        return True
    low = None if predicate.at_or_below is None else Fraction(*predicate.at_or_below)
    high = None if predicate.at_or_above is None else Fraction(*predicate.at_or_above)
    for price, _ in (*row.bids, *row.asks):
        value = Fraction(price)
        if (low is not None and value <= low) or (high is not None and value >= high):
            return True
    return False
