"""Trying to walk past risk, one case of issue 11 each: every test here failed on the old behaviour.

Strategy and risk run together (risk after the strategy, as in the kernel); the venues' answers are played
by hand. Venues A, B, C; A offers at 100.00 and B bids 100.30, so the strategy buys on A and sells on B.
"""

from __future__ import annotations

import tomllib
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from application.run_config import RunConfig
from domain.events import (
    CancelOrder,
    DrawdownBreached,
    EngageKillSwitch,
    EquitySampled,
    EventBase,
    KillSwitchEngaged,
    KillSwitchReleased,
    LegExposureUnresolved,
    OrderExpired,
    OrderFilled,
    OrderPartiallyFilled,
    OrderRejected,
    PlaceOrder,
    QuoteTick,
    ReleaseKillSwitch,
    RiskCheckPassed,
    RiskCheckRejected,
    StartStrategy,
    StopStrategy,
    UpdateRiskLimits,
)
from domain.risk import RiskDecider
from domain.spread_strategy import SpreadStrategy, SpreadStrategyConfig
from domain.values import Liquidity, OrderType, RiskLimits, Side, TimeInForce
from tests.unit.decider_harness import DeciderHarness

pytestmark = pytest.mark.unit

D = Decimal
SECOND = 1_000_000_000
INSTRUMENT = "BTC-USDT"
DEMO_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "samples" / "spread-demo.toml"


def limits(**overrides: Any) -> RiskLimits:
    base: dict[str, Any] = {
        "max_order_notional": D("1000000"), "max_position_per_asset_venue": D("100"),
        "max_gross_exposure": D("100000000"), "max_open_orders": 100, "price_collar_bps": D("1000"),
        "max_orders_per_venue_per_second": 100, "max_drawdown_fraction": D("0.1"),
    }  # fmt: skip
    base.update(overrides)
    return RiskLimits(**base)


def strategy_config(**overrides: Any) -> SpreadStrategyConfig:
    base: dict[str, Any] = {
        "strategy_id": "spread-1", "account": "acc-1", "instrument": INSTRUMENT, "venues": ("A", "B", "C"),
        "taker_fee_bps": {"A": D("10"), "B": D("10"), "C": D("10")}, "min_edge_bps": D("0"),
        "max_order_quantity": D("2"), "max_notional_per_trade": D("1000000"), "max_legs_in_flight": 1,
    }  # fmt: skip
    base.update(overrides)
    return SpreadStrategyConfig(**base)


