"""Backtest vs live, measured: the orders of a live or paper run lined up with those of a backtest over the
same recorded market data, and the PnL difference taken apart.

Matching. Order ids are derived from the events that caused them, so they differ between two runs by
construction and are never compared. An order is identified by what the strategy meant: (strategy, instrument,
venue, side, whether it repairs a failed leg). Two orders with the same identity are a pair when their
placement times are at most `tolerance_ns` apart; pairs are taken nearest first (ties: earlier live order,
then earlier backtest order), each order in at most one pair. The legs of one spread signal are placed at the
same time, so they pair with the legs of the other run's signal. What is left is "only in live" / "only in
backtest".

Money. Every run's PnL is valued at one common mark per (venue, instrument), the backtest's last recorded
mid (the live run's when the backtest has none), so the difference is what the orders did, not where each
session ended. Per order: PnL = value of the filled position at the mark - its cost (`domain.instruments`,
in the instrument's settlement currency; spot, linear and inverse alike) - fees (`domain.portfolio`'s
settlement-currency rule; a fee in another asset, e.g. BNB, is listed, not valued). The difference live -
backtest of a pair splits exactly into
  - quantity: the live quantity at the backtest's prices minus the backtest (filled in one run only, partial
    fills),
  - decision price: the live quantity at the live decision price minus at the backtest's (the market the
    order was placed into; the decision price is the signal's price of the leg, else the limit price),
  - slippage: the rest of the price difference (fill price vs decision price),
  - fees: backtest fees - live fees;
orders in one run only count whole. The parts add up to the total to the last digit (each is a difference
of the same Decimal values, the last one the remainder).
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from statistics import median_low
from typing import Any, TypeVar

from application.ports import EventLog
from application.round_trips import RoundTripBook
from application.run_orders import PlacedOrder, RunOrders, RunUnavailable, read_run
from domain.events import InstrumentDefined
from domain.instruments import is_inverse, settlement_value, units, unrealized_pnl
from domain.portfolio import position_fee
from domain.values import ZERO, canonical_amount, decimal_context

DEFAULT_TOLERANCE_NS = 1_000_000_000
BPS = Decimal(10_000)
PARTS = ("orders_only_in_live", "orders_only_in_backtest", "quantity", "decision_price", "slippage", "fees")
"""The PnL difference's parts, in the order a report lists them."""

MatchKey = tuple[str, str, str, str, bool]
_N = TypeVar("_N", int, Decimal)


class NothingToCompare(RunUnavailable):
    """Two runs whose orders could not be lined up at all."""


@dataclass(frozen=True)
class Execution:
    """One order of one run, valued: its filled position in settlement currency and what it cost."""

    order: PlacedOrder
    spec: InstrumentDefined
    mark: Decimal
    filled: Decimal
    held: Decimal
    """Signed units the fills added (base units; quote units for inverse)."""
    cost: Decimal
    """Settlement-currency value of those units at the fill prices (signed like `held`)."""
    fees: Decimal
    unvalued_fees: dict[str, Decimal]

    @property
    def gross(self) -> Decimal:
        return unrealized_pnl(self.held, self.cost, self.mark, is_inverse(self.spec))

    @property
    def pnl(self) -> Decimal:
        return self.gross - self.fees

    @property
    def avg_price(self) -> Decimal | None:
        return (
            None
            if self.filled == ZERO
            else sum((f.price * f.quantity for f in self.order.fills), ZERO) / self.filled
        )

    @property
    def slippage(self) -> Decimal | None:
        """Fill price vs decision price, signed so that positive is worse for the order (paid more, got less)."""
        avg, reference = self.avg_price, self.order.reference_price
        return None if avg is None or reference is None else (avg - reference) * self.order.command.side.sign

    def priced(self, held: Decimal, price: Decimal) -> Decimal:
        """PnL at the mark of `held` units bought (sold) at `price`."""
        inverse = is_inverse(self.spec)
        return unrealized_pnl(held, settlement_value(held, price, inverse), self.mark, inverse)

    def as_dict(self) -> dict[str, Any]:
        command = self.order.command
        slippage, reference = self.slippage, self.order.reference_price
        return {
            "order_id": str(command.order_id),
            "placed_ns": self.order.placed_ns,
            "status": _status(self.order),
            "quantity": canonical_amount(command.quantity),
            "filled_quantity": canonical_amount(self.filled),
            "fills": len(self.order.fills),
            "avg_price": _amount(self.avg_price),
            "decision_price": _amount(reference),
            "slippage": _amount(slippage),
            "slippage_bps": _amount(
                None if slippage is None or not reference else slippage / reference * BPS, 4
            ),
            "fees": canonical_amount(self.fees),
            "unvalued_fees": {c: canonical_amount(v) for c, v in sorted(self.unvalued_fees.items())},
            "currency": self.spec.settlement,
            "pnl_at_mark": canonical_amount(self.pnl),
            "response_latency_ns": _since(self.order.first_response_ns, self.order.placed_ns),
            "venue_latency_ns": _since(self.order.first_venue_ns, self.order.placed_ns),
        }


