"""Pre-trade risk, one rule at a time, with the numbers in the rejection checked by hand.

Venue A quotes 99.90 / 100.10, so its mid is 100.00.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest

from domain.events import (
    DrawdownBreached,
    DrawdownHaltReleased,
    EngageKillSwitch,
    Envelope,
    EquitySampled,
    EventBase,
    KillSwitchEngaged,
    KillSwitchReleased,
    OrderCanceled,
    OrderFilled,
    PlaceOrder,
    QuoteTick,
    ReleaseDrawdownHalt,
    ReleaseKillSwitch,
    RiskCheckPassed,
    RiskCheckRejected,
    UpdateRiskLimits,
)
from domain.risk import RiskDecider, RiskState, walk
from domain.values import Liquidity, OrderType, RiskLimits, Side, TimeInForce
from tests.unit.decider_harness import DeciderHarness

pytestmark = pytest.mark.unit

D = Decimal
SECOND = 1_000_000_000
INSTRUMENT = "BTC-USDT"


def limits(**overrides: Any) -> RiskLimits:
    base: dict[str, Any] = {
        "max_order_notional": D("1000000"),
        "max_position_per_asset_venue": D("100"),
        "max_gross_exposure": D("100000000"),
        "max_open_orders": 100,
        "price_collar_bps": D("50"),
        "max_orders_per_venue_per_second": 100,
        "max_drawdown_fraction": D("0.1"),
        "drawdown_action": "halt",
    }
    base.update(overrides)
    return RiskLimits(**base)


class Harness(DeciderHarness):
    state: RiskState

    def __init__(self, risk_limits: RiskLimits | None = None, account: str = "acc-1") -> None:
        super().__init__(RiskDecider(account, risk_limits or limits()))
        self.trades = 0

    def quote(self, venue: str = "A", bid: str = "99.90", ask: str = "100.10", t: int = 0) -> None:
        self.feed(
            QuoteTick(
                envelope=self.env(t),
                venue=venue,
                instrument=INSTRUMENT,
                bid_price=D(bid),
                bid_size=D("1"),
                ask_price=D(ask),
                ask_size=D("1"),
            )
        )

    def order(
        self,
        side: Side,
        quantity: str,
        price: str | None = "100.00",
        venue: str = "A",
        t: int = 0,
        reduce_only: bool = False,
        account: str = "acc-1",
    ) -> tuple[PlaceOrder, EventBase | None]:
        self.seq += 1
        order = PlaceOrder(
            envelope=self.env(t),
            order_id=uuid.uuid5(uuid.NAMESPACE_OID, f"order-{self.seq}"),
            account=account,
            strategy_id="s",
            venue=venue,
            instrument=INSTRUMENT,
            side=side,
            order_type=OrderType.MARKET if price is None else OrderType.LIMIT,
            time_in_force=TimeInForce.IOC,
            quantity=D(quantity),
            limit_price=None if price is None else D(price),
            reduce_only=reduce_only,
        )
        out = self.feed(order)
        return order, (out[0] if out else None)

    def position(self, side: Side, quantity: str, venue: str = "A", price: str = "100.00") -> None:
        """Open a position: an order that passes and fills at once."""
        order, verdict = self.order(side, quantity, price, venue=venue)
        assert isinstance(verdict, RiskCheckPassed), verdict
        self.trades += 1
        self.feed(fill(self.env(), order, f"t{self.trades}", quantity))

    def equity(self, value: str, t: int = 0) -> list[EventBase]:
        return self.feed(
            EquitySampled(
                envelope=self.env(t),
                account="acc-1",
                quote_currency="USDT",
                equity=D(value),
                cash=D(value),
                realized_pnl=D("0"),
                unrealized_pnl=D("0"),
                fees=D("0"),
            )
        )


def fill(envelope: Envelope, order: PlaceOrder, trade_id: str, quantity: str) -> OrderFilled:
    return OrderFilled(
        envelope=envelope,
        order_id=order.order_id,
        venue=order.venue,
        instrument=order.instrument,
        side=order.side,
        price=order.limit_price or D("100"),
        quantity=D(quantity),
        fee=D("0"),
        fee_currency="USDT",
        liquidity=Liquidity.TAKER,
        venue_trade_id=trade_id,
        cumulative_quantity=D(quantity),
        leaves_quantity=D("0"),
    )


def rejected(verdict: EventBase | None, rule: str, limit: str, actual: str) -> None:
    assert isinstance(verdict, RiskCheckRejected), verdict
    assert (verdict.rule, verdict.limit, verdict.actual) == (rule, D(limit), D(actual)), verdict


def passed(verdict: EventBase | None) -> None:
    assert isinstance(verdict, RiskCheckPassed), verdict


def test_a_plain_order_passes() -> None:
    h = Harness()
    h.quote()
    order, verdict = h.order(Side.BUY, "1")
    assert isinstance(verdict, RiskCheckPassed) and verdict.order_id == order.order_id
    assert verdict.envelope.causation_id == order.envelope.event_id


def test_other_accounts_are_not_ours() -> None:
    h = Harness()
    assert h.order(Side.BUY, "1", account="acc-2")[1] is None


def test_kill_switch() -> None:
    h = Harness()
    h.quote()
    out = h.feed(EngageKillSwitch(envelope=h.env(), reason="manual", operator="ops"))
    assert [type(e) for e in out] == [KillSwitchEngaged]
    assert h.feed(EngageKillSwitch(envelope=h.env(), reason="again", operator="ops")) == []  # no change
    rejected(h.order(Side.BUY, "1")[1], "kill_switch", "0", "1")
    out = h.feed(ReleaseKillSwitch(envelope=h.env(), reason="ok", operator="ops"))
    assert [type(e) for e in out] == [KillSwitchReleased]
    passed(h.order(Side.BUY, "1")[1])


def test_max_order_notional_limit_and_market_orders_at_the_walked_price() -> None:
    h = Harness(limits(max_order_notional=D("150")))
    rejected(h.order(Side.BUY, "1", price=None)[1], "no_reference_price", "0", "0")  # market, no quote yet
    h.quote()  # 99.90 x 1 / 100.10 x 1, collar 50 bps around the mid 100.00: 99.50 .. 100.50
    rejected(
        h.order(Side.BUY, "1.5", price="100.20")[1], "max_order_notional", "150", "150.30"
    )  # 1.5 x 100.20
    # A market buy of 2 takes the 1 offered at 100.10, the other 1 beyond the quoted size at the collar's
    # worst price 100.50: 200.60 (the mid would have said 200.00).
    rejected(h.order(Side.BUY, "2", price=None)[1], "max_order_notional", "150", "200.60")
    rejected(
        h.order(Side.BUY, "1.5", price=None)[1], "max_order_notional", "150", "150.35"
    )  # 100.10 + 0.5 x 100.50
    passed(h.order(Side.BUY, "1.49", price=None)[1])  # 100.10 + 0.49 x 100.50 = 149.345
    rejected(
        h.order(Side.SELL, "1.6", price=None)[1], "max_order_notional", "150", "159.60"
    )  # 99.90 + 0.6 x 99.50


def test_max_position_after_the_order() -> None:
    h = Harness(limits(max_position_per_asset_venue=D("2")))
    h.quote()
    h.position(Side.BUY, "1.5")
    rejected(h.order(Side.BUY, "1")[1], "max_position", "2", "2.5")  # 1.5 + 1
    passed(h.order(Side.BUY, "0.5")[1])  # 1.5 + 0.5 = 2: at the limit
    passed(h.order(Side.SELL, "3.5")[1])  # 1.5 - 3.5 = -2
    h.quote("B")
    passed(h.order(Side.BUY, "2", venue="B")[1])  # another venue has its own limit


def test_reducing_order_passes_even_above_the_position_limit() -> None:
    h = Harness(limits(max_position_per_asset_venue=D("5")))
    h.quote()
    h.position(Side.BUY, "4")
    h.position(Side.BUY, "1")
    h.feed(
        UpdateRiskLimits(envelope=h.env(), limits=limits(max_position_per_asset_venue=D("2")), operator="ops")
    )
    # Position 5 > new limit 2: a sell of 1 leaves 4 (still above) but reduces, so it passes.
    passed(h.order(Side.SELL, "1", reduce_only=True)[1])
    rejected(h.order(Side.BUY, "0.1")[1], "max_position", "2", "5.1")


def test_max_gross_exposure_across_venues() -> None:
    h = Harness(limits(max_gross_exposure=D("250")))
    for venue in ("A", "B", "C"):
        h.quote(venue)
    h.position(Side.BUY, "1", venue="A")  # 1 x 100
    h.position(Side.SELL, "1", venue="B")  # |-1| x 100
    rejected(h.order(Side.BUY, "1", venue="C")[1], "max_gross_exposure", "250", "300.00")  # 100 + 100 + 100
    passed(h.order(Side.BUY, "0.5", venue="C")[1])  # 250: at the limit (the working order counts from now)
    rejected(h.order(Side.BUY, "0.01", venue="C")[1], "max_gross_exposure", "250", "251.00")
    # Closing B does not raise the worst case (B stays -1 until the buy fills): it passes.
    passed(h.order(Side.BUY, "1", venue="B")[1])


def test_max_open_orders_counts_passed_until_terminal() -> None:
    h = Harness(limits(max_open_orders=2))
    h.quote()
    first, _ = h.order(Side.BUY, "1")
    h.order(Side.BUY, "1")
    rejected(h.order(Side.BUY, "1")[1], "max_open_orders", "2", "3")
    h.feed(OrderCanceled(envelope=h.env(), order_id=first.order_id, venue="A"))
    passed(h.order(Side.BUY, "1")[1])


def test_price_collar_against_the_mid() -> None:
    h = Harness()
    rejected(h.order(Side.BUY, "1", price="100.00")[1], "no_reference_price", "0", "0")  # no mid yet
    h.quote()  # mid 100.00
    rejected(h.order(Side.BUY, "1", price="100.60")[1], "price_collar", "50", "60")  # 0.60 / 100 = 60 bps
    rejected(h.order(Side.SELL, "1", price="99.30")[1], "price_collar", "50", "70")
    passed(h.order(Side.BUY, "1", price="100.50")[1])  # exactly 50 bps passes


def test_order_rate_per_venue_over_one_second_of_event_time() -> None:
    h = Harness(limits(max_orders_per_venue_per_second=2))
    h.quote()
    h.quote("B")
    passed(h.order(Side.BUY, "0.1", t=0)[1])
    passed(h.order(Side.BUY, "0.1", t=SECOND // 2)[1])
    rejected(h.order(Side.BUY, "0.1", t=SECOND * 9 // 10)[1], "order_rate", "2", "3")
    passed(h.order(Side.BUY, "0.1", venue="B", t=SECOND * 9 // 10)[1])  # venues count separately
    passed(h.order(Side.BUY, "0.1", t=SECOND)[1])  # the t=0 order has left the window (t > now - 1 s)


def test_rule_order_reports_the_first_failing_rule() -> None:
    h = Harness(limits(max_order_notional=D("50")))
    h.quote()
    # Breaks both the notional (100.60) and the collar (60 bps): notional is checked first.
    rejected(h.order(Side.BUY, "1", price="100.60")[1], "max_order_notional", "50", "100.60")


def test_fills_are_deduplicated_by_venue_trade_id() -> None:
    h = Harness()
    h.quote()
    order, _ = h.order(Side.BUY, "1")
    h.feed(fill(h.env(), order, "T1", "1"))
    h.feed(fill(h.env(), order, "T1", "1"))
    assert h.state.positions[("A", INSTRUMENT)] == D("1")
    assert h.state.working == {}


def test_own_reduce_only_flag() -> None:
    h = Harness()
    h.quote()
    rejected(h.order(Side.SELL, "1", reduce_only=True)[1], "reduce_only", "0", "1")  # flat: nothing to reduce
    h.position(Side.BUY, "1")
    rejected(h.order(Side.SELL, "1.5", reduce_only=True)[1], "reduce_only", "1", "1.5")  # would flip
    passed(h.order(Side.SELL, "1", reduce_only=True)[1])


def test_drawdown_halt() -> None:
    h = Harness(limits(max_drawdown_fraction=D("0.1"), drawdown_action="halt"))
    h.quote()
    h.position(Side.BUY, "1")
    assert h.equity("1000") == []
    assert h.equity("950") == []  # 5 %
    (breach,) = h.equity("900")  # (1000 - 900) / 1000 = 10 % >= 10 %
    assert isinstance(breach, DrawdownBreached)
    assert (
        breach.peak_equity,
        breach.equity,
        breach.drawdown_fraction,
        breach.limit_fraction,
        breach.action,
    ) == (
        D("1000"),
        D("900"),
        D("0.1"),
        D("0.1"),
        "halt",
    )
    assert h.equity("880") == []  # same breach: reported once
    rejected(h.order(Side.BUY, "0.1")[1], "drawdown_halt", "0.1", "0.12")
    rejected(h.order(Side.SELL, "0.5")[1], "drawdown_halt", "0.1", "0.12")  # even a reducing order
    # Walk past: equity recovers to a 5 % drawdown. The old risk lifted the halt by itself here.
    assert h.equity("950") == []
    rejected(h.order(Side.BUY, "0.1")[1], "drawdown_halt", "0.1", "0.05")  # latched until an operator acts
    (released,) = h.feed(ReleaseDrawdownHalt(envelope=h.env(), reason="reviewed", operator="ops"))
    assert isinstance(released, DrawdownHaltReleased) and released.peak_equity == D("950")
    assert (
        h.feed(ReleaseDrawdownHalt(envelope=h.env(), reason="again", operator="ops")) == []
    )  # nothing latched
    passed(h.order(Side.BUY, "0.1")[1])
    assert h.equity("900") == []  # measured from the release: (950 - 900) / 950 = 5.3 %
    (again,) = h.equity("850")  # (950 - 850) / 950 = 10.5 %: a new breach is reported again
    assert isinstance(again, DrawdownBreached) and again.drawdown_fraction == D("0.1052631579")


def test_drawdown_reduce_only() -> None:
    h = Harness(limits(max_drawdown_fraction=D("0.1"), drawdown_action="reduce_only"))
    h.quote()
    h.position(Side.BUY, "1")
    h.equity("1000")
    (breach,) = h.equity("899")
    assert isinstance(breach, DrawdownBreached) and breach.action == "reduce_only"
    rejected(h.order(Side.BUY, "0.1")[1], "drawdown_reduce_only", "0", "0.1")  # grows the long
    rejected(h.order(Side.SELL, "1.5")[1], "drawdown_reduce_only", "1", "1.5")  # would flip short
    passed(h.order(Side.SELL, "0.5")[1])  # shrinks 1 -> 0.5


def test_update_risk_limits_replaces_all_limits() -> None:
    h = Harness(limits(max_order_notional=D("50")))
    h.quote()
    rejected(h.order(Side.BUY, "1")[1], "max_order_notional", "50", "100.00")
    h.feed(UpdateRiskLimits(envelope=h.env(), limits=limits(max_order_notional=D("500")), operator="ops"))
    passed(h.order(Side.BUY, "1")[1])
    assert h.state.limits.max_order_notional == D("500")


def test_reduce_only_counts_working_orders_already_reducing() -> None:
    h = Harness()
    h.quote()
    h.position(Side.BUY, "1")
    passed(h.order(Side.SELL, "0.6", reduce_only=True)[1])
    # 0.6 of the 1 is already being sold: only 0.4 is left to reduce.
    rejected(h.order(Side.SELL, "0.6", reduce_only=True)[1], "reduce_only", "0.4", "0.6")
    passed(h.order(Side.SELL, "0.4", reduce_only=True)[1])


def test_a_group_whose_other_legs_never_arrive_is_rejected_not_left_hanging() -> None:
    h = Harness()
    h.quote()
    h.seq += 1
    lone = PlaceOrder(
        envelope=h.env(), order_id=uuid.uuid5(uuid.NAMESPACE_OID, "lone"), account="acc-1", strategy_id="s",
        venue="A", instrument=INSTRUMENT, side=Side.BUY, order_type=OrderType.LIMIT,
        time_in_force=TimeInForce.IOC, quantity=D("1"), limit_price=D("100"),
        leg_group_id=uuid.uuid5(uuid.NAMESPACE_OID, "group"), legs_in_group=2,
    )  # fmt: skip
    assert h.feed(lone) == []  # held for its partner
    (verdict,) = [e for e in h.feed(QuoteTick(envelope=h.env(), venue="A", instrument=INSTRUMENT,
                                              bid_price=D("99.90"), bid_size=D("1"), ask_price=D("100.10"),
                                              ask_size=D("1")))]  # fmt: skip
    rejected(verdict, "incomplete_group", "2", "1")
    assert verdict.envelope.causation_id == lone.envelope.event_id  # type: ignore[union-attr]
    assert h.state.held == [] and h.state.working == {}


def test_walk_takes_levels_best_first_and_values_the_rest_beyond() -> None:
    levels = [(D("100.10"), D("1")), (D("100.20"), D("2")), (D("100.50"), D("5"))]
    assert walk(levels, D("2.5"), D("101"), Side.BUY) == (
        D("250.40"),
        D("100.20"),
        "1 x 100.10 + 1.5 x 100.20",
    )
    # 100.10 + 2 x 100.20 + 5 x 100.50 = 803.00 for 8, then 2 beyond the depth at 101: 1005.00
    walked = walk(levels, D("10"), D("101"), Side.BUY)
    assert walked is not None
    notional, last, how = walked
    assert (notional, last) == (D("1005.00"), D("101"))
    assert how == "1 x 100.10 + 2 x 100.20 + 5 x 100.50 + 2 beyond the known depth x 101"