class Desk(DeciderHarness):
    """The spread strategy and the account's risk; `t` is the event time of the next input."""

    def __init__(self, risk_limits: RiskLimits | None = None, **strategy: Any) -> None:
        super().__init__(
            SpreadStrategy(strategy_config(**strategy)), RiskDecider("acc-1", risk_limits or limits())
        )
        self.t = 0
        self.trades = 0

    def at(self, t: int) -> Desk:
        self.t = t
        return self

    def quote(self, venue: str, bid: str, ask: str, size: str = "5") -> list[EventBase]:
        return self.feed(QuoteTick(envelope=self.env(self.t), venue=venue, instrument=INSTRUMENT,
                                   bid_price=D(bid), bid_size=D(size), ask_price=D(ask), ask_size=D(size)))  # fmt: skip

    def quiet_market(self) -> None:
        self.quote("B", "99.00", "101.00")  # first: B's bid of a previous spread() must not fire anything
        self.quote("C", "99.00", "101.00")
        self.quote("A", "99.00", "100.00")

    def spread(self) -> tuple[list[EventBase], list[PlaceOrder]]:
        """B bids 100.30 over A's 100.00 offer: the strategy fires; returns (everything derived, the legs)."""
        self.quiet_market()
        out = self.quote("B", "100.30", "101.00")
        return out, [e for e in out if isinstance(e, PlaceOrder)]

    def fill(self, order: PlaceOrder, quantity: str, price: str = "100") -> list[EventBase]:
        self.trades += 1
        return self.feed(OrderFilled(
            envelope=self.env(self.t), order_id=order.order_id, venue=order.venue, instrument=INSTRUMENT,
            side=order.side, price=D(price), quantity=D(quantity), fee=D("0"), fee_currency="USDT",
            liquidity=Liquidity.TAKER, venue_trade_id=f"T{self.trades}", cumulative_quantity=D(quantity),
            leaves_quantity=D("0")))  # fmt: skip

    def expire(self, order: PlaceOrder) -> list[EventBase]:
        return self.feed(OrderExpired(envelope=self.env(self.t), order_id=order.order_id, venue=order.venue))

    def manual(self, venue: str, side: Side, quantity: str, price: str | None = "100",
               tif: TimeInForce = TimeInForce.IOC) -> tuple[PlaceOrder, list[EventBase]]:  # fmt: skip
        """An order of the same account from outside the strategy (another desk, a manual trade)."""
        self.trades += 1
        order = PlaceOrder(
            envelope=self.env(self.t), order_id=uuid.uuid5(uuid.NAMESPACE_OID, f"manual-{self.trades}"),
            account="acc-1", strategy_id="manual", venue=venue, instrument=INSTRUMENT, side=side,
            order_type=OrderType.LIMIT if price else OrderType.MARKET, time_in_force=tif, quantity=D(quantity),
            limit_price=D(price) if price else None,
        )  # fmt: skip
        return order, self.feed(order)


def verdict(events: list[EventBase], order: PlaceOrder) -> RiskCheckPassed | RiskCheckRejected:
    (found,) = [
        e
        for e in events
        if isinstance(e, RiskCheckPassed | RiskCheckRejected) and e.order_id == order.order_id
    ]
    return found


def rejected(found: EventBase, rule: str, limit: str, actual: str) -> None:
    assert isinstance(found, RiskCheckRejected), found
    assert (found.rule, found.limit, found.actual) == (rule, D(limit), D(actual)), found


def repairs(events: list[EventBase]) -> list[PlaceOrder]:
    return [e for e in events if isinstance(e, PlaceOrder) and e.repair]


# ---------------------------------------------------------------- exposure in flight


def test_max_open_orders_1_refuses_the_pair_not_just_the_second_leg() -> None:
    desk = Desk(limits(max_open_orders=1))
    out, (buy, sell) = desk.spread()
    # The buy leg alone would pass; with it counted, the sell leg makes 2 open orders > 1. Neither goes out.
    rejected(verdict(out, sell), "max_open_orders", "1", "2")
    rejected(verdict(out, buy), "spread_pair", "1", "2")
    assert "max_open_orders" in verdict(out, buy).detail  # type: ignore[union-attr]
    assert not any(isinstance(e, RiskCheckPassed) for e in out)
    assert repairs(out) == [] and desk.states[0].legs_in_flight == 0  # nothing filled: nothing to repair


def test_two_buys_of_8_under_a_limit_of_10() -> None:
    desk = Desk(limits(max_position_per_asset_venue=D("10")))
    desk.quiet_market()
    first, out = desk.manual("A", Side.BUY, "8")
    assert isinstance(verdict(out, first), RiskCheckPassed)
    second, out = desk.manual("A", Side.BUY, "8")  # the first is still working: 8 + 8 = 16 > 10
    rejected(verdict(out, second), "max_position", "10", "16")
    desk.expire(first)  # the first one ended unfilled: room again
    third, out = desk.manual("A", Side.BUY, "8")
    assert isinstance(verdict(out, third), RiskCheckPassed)