@dataclass
class OrderComparison:
    key: MatchKey
    live: Execution | None
    backtest: Execution | None
    parts: dict[str, Decimal] = field(default_factory=dict)

    @property
    def currency(self) -> str:
        either = self.live or self.backtest
        assert either is not None
        return either.spec.settlement

    @property
    def placed_ns(self) -> int:
        return min(e.order.placed_ns for e in (self.live, self.backtest) if e is not None)

    def as_dict(self) -> dict[str, Any]:
        live, backtest = self.live, self.backtest
        strategy, instrument, venue, side, repair = self.key
        both = live is not None and backtest is not None
        filled = [
            name for name, e in (("live", live), ("backtest", backtest)) if e is not None and e.filled > 0
        ]
        out: dict[str, Any] = {
            "strategy_id": strategy, "instrument": instrument, "venue": venue, "side": side, "repair": repair,
            "placed_ns": self.placed_ns,
            "filled_in": " and ".join(filled) or "neither",
            "live": live.as_dict() if live else None,
            "backtest": backtest.as_dict() if backtest else None,
        }  # fmt: skip
        if live is not None and backtest is not None:
            out.update(
                placed_apart_ns=live.order.placed_ns - backtest.order.placed_ns,
                filled_quantity_difference=canonical_amount(live.filled - backtest.filled),
                price_difference=_amount(_difference(live.avg_price, backtest.avg_price)),
                slippage_difference=_amount(_difference(live.slippage, backtest.slippage)),
                fee_difference=canonical_amount(live.fees - backtest.fees),
                response_latency_difference_ns=_difference(
                    _since(live.order.first_response_ns, live.order.placed_ns),
                    _since(backtest.order.first_response_ns, backtest.order.placed_ns),
                ),
            )
        out["pnl_difference"] = {"currency": self.currency, "total": canonical_amount(sum(self.parts.values(), ZERO)),
                                 **{k: canonical_amount(v) for k, v in self.parts.items() if v or both}}  # fmt: skip
        return out


@dataclass
class Comparison:
    live: RunOrders
    backtest: RunOrders
    tolerance_ns: int
    orders: list[OrderComparison]
    marks: dict[tuple[str, str], tuple[Decimal, str]]
    """(venue, instrument) -> (mark, session it comes from)."""

    @property
    def matched(self) -> int:
        return sum(1 for o in self.orders if o.live is not None and o.backtest is not None)

    def pnl_difference(self) -> dict[str, dict[str, Decimal]]:
        """Per settlement currency: the parts of live - backtest PnL and their total."""
        out: dict[str, dict[str, Decimal]] = {}
        for order in self.orders:
            parts = out.setdefault(order.currency, dict.fromkeys(PARTS, ZERO))
            for name, value in order.parts.items():
                parts[name] += value
        for parts in out.values():
            parts["total"] = sum(parts.values(), ZERO)
        return dict(sorted(out.items()))

    def run_summary(self, which: str) -> dict[str, Any]:
        run = self.live if which == "live" else self.backtest
        executions = [e for o in self.orders for e in ([o.live] if which == "live" else [o.backtest]) if e]
        latencies = [_since(e.order.first_response_ns, e.order.placed_ns) for e in executions]
        seen = [x for x in latencies if x is not None]
        pnl: dict[str, Decimal] = defaultdict(lambda: ZERO)
        fees: dict[str, Decimal] = defaultdict(lambda: ZERO)
        for e in executions:
            pnl[e.spec.settlement] += e.pnl
            fees[e.spec.settlement] += e.fees
        trips = _round_trips(executions)
        return {
            "session": run.session, "mode": run.mode, "market_data_of": run.input_session or run.session,
            "orders": len(executions),
            "filled": sum(1 for e in executions if e.filled == e.order.command.quantity),
            "partially_filled": sum(1 for e in executions if 0 < e.filled < e.order.command.quantity),
            "unfilled": sum(1 for e in executions if e.filled == 0 and e.order.risk_rejection is None),
            "refused_by_risk": sum(1 for e in executions if e.order.risk_rejection is not None),
            "assumed_latency_ns": {"order": run.assumed.order_ns, "response": run.assumed.response_ns},
            "seen_response_latency_ns": {"median": median_low(seen) if seen else None, "max": max(seen, default=None),
                                         "orders_answered": len(seen)},
            "pnl_at_mark": {c: canonical_amount(v) for c, v in sorted(pnl.items())},
            "fees": {c: canonical_amount(v) for c, v in sorted(fees.items())},
            "round_trips": len(trips.trips),
            "round_trip_pnl": canonical_amount(sum((t.pnl for t in trips.trips), ZERO)),
            "refused_fills": run.orphan_fills,
        }  # fmt: skip

    def notes(self) -> list[str]:
        notes = []
        live_data = self.live.input_session or self.live.session
        backtest_data = self.backtest.input_session or self.backtest.session
        if live_data != backtest_data:
            notes.append(f"The backtest ran over session {backtest_data!r}, the live run over {live_data!r}: their "
                         "times and data may differ; a backtest of the live run's own market data lines up "
                         f"(cse backtest --session {live_data} ...).")  # fmt: skip
        for name, run in (("live", self.live), ("backtest", self.backtest)):
            if run.orphan_fills:
                notes.append(f"{name} session {run.session!r}: {run.orphan_fills} fill(s) refused by the order "
                             "lifecycle (no order placed in the session, overfill, ...) are not counted")  # fmt: skip
        unvalued = sorted(
            {c for o in self.orders for e in (o.live, o.backtest) if e for c in e.unvalued_fees}
        )
        if unvalued:
            notes.append(f"fees charged in {', '.join(unvalued)} are listed per order, not valued in the PnL")
        return notes

    def as_dict(self) -> dict[str, Any]:
        with decimal_context():
            return self._as_dict()

    def _as_dict(self) -> dict[str, Any]:
        return {
            "live": self.run_summary("live"),
            "backtest": self.run_summary("backtest"),
            "matching": {"rule": "same strategy, instrument, venue, side and repair flag; placement times at most "
                                 "tolerance apart; nearest first; never by order id",
                         "tolerance_ns": self.tolerance_ns, "pairs": self.matched,
                         "only_in_live": sum(1 for o in self.orders if o.backtest is None),
                         "only_in_backtest": sum(1 for o in self.orders if o.live is None)},
            "marks": {f"{v}:{i}": {"mid": canonical_amount(m), "from_session": s}
                      for (v, i), (m, s) in sorted(self.marks.items())},
            "pnl_difference": {c: {k: canonical_amount(v) for k, v in parts.items()}
                               for c, parts in self.pnl_difference().items()},
            "notes": self.notes(),
            "orders": [o.as_dict() for o in self.orders],
        }  # fmt: skip


