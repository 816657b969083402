"""Random order / fill / cancel sequences never take the account past a limit, counting what is in flight;
random venue answers to spread legs and repairs never leave an imbalance that nothing reports.

The test keeps its own books from the events alone (what passed, what filled, what ended) and checks after
every step: per venue, the position if every working buy filled (and no sell), and if every working sell
filled, within the position limit; the gross exposure of those worst cases within its limit; the number of
working orders; the orders passed on a venue in any second; and that the two legs of a pair share one fate.
Quotes are locked at 100 so every valuation (limit price, walked price, mark) is 100 and the model stays
simple: the rules themselves are tested with hand-made numbers elsewhere.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.events import (
    LegExposureUnresolved,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderPartiallyFilled,
    OrderRejected,
    PlaceOrder,
    QuoteTick,
    RiskCheckPassed,
    RiskCheckRejected,
)
from domain.risk import RiskDecider
from domain.values import Liquidity, OrderType, RiskLimits, Side, TimeInForce
from tests.unit.decider_harness import DeciderHarness
from tests.unit.test_risk_walk_past import Desk

pytestmark = pytest.mark.unit

D = Decimal
MS = 1_000_000
VENUES = ("A", "B", "C")
PRICE = D("100")
LIMITS = RiskLimits(
    max_order_notional=D("1000"), max_position_per_asset_venue=D("10"), max_gross_exposure=D("2000"),
    max_open_orders=4, price_collar_bps=D("50"), max_orders_per_venue_per_second=3,
)  # fmt: skip

place = st.tuples(st.just("place"), st.sampled_from(VENUES), st.sampled_from(Side), st.integers(1, 9),
                  st.booleans(), st.integers(0, 400))  # fmt: skip
pair = st.tuples(st.just("pair"), st.sampled_from(VENUES), st.sampled_from(VENUES), st.integers(1, 9),
                 st.integers(0, 400))  # fmt: skip
fill = st.tuples(st.just("fill"), st.integers(0, 50), st.integers(1, 4), st.booleans())
end = st.tuples(st.just("end"), st.integers(0, 50), st.booleans())
steps = st.lists(st.one_of(place, pair, fill, end), min_size=1, max_size=60)


@dataclass
class Book:
    """The test's own view: filled positions and working orders (order, unfilled quantity)."""

    positions: dict[str, Decimal] = field(default_factory=lambda: {v: D(0) for v in VENUES})
    working: dict[uuid.UUID, tuple[PlaceOrder, Decimal]] = field(default_factory=dict)
    passed_at: list[tuple[str, int]] = field(default_factory=list)

    def bounds(self, venue: str) -> tuple[Decimal, Decimal]:
        buys = sum((q for o, q in self.working.values() if o.venue == venue and o.side is Side.BUY), D(0))
        sells = sum((q for o, q in self.working.values() if o.venue == venue and o.side is Side.SELL), D(0))
        return self.positions[venue] + buys, self.positions[venue] - sells