def test_a_flip_through_zero_is_measured_on_the_resulting_position() -> None:
    desk = Desk(limits(max_position_per_asset_venue=D("10")))
    desk.quiet_market()
    buy, _ = desk.manual("A", Side.BUY, "10")
    desk.fill(buy, "10")
    desk.feed(
        UpdateRiskLimits(
            envelope=desk.env(), limits=limits(max_position_per_asset_venue=D("5")), operator="ops"
        )
    )
    sell, out = desk.manual("A", Side.SELL, "19")  # +10 -> -9: |-9| > 5
    rejected(verdict(out, sell), "max_position", "5", "9")
    sell, out = desk.manual("A", Side.SELL, "15")  # +10 -> -5: at the limit
    assert isinstance(verdict(out, sell), RiskCheckPassed)


def test_market_orders_are_valued_at_the_price_they_walk_to() -> None:
    desk = Desk(limits(max_order_notional=D("300")))
    desk.quote("A", "99.00", "100.00", size="1")  # 1 offered at 100.00; collar 1000 bps: beyond it 109.45
    order, out = desk.manual("A", Side.BUY, "2.5", price=None)
    # 1 x 100.00 + 1.5 x 109.45 (mid 99.50 + 10 %) = 264.175: the mid would have said 248.75.
    assert isinstance(verdict(out, order), RiskCheckPassed)
    order, out = desk.manual("A", Side.BUY, "3", price=None)
    rejected(verdict(out, order), "max_order_notional", "300", "318.90")  # 100 + 2 x 109.45


# ---------------------------------------------------------------- leg failure


def test_a_hedge_is_not_resent_where_it_was_refused() -> None:
    desk = Desk(limits(max_position_per_asset_venue=D("2")))
    _, (buy, sell) = desk.spread()
    # Position limits tightened while the legs are out; the buy fills 2 on A, the sell expires on B.
    desk.feed(
        UpdateRiskLimits(
            envelope=desk.env(), limits=limits(max_position_per_asset_venue=D("1")), operator="ops"
        )
    )
    desk.fill(buy, "2")
    out = desk.expire(sell)
    hedges = repairs(out)
    # Hedge on B: -2 > 1, refused. The old strategy stopped there, naked. Now the next venue, C, is refused
    # for the same reason, and the unwind on A (+2 -> 0) is where risk accepts the repair.
    assert [(o.venue, o.side, o.quantity) for o in hedges] == [("B", Side.SELL, D("2")), ("C", Side.SELL, D("2")),
                                                               ("A", Side.SELL, D("2"))]  # fmt: skip
    rejected(verdict(out, hedges[0]), "max_position", "1", "2")
    rejected(verdict(out, hedges[1]), "max_position", "1", "2")
    assert isinstance(verdict(out, hedges[2]), RiskCheckPassed)
    assert desk.fill(hedges[2], "2") == [] and desk.states[0].legs_in_flight == 0


def test_a_venue_that_rejected_the_leg_is_not_where_the_hedge_goes() -> None:
    desk = Desk()
    _, (buy, sell) = desk.spread()
    desk.fill(buy, "2")
    out = desk.feed(
        OrderRejected(envelope=desk.env(), order_id=sell.order_id, venue="B", reason="insufficient balance")
    )
    (hedge,) = repairs(out)
    assert (hedge.venue, hedge.side, hedge.quantity) == ("C", Side.SELL, D("2"))


def test_unwind_passes_after_the_leg_reduced_an_earlier_opposite_position() -> None:
    desk = Desk(on_leg_failure="unwind", max_order_quantity=D("1"))
    desk.quiet_market()
    short, _ = desk.manual("A", Side.SELL, "1", price="99")
    desk.fill(short, "1", price="99")  # A: -1 from an earlier trade
    _, (buy, sell) = desk.spread()
    desk.fill(buy, "1")  # A: -1 -> 0
    out = desk.expire(sell)
    (unwind,) = repairs(out)
    # Sell the 1 the leg bought back on A. The old unwind was reduce_only against A's net position (0):
    # refused, and the group closed with the position naked.
    assert (unwind.venue, unwind.side, unwind.quantity, unwind.reduce_only) == ("A", Side.SELL, D("1"), False)
    assert isinstance(verdict(out, unwind), RiskCheckPassed)