def compare_sessions(log: EventLog, live_session: str, backtest_session: str,
                     tolerance_ns: int = DEFAULT_TOLERANCE_NS) -> Comparison:  # fmt: skip
    """Raises RunUnavailable naming the session that is missing or has no orders, NothingToCompare when no
    order of one run pairs with an order of the other."""
    if tolerance_ns < 0:
        raise ValueError(f"tolerance must not be negative, got {tolerance_ns} ns")
    live, backtest = read_run(log, live_session), read_run(log, backtest_session)
    marks = {key: (mid, live.session) for key, mid in live.marks.items()}
    marks.update({key: (mid, backtest.session) for key, mid in backtest.marks.items()})
    with decimal_context():
        pairs = match_orders(live.orders, backtest.orders, tolerance_ns)
        orders = [_compare(key, _execution(live, a, marks), _execution(backtest, b, marks))
                  for key, a, b in pairs]  # fmt: skip
    comparison = Comparison(live, backtest, tolerance_ns, orders, marks)
    if comparison.matched == 0:
        raise NothingToCompare(
            f"no order of {live_session!r} ({len(live.orders)} orders) pairs with one of {backtest_session!r} "
            f"({len(backtest.orders)} orders) within {tolerance_ns / 1e6:g} ms with the same strategy, instrument, venue "
            f"and side: nothing to compare. {' '.join(comparison.notes()[:1]) or 'A wider --tolerance-ms?'}"
        )
    return comparison


def match_key(order: PlacedOrder) -> MatchKey:
    c = order.command
    return (c.strategy_id, c.instrument, c.venue, c.side.value, c.repair)