@settings(max_examples=150, deadline=None)
@given(steps)
def test_random_sequences_never_exceed_a_limit_counting_in_flight(sequence: list[tuple[object, ...]]) -> None:
    harness = DeciderHarness(RiskDecider("acc", LIMITS))
    book = Book()
    t = 0
    for venue in VENUES:
        harness.feed(QuoteTick(envelope=harness.env(t), venue=venue, instrument="X", bid_price=PRICE,
                               bid_size=D("1000"), ask_price=PRICE, ask_size=D("1000")))  # fmt: skip
    trades = 0

    def order(
        venue: str, side: Side, quantity: int, market: bool, group: uuid.UUID | None = None
    ) -> PlaceOrder:
        return PlaceOrder(
            envelope=harness.env(t), order_id=uuid.uuid4(), account="acc", strategy_id="s", venue=venue,
            instrument="X", side=side, order_type=OrderType.MARKET if market else OrderType.LIMIT,
            time_in_force=TimeInForce.GTC, quantity=D(quantity), limit_price=None if market else PRICE,
            leg_group_id=group, legs_in_group=2 if group else 1,
        )  # fmt: skip

    for step in sequence:
        kind = step[0]
        if kind in ("place", "pair"):
            t += int(step[-1]) * MS  # type: ignore[call-overload]
            if kind == "place":
                _, venue, side, quantity, market, _ = step
                orders = [order(venue, side, quantity, market)]  # type: ignore[arg-type]
            else:
                _, buy_venue, sell_venue, quantity, _ = step
                group = uuid.uuid4()
                orders = [order(buy_venue, Side.BUY, quantity, False, group),  # type: ignore[arg-type]
                          order(sell_venue, Side.SELL, quantity, False, group)]  # type: ignore[arg-type]  # fmt: skip
            out = [event for o in orders for event in harness.feed(o)]
            verdicts = {e.order_id: e for e in out if isinstance(e, RiskCheckPassed | RiskCheckRejected)}
            assert len(verdicts) == len(orders)
            fates = {isinstance(verdicts[o.order_id], RiskCheckPassed) for o in orders}
            assert len(fates) == 1, "the legs of a pair went different ways"
            for o in orders:
                if isinstance(verdicts[o.order_id], RiskCheckPassed):
                    book.working[o.order_id] = (o, o.quantity)
                    book.passed_at.append((o.venue, t))
        elif book.working:
            ids = list(book.working)
            chosen = ids[int(step[1]) % len(ids)]  # type: ignore[call-overload]
            o, leaves = book.working[chosen]
            if kind == "fill":
                trades += 1
                quantity = min(leaves, D(int(step[2])))  # type: ignore[call-overload]
                final = quantity == leaves
                cls = OrderFilled if final else OrderPartiallyFilled
                harness.feed(cls(
                    envelope=harness.env(t), order_id=o.order_id, venue=o.venue, instrument="X", side=o.side,
                    price=PRICE, quantity=quantity, fee=D(0), fee_currency="USDT", liquidity=Liquidity.TAKER,
                    venue_trade_id=f"T{trades}", cumulative_quantity=o.quantity - leaves + quantity,
                    leaves_quantity=leaves - quantity))  # fmt: skip
                if step[3]:  # a duplicate delivery changes nothing
                    harness.feed(cls(
                        envelope=harness.env(t), order_id=o.order_id, venue=o.venue, instrument="X",
                        side=o.side, price=PRICE, quantity=quantity, fee=D(0), fee_currency="USDT",
                        liquidity=Liquidity.TAKER, venue_trade_id=f"T{trades}",
                        cumulative_quantity=o.quantity - leaves + quantity, leaves_quantity=leaves - quantity))  # fmt: skip
                book.positions[o.venue] += quantity * o.side.sign
                if final:
                    del book.working[chosen]
                else:
                    book.working[chosen] = (o, leaves - quantity)
            else:
                terminal = OrderCanceled if step[2] else OrderExpired
                harness.feed(terminal(envelope=harness.env(t), order_id=o.order_id, venue=o.venue))
                del book.working[chosen]

        gross = D(0)
        for venue in VENUES:
            long_bound, short_bound = book.bounds(venue)
            assert long_bound <= LIMITS.max_position_per_asset_venue, (venue, long_bound)
            assert -short_bound <= LIMITS.max_position_per_asset_venue, (venue, short_bound)
            gross += max(abs(long_bound), abs(short_bound)) * PRICE
        assert gross <= LIMITS.max_gross_exposure
        assert len(book.working) <= LIMITS.max_open_orders
        for venue in VENUES:
            times = [at for v, at in book.passed_at if v == venue]
            for at in times:
                in_window = [x for x in times if at - 1_000 * MS < x <= at]
                assert len(in_window) <= LIMITS.max_orders_per_venue_per_second


# ---------------------------------------------------------------- leg failure: never silent

outcome = st.sampled_from(("fill", "partial", "expire", "reject"))


@settings(max_examples=150, deadline=None)
@given(st.lists(outcome, min_size=2, max_size=12), st.sampled_from(("hedge", "unwind")), st.integers(1, 4))
def test_every_spread_ends_flat_or_reported(outcomes: list[str], policy: str, attempts: int) -> None:
    """Whatever the venues answer to the legs and to each repair, the trade ends with its fills balanced, or
    with one LegExposureUnresolved stating exactly the imbalance, and the strategy no longer tracks it."""
    desk = Desk(on_leg_failure=policy, max_repair_attempts=attempts)
    out, pending = desk.spread()
    events = list(out)
    answers = iter(outcomes)
    net = D(0)
    while pending:
        order = pending.pop(0)
        verdicts = [
            e
            for e in events
            if isinstance(e, RiskCheckPassed | RiskCheckRejected) and e.order_id == order.order_id
        ]
        if verdicts and isinstance(verdicts[-1], RiskCheckRejected):
            continue  # never went out; the strategy saw the rejection already
        answer = next(answers, "fill")
        if answer == "fill":
            new = desk.fill(order, str(order.quantity))
            net += order.quantity * order.side.sign
        elif answer == "partial":
            part = (order.quantity / 2).quantize(D("0.001"))
            desk.feed(_partial_fill(desk, order, part))
            net += part * order.side.sign
            new = desk.feed(OrderCanceled(envelope=desk.env(), order_id=order.order_id, venue=order.venue))
        elif answer == "expire":
            new = desk.expire(order)
        else:
            new = desk.feed(
                OrderRejected(envelope=desk.env(), order_id=order.order_id, venue=order.venue, reason="x")
            )
        events += new
        pending += [e for e in new if isinstance(e, PlaceOrder)]
    alarms = [e for e in events if isinstance(e, LegExposureUnresolved)]
    if net == 0:
        assert alarms == []
    else:
        (alarm,) = alarms
        assert alarm.quantity == abs(net) and alarm.side is (Side.BUY if net > 0 else Side.SELL)
        assert desk.states[0].started is False
    assert desk.states[0].legs_in_flight == 0
    assert len([e for e in events if isinstance(e, PlaceOrder) and e.repair]) <= attempts


def _partial_fill(desk: Desk, order: PlaceOrder, quantity: Decimal) -> OrderPartiallyFilled:
    return OrderPartiallyFilled(
        envelope=desk.env(), order_id=order.order_id, venue=order.venue, instrument=order.instrument, side=order.side,
        price=D("100"), quantity=quantity, fee=D(0), fee_currency="USDT", liquidity=Liquidity.TAKER,
        venue_trade_id=f"P-{order.order_id}", cumulative_quantity=quantity, leaves_quantity=order.quantity - quantity,
    )  # fmt: skip