def test_no_naked_position_after_failed_repairs() -> None:
    desk = Desk(max_repair_attempts=3)
    _, (buy, sell) = desk.spread()
    desk.at(1 * SECOND).fill(buy, "2")
    out = desk.at(2 * SECOND).expire(sell)
    for attempt in range(3):
        (hedge,) = repairs(out)
        assert hedge.venue == "B" and hedge.quantity == D("2")  # no liquidity is not a refusal: same venue
        out = desk.at(3 * SECOND + attempt).expire(hedge)
    (alarm,) = [e for e in out if isinstance(e, LegExposureUnresolved)]
    assert (alarm.venue, alarm.side, alarm.quantity, alarm.attempts) == ("A", Side.BUY, D("2"), 3)
    assert alarm.age_ns == 2 * SECOND + 2  # from the first fill at 1 s to the last expiry
    assert repairs(out) == []
    # The strategy stopped: a new opportunity does not fire until an operator starts it again.
    _, legs = desk.spread()
    assert legs == []
    desk.feed(StartStrategy(envelope=desk.env(), strategy_id="spread-1", operator="ops"))
    _, legs = desk.spread()
    assert len(legs) == 2


def test_a_partly_filled_repair_is_followed_by_one_for_the_rest() -> None:
    desk = Desk()
    _, (buy, sell) = desk.spread()
    desk.fill(buy, "2")
    (hedge,) = repairs(desk.expire(sell))
    desk.feed(_partial(desk, hedge, "0.5"))
    (rest,) = repairs(desk.expire(hedge))
    assert (rest.venue, rest.side, rest.quantity) == ("B", Side.SELL, D("1.5"))


def _partial(desk: Desk, order: PlaceOrder, quantity: str) -> EventBase:
    return OrderPartiallyFilled(
        envelope=desk.env(desk.t), order_id=order.order_id, venue=order.venue, instrument=INSTRUMENT,
        side=order.side, price=D("100"), quantity=D(quantity), fee=D("0"), fee_currency="USDT",
        liquidity=Liquidity.TAKER, venue_trade_id="P1", cumulative_quantity=D(quantity),
        leaves_quantity=order.quantity - D(quantity),
    )  # fmt: skip


# ---------------------------------------------------------------- halt and kill switch


def test_the_drawdown_halt_does_not_lift_itself_but_lets_repairs_through() -> None:
    desk = Desk()
    _, (buy, sell) = desk.spread()
    for equity in ("1000", "890", "990"):  # breach at 11 %, then a recovery to 1 %
        desk.feed(EquitySampled(envelope=desk.env(), account="acc-1", quote_currency="USDT", equity=D(equity),
                                cash=D(equity), realized_pnl=D("0"), unrealized_pnl=D("0"), fees=D("0")))  # fmt: skip
    other, out = desk.manual("C", Side.BUY, "0.1")
    rejected(verdict(out, other), "drawdown_halt", "0.1", "0.01")  # still halted at 1 %
    desk.fill(buy, "2")
    out = desk.expire(sell)
    (hedge,) = repairs(out)
    assert isinstance(verdict(out, hedge), RiskCheckPassed)  # a repair takes risk off: it passes the halt


def test_the_kill_switch_cancels_resting_orders_and_blocks_new_ones() -> None:
    desk = Desk()
    desk.quiet_market()
    resting, _ = desk.manual("A", Side.BUY, "1", price="99.50", tif=TimeInForce.GTC)
    done, _ = desk.manual("A", Side.BUY, "1")
    desk.fill(done, "1")  # terminal: nothing to cancel
    out = desk.feed(EngageKillSwitch(envelope=desk.env(), reason="ops", operator="alice"))
    assert [type(e) for e in out] == [KillSwitchEngaged, CancelOrder]
    cancel = out[1]
    assert isinstance(cancel, CancelOrder) and (cancel.order_id, cancel.venue) == (resting.order_id, "A")
    new, out = desk.manual("A", Side.BUY, "1")
    rejected(verdict(out, new), "kill_switch", "0", "1")