def match_orders(live: Iterable[PlacedOrder], backtest: Iterable[PlacedOrder], tolerance_ns: int
                 ) -> list[tuple[MatchKey, PlacedOrder | None, PlacedOrder | None]]:  # fmt: skip
    """Pairs (and orders of one run alone), in placement order; see the module's matching rule."""
    groups: dict[MatchKey, tuple[list[PlacedOrder], list[PlacedOrder]]] = {}
    for index, orders in enumerate((live, backtest)):
        for order in orders:
            groups.setdefault(match_key(order), ([], []))[index].append(order)
    out: list[tuple[MatchKey, PlacedOrder | None, PlacedOrder | None]] = []
    for key in sorted(groups, key=lambda k: (k[0], k[1], k[2], k[3], k[4])):
        a, b = (sorted(side, key=lambda o: o.placed_ns) for side in groups[key])
        times = [o.placed_ns for o in b]
        candidates = []
        for i, order in enumerate(a):
            lo = bisect.bisect_left(times, order.placed_ns - tolerance_ns)
            hi = bisect.bisect_right(times, order.placed_ns + tolerance_ns)
            candidates += [
                (abs(order.placed_ns - times[j]), order.placed_ns, times[j], i, j) for j in range(lo, hi)
            ]
        used_a: dict[int, int] = {}
        used_b: set[int] = set()
        for _, _, _, i, j in sorted(candidates):
            if i not in used_a and j not in used_b:
                used_a[i] = j
                used_b.add(j)
        out += [(key, order, b[used_a[i]] if i in used_a else None) for i, order in enumerate(a)]
        out += [(key, None, order) for j, order in enumerate(b) if j not in used_b]
    out.sort(key=lambda p: (min(o.placed_ns for o in p[1:] if o is not None), p[0], p[1] is None))
    return out


def _execution(run: RunOrders, order: PlacedOrder | None,
               marks: dict[tuple[str, str], tuple[Decimal, str]]) -> Execution | None:  # fmt: skip
    if order is None:
        return None
    c = order.command
    spec = run.specs.get((c.venue, c.instrument))
    if spec is None:
        raise RunUnavailable(f"session {run.session!r} has no InstrumentDefined of {c.instrument} on {c.venue}: "
                             "its fills cannot be valued")  # fmt: skip
    if (c.venue, c.instrument) not in marks:
        raise RunUnavailable(f"no quote of {c.instrument} on {c.venue} in the market data of either session: "
                             "nothing to mark the positions at")  # fmt: skip
    inverse = is_inverse(spec)
    held = cost = fees = ZERO
    unvalued: dict[str, Decimal] = {}
    for fill in order.fills:
        signed = units(spec, fill.quantity) * fill.side.sign
        held += signed
        cost += settlement_value(signed, fill.price, inverse)
        fee = position_fee(spec, fill)
        if fee is None:
            unvalued[fill.fee_currency] = unvalued.get(fill.fee_currency, ZERO) + fill.fee
        else:
            fees += fee
    filled = sum((f.quantity for f in order.fills), ZERO)
    return Execution(order, spec, marks[(c.venue, c.instrument)][0], filled, held, cost, fees, unvalued)


def _round_trips(executions: list[Execution]) -> RoundTripBook:
    """The run's round trips as the backtest report counts them (`application/round_trips.py`), fills in
    engine order, fees in settlement currency (one not convertible counts 0 here, and is listed per order)."""
    book = RoundTripBook()
    fills = sorted(((f, e.spec) for e in executions for f in e.order.fills),
                   key=lambda pair: (pair[0].envelope.event_time_ns, pair[0].envelope.sequence))  # fmt: skip
    for fill, spec in fills:
        book.add(fill, position_fee(spec, fill) or ZERO, spec.contract_size, is_inverse(spec))
    return book


def _compare(key: MatchKey, live: Execution | None, backtest: Execution | None) -> OrderComparison:
    comparison = OrderComparison(key, live, backtest)
    if backtest is None:
        assert live is not None
        comparison.parts = {"orders_only_in_live": live.pnl}
        return comparison
    if live is None:
        comparison.parts = {"orders_only_in_backtest": -backtest.pnl}
        return comparison
    gross = live.gross - backtest.gross
    quantity = gross
    decision = ZERO
    if live.held != ZERO and backtest.held != ZERO:
        # the live quantity at the backtest's prices: what filling more or less alone made
        at_backtest_prices = unrealized_pnl(live.held, backtest.cost * live.held / backtest.held, live.mark,
                                            is_inverse(live.spec))  # fmt: skip
        quantity = at_backtest_prices - backtest.gross
        references = (live.order.reference_price, backtest.order.reference_price)
        if references[0] is not None and references[1] is not None:
            decision = live.priced(live.held, references[0]) - live.priced(live.held, references[1])
    price = gross - quantity
    comparison.parts = {"quantity": quantity, "decision_price": decision, "slippage": price - decision,
                        "fees": backtest.fees - live.fees}  # fmt: skip
    return comparison


def _status(order: PlacedOrder) -> str:
    if order.risk_rejection is not None:
        return f"refused by risk ({order.risk_rejection})"
    return order.state.status.value if order.state is not None else "unknown"


def _amount(value: Decimal | None, places: int | None = None) -> str | None:
    if value is None:
        return None
    return canonical_amount(value if places is None else value.quantize(Decimal(1).scaleb(-places)))


def _since(time_ns: int | None, start_ns: int) -> int | None:
    return None if time_ns is None else time_ns - start_ns


def _difference(a: _N | None, b: _N | None) -> _N | None:
    return None if a is None or b is None else a - b