def test_repairs_pass_the_kill_switch_only_when_configured() -> None:
    for allowed in (False, True):
        desk = Desk(limits(repairs_under_kill_switch=allowed))
        _, (buy, sell) = desk.spread()
        desk.fill(buy, "2")
        desk.feed(EngageKillSwitch(envelope=desk.env(), reason="ops", operator="alice"))
        out = desk.expire(sell)
        if allowed:
            (hedge,) = repairs(out)
            assert isinstance(verdict(out, hedge), RiskCheckPassed)
        else:  # refused on every venue: reported, never silent
            assert all(verdict(out, o).rule == "kill_switch" for o in repairs(out))  # type: ignore[union-attr]
            (alarm,) = [e for e in out if isinstance(e, LegExposureUnresolved)]
            assert alarm.quantity == D("2") and "refused" in alarm.reason


def test_kill_switch_and_limits_per_account_and_global() -> None:
    desk = Desk()
    desk.quiet_market()
    assert desk.feed(EngageKillSwitch(envelope=desk.env(), reason="x", operator="o", account="acc-2")) == []
    order, out = desk.manual("A", Side.BUY, "1")
    assert isinstance(verdict(out, order), RiskCheckPassed)  # another account's switch
    (engaged,) = [e for e in desk.feed(EngageKillSwitch(envelope=desk.env(), reason="x", operator="o",
                                                        account="acc-1")) if isinstance(e, KillSwitchEngaged)]  # fmt: skip
    assert (engaged.account, engaged.scope) == ("acc-1", "account")
    desk.feed(EngageKillSwitch(envelope=desk.env(), reason="all", operator="o"))
    (released,) = desk.feed(ReleaseKillSwitch(envelope=desk.env(), reason="all", operator="o"))
    assert isinstance(released, KillSwitchReleased) and released.still_engaged  # the account's own switch
    order, out = desk.manual("A", Side.BUY, "1")
    rejected(verdict(out, order), "kill_switch", "0", "1")
    desk.feed(ReleaseKillSwitch(envelope=desk.env(), reason="ok", operator="o", account="acc-1"))
    desk.feed(UpdateRiskLimits(envelope=desk.env(), limits=limits(max_order_notional=D("1")), operator="o",
                               account="acc-2"))  # fmt: skip
    order, out = desk.manual("A", Side.BUY, "1")
    assert isinstance(verdict(out, order), RiskCheckPassed)  # acc-2's limits are not ours


def test_strategy_stop_per_account_and_global() -> None:
    desk = Desk(max_legs_in_flight=10)
    desk.feed(StopStrategy(envelope=desk.env(), operator="o", account="acc-2"))
    assert len(desk.spread()[1]) == 2
    desk.feed(StopStrategy(envelope=desk.env(), operator="o"))  # every strategy of every account
    assert desk.spread()[1] == []
    desk.feed(StartStrategy(envelope=desk.env(), operator="o", account="acc-1"))
    assert len(desk.spread()[1]) == 2


def test_a_latched_breach_is_reported_once() -> None:
    desk = Desk()
    out = []
    for equity in ("1000", "890", "850", "990", "800"):
        out += desk.feed(EquitySampled(envelope=desk.env(), account="acc-1", quote_currency="USDT",
                                       equity=D(equity), cash=D(equity), realized_pnl=D("0"),
                                       unrealized_pnl=D("0"), fees=D("0")))  # fmt: skip
    assert len([e for e in out if isinstance(e, DrawdownBreached)]) == 1


# ---------------------------------------------------------------- configuration


def demo_raw() -> dict[str, Any]:
    return tomllib.loads(DEMO_CONFIG.read_text())


def test_the_shipped_demo_config_is_valid() -> None:
    RunConfig.model_validate(demo_raw())


def test_a_strategy_account_other_than_the_runs_fails_before_the_run() -> None:
    raw = demo_raw()
    raw["strategy"]["account"] = "someone-else"
    with pytest.raises(ValueError, match=r"strategy\.account 'someone-else' is not the run's account 'demo'"):
        RunConfig.model_validate(raw)


def test_reduce_only_with_a_hyphen_is_an_error_listing_the_allowed_values() -> None:
    raw = demo_raw()
    raw["risk"]["drawdown_action"] = "reduce-only"
    with pytest.raises(ValueError, match=r"(?s)risk\.drawdown_action.*'halt' or 'reduce_only'"):
        RunConfig.model_validate(raw)


@pytest.mark.parametrize(
    ("section", "key", "value", "field"),
    [
        ("risk", "max_open_orders", 0, r"risk\.max_open_orders"),
        ("risk", "max_position_per_asset_venue", "-1", r"risk\.max_position_per_asset_venue"),
        ("risk", "max_drawdown_fraction", "1.5", r"risk\.max_drawdown_fraction"),
        ("strategy", "on_leg_failure", "flatten", r"(?s)strategy\.on_leg_failure.*'hedge' or 'unwind'"),
        ("strategy", "max_repair_attempts", 0, r"strategy\.max_repair_attempts"),
        ("venues", "binance-spot", {"maker_bps": "0"}, r"venues\.binance-spot sets maker_bps only: set both"),
        ("venues", "binance-spot", {"maker_bps": "0", "taker_bps": "-1"}, r"venues\.binance-spot\.taker_bps"),
        (None, "starting_equity", "0", "starting_equity"),
    ],
)
def test_bad_values_name_their_field(section: str | None, key: str, value: object, field: str) -> None:
    raw = demo_raw()
    (raw[section] if section else raw)[key] = value
    with pytest.raises(ValueError, match=field):
        RunConfig.model_validate(raw)


def test_only_a_real_repair_gets_a_repairs_pass() -> None:
    desk = Desk()
    _, (buy, sell) = desk.spread()
    desk.fill(buy, "2")
    desk.feed(EngageKillSwitch(envelope=desk.env(), reason="ops", operator="alice"))
    desk.feed(
        UpdateRiskLimits(envelope=desk.env(), limits=limits(repairs_under_kill_switch=True), operator="o")
    )

    def fake_repair(
        quantity: str, side: Side, group: uuid.UUID | None
    ) -> RiskCheckPassed | RiskCheckRejected:
        desk.trades += 1
        order = PlaceOrder(
            envelope=desk.env(), order_id=uuid.uuid5(uuid.NAMESPACE_OID, f"fake-{desk.trades}"), account="acc-1",
            strategy_id="other", venue="C", instrument=INSTRUMENT, side=side, order_type=OrderType.MARKET,
            time_in_force=TimeInForce.IOC, quantity=D(quantity), leg_group_id=group, repair=True,
        )  # fmt: skip
        return verdict(desk.feed(order), order)

    group = buy.leg_group_id
    rejected(fake_repair("1", Side.SELL, None), "kill_switch", "0", "1")  # no group: nothing to repair
    rejected(fake_repair("3", Side.SELL, group), "kill_switch", "0", "1")  # more than the group's +2
    rejected(fake_repair("1", Side.BUY, group), "kill_switch", "0", "1")  # adds to the imbalance
    assert isinstance(fake_repair("1.5", Side.SELL, group), RiskCheckPassed)  # working: 0.5 left to repair
    rejected(fake_repair("1", Side.SELL, group), "kill_switch", "0", "1")
    # The strategy's own repair of what is left passes (after the sell leg expires it would send 2, but
    # 1.5 is already working: so here a repair of 0.5 is what the group still lacks).
    assert isinstance(fake_repair("0.5", Side.SELL, group), RiskCheckPassed)
    assert desk.states[1].working[sell.order_id].order is sell  # the real leg is still out
