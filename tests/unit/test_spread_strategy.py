"""Cross-exchange spread strategy, with numbers a trader can check by hand.

Default setup: venues A, B, C with taker fees 10, 10 and 5 bps; min edge 5 bps. Buying on A at 100.00 and
selling on B needs gross edge > 10 + 10 + 5 = 25 bps, i.e. a bid on B above 100.25.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest

from domain.events import (
    EventBase,
    InstrumentDefined,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderPartiallyFilled,
    PlaceOrder,
    QuoteTick,
    RiskCheckRejected,
    SpreadOpportunityDetected,
    StartStrategy,
    StopStrategy,
)
from domain.spread_strategy import SpreadState, SpreadStrategy, SpreadStrategyConfig, leg_order_id
from domain.values import Liquidity, OrderType, Side, TimeInForce
from tests.unit.decider_harness import DeciderHarness

pytestmark = pytest.mark.unit

D = Decimal
SECOND = 1_000_000_000


def make_config(**overrides: Any) -> SpreadStrategyConfig:
    base: dict[str, Any] = {
        "strategy_id": "spread-1",
        "account": "acc-1",
        "instrument": "BTC-USDT",
        "venues": ("A", "B", "C"),
        "taker_fee_bps": {"A": D("10"), "B": D("10"), "C": D("5")},
        "min_edge_bps": D("5"),
        "max_quote_age_ns": SECOND,
        "min_size": D("0.1"),
        "max_order_quantity": D("2"),
        "max_notional_per_trade": D("1000000"),
        "quantity_step": D("0.001"),
        "cooldown_ns": 0,
        "max_legs_in_flight": 1,
        "on_leg_failure": "hedge",
    }
    base.update(overrides)
    return SpreadStrategyConfig(**base)


class Harness(DeciderHarness):
    state: SpreadState

    def __init__(self, config: SpreadStrategyConfig) -> None:
        super().__init__(SpreadStrategy(config))

    def quote(
        self,
        venue: str,
        bid: str,
        ask: str,
        t: int = 0,
        bid_size: str = "5",
        ask_size: str = "5",
        instrument: str = "BTC-USDT",
    ) -> list[EventBase]:
        return self.feed(
            QuoteTick(
                envelope=self.env(t),
                venue=venue,
                instrument=instrument,
                bid_price=D(bid),
                bid_size=D(bid_size),
                ask_price=D(ask),
                ask_size=D(ask_size),
            )
        )

    def fill(self, order: PlaceOrder, cumulative: str, final: bool, t: int = 0) -> list[EventBase]:
        cls = OrderFilled if final else OrderPartiallyFilled
        cum = D(cumulative)
        return self.feed(
            cls(
                envelope=self.env(t),
                order_id=order.order_id,
                venue=order.venue,
                instrument=order.instrument,
                side=order.side,
                price=order.limit_price or D("100"),
                quantity=cum,
                fee=D("0"),
                fee_currency="USDT",
                liquidity=Liquidity.TAKER,
                venue_trade_id=f"{order.order_id}-{cumulative}",
                cumulative_quantity=cum,
                leaves_quantity=order.quantity - cum,
            )
        )


def orders_of(events: list[EventBase]) -> list[PlaceOrder]:
    return [e for e in events if isinstance(e, PlaceOrder)]


def setup_book(h: Harness, sell_bid: str, t: int = 0, sell_venue: str = "B") -> list[EventBase]:
    """A offers at 100.00; the other venues are quiet (bid 99.00 / ask 101.00); then `sell_venue` bids."""
    h.quote("A", "99.00", "100.00", t=t)
    for venue in ("B", "C"):
        if venue != sell_venue:
            h.quote(venue, "99.00", "101.00", t=t)
    return h.quote(sell_venue, sell_bid, "101.00", t=t)


# ---------------------------------------------------------------- threshold and fees


@pytest.mark.parametrize(
    ("bid", "fires"),
    [("100.24", False), ("100.25", False), ("100.2501", True), ("100.26", True)],
)
def test_fires_only_strictly_above_fees_plus_min_edge(bid: str, fires: bool) -> None:
    h = Harness(make_config())
    out = setup_book(h, bid)
    assert bool(out) is fires


def test_opportunity_and_orders_at_the_quoted_prices() -> None:
    h = Harness(make_config())
    out = setup_book(h, "100.26")
    signal, buy, sell = out
    assert isinstance(signal, SpreadOpportunityDetected)
    assert (signal.buy_venue, signal.sell_venue) == ("A", "B")
    assert signal.gross_edge_bps == D("26")  # (100.26 - 100.00) / 100.00 * 10_000
    assert signal.net_edge_bps == D("6")  # 26 - 10 (A) - 10 (B)
    assert signal.quantity == D("2")  # top sizes 5, capped by max_order_quantity 2
    assert isinstance(buy, PlaceOrder) and isinstance(sell, PlaceOrder)
    assert (buy.venue, buy.side, buy.limit_price) == ("A", Side.BUY, D("100.00"))
    assert (sell.venue, sell.side, sell.limit_price) == ("B", Side.SELL, D("100.26"))
    for index, order in enumerate((buy, sell)):
        assert order.order_type is OrderType.LIMIT and order.time_in_force is TimeInForce.IOC
        assert order.order_id == leg_order_id(signal.opportunity_id, index)
        assert order.order_id == uuid.uuid5(signal.opportunity_id, f"leg:{index}")
        assert order.leg_group_id == signal.opportunity_id
        assert order.legs_in_group == 2 and order.repair is False  # risk judges the two legs together
        assert order.account == "acc-1" and order.strategy_id == "spread-1"


def test_fees_are_per_venue() -> None:
    # Selling on C (fee 5) needs > 10 + 5 + 5 = 20 bps; on B (fee 10) the same 21 bps is not enough.
    on_b = setup_book(Harness(make_config()), "100.21", sell_venue="B")
    on_c = setup_book(Harness(make_config()), "100.21", sell_venue="C")
    assert on_b == []
    signal = on_c[0]
    assert isinstance(signal, SpreadOpportunityDetected)
    assert signal.sell_venue == "C" and signal.net_edge_bps == D("6")  # 21 - 10 - 5


@pytest.mark.parametrize(("c_bid", "winner"), [("100.35", "B"), ("100.36", "C")])
def test_best_net_edge_wins_and_ties_go_to_venue_order(c_bid: str, winner: str) -> None:
    h = Harness(make_config())
    h.quote("A", "99.00", "101.00")  # nothing to buy cheaply yet
    h.quote("B", "100.40", "101.00")
    h.quote("C", c_bid, "101.00")
    out = h.quote("A", "99.00", "100.00")
    # A->B: 40 - 10 - 10 = 20 bps net; A->C: 35 - 10 - 5 = 20 (tie: B is listed first) or 36 - 15 = 21.
    signal = out[0]
    assert isinstance(signal, SpreadOpportunityDetected)
    assert (signal.buy_venue, signal.sell_venue) == ("A", winner)


def test_other_instrument_and_unknown_venue_are_ignored() -> None:
    h = Harness(make_config())
    h.quote("A", "99.00", "100.00")
    assert h.quote("B", "100.50", "101.00", instrument="ETH-USDT") == []
    assert h.quote("Z", "100.50", "101.00") == []


# ---------------------------------------------------------------- staleness, cooldown, legs in flight


def test_staleness_in_event_time() -> None:
    h = Harness(make_config())
    h.quote("A", "99.00", "100.00", t=0)
    assert h.quote("B", "100.30", "101.00", t=SECOND + 1) == []  # A's quote is 1 s + 1 ns old
    h2 = Harness(make_config())
    h2.quote("A", "99.00", "100.00", t=0)
    assert h2.quote("B", "100.30", "101.00", t=SECOND) != []  # exactly max_quote_age_ns is still fresh


def test_cooldown_after_a_trade() -> None:
    h = Harness(make_config(cooldown_ns=5 * SECOND, max_legs_in_flight=10))
    h.quote("A", "99.00", "100.00", t=SECOND)
    assert h.quote("B", "100.30", "101.00", t=SECOND) != []  # trade at t = 1 s
    h.quote("A", "99.00", "100.00", t=6 * SECOND - 1)
    assert h.quote("B", "100.30", "101.00", t=6 * SECOND - 1) == []  # 4.999999999 s later: cooling down
    assert h.quote("A", "99.00", "100.00", t=6 * SECOND) != []  # 5 s later: free again


def test_legs_in_flight_limit_until_the_group_completes() -> None:
    h = Harness(make_config(max_legs_in_flight=1))
    h.quote("A", "99.00", "100.00")
    buy, sell = orders_of(h.quote("B", "100.30", "101.00"))
    assert h.state.legs_in_flight == 1
    assert h.quote("B", "100.31", "101.00") == []  # one group open, limit 1
    h.fill(buy, "2", final=True)
    assert h.state.legs_in_flight == 1  # the sell leg is still out
    assert h.fill(sell, "2", final=True) == []  # both filled 2: balanced, no repair
    assert h.state.legs_in_flight == 0
    assert h.quote("B", "100.31", "101.00") != []


# ---------------------------------------------------------------- sizing


def test_size_by_depth_and_min_size() -> None:
    h = Harness(make_config())
    h.quote("A", "99.00", "100.00", ask_size="0.7")
    signal = h.quote("B", "100.30", "101.00", bid_size="1.2345")[0]
    assert isinstance(signal, SpreadOpportunityDetected)
    assert signal.quantity == D("0.7")  # min(0.7 ask on A, 1.2345 bid on B, 2 max)
    h2 = Harness(make_config())
    h2.quote("A", "99.00", "100.00", ask_size="0.09")  # below min_size 0.1
    assert h2.quote("B", "100.30", "101.00") == []


def test_size_by_budget_rounded_down_to_step() -> None:
    h = Harness(make_config(max_notional_per_trade=D("150")))
    h.quote("A", "99.00", "100.00")
    out = h.quote("B", "100.30", "101.00")
    # 150 / 100.30 = 1.49551...; step 0.001 -> 1.495 (1.495 * 100.30 = 149.9485 <= 150 < 1.496 * 100.30)
    assert {o.quantity for o in orders_of(out)} == {D("1.495")}


def _spec(venue: str, kind: str, contract_size: str) -> InstrumentDefined:
    quote = "USD" if kind == "inverse" else "USDT"
    return InstrumentDefined(envelope=Harness(make_config()).env(), venue=venue, instrument="BTC-USDT", base="BTC",
                             quote=quote, settlement="BTC" if kind == "inverse" else quote, kind=kind,
                             contract_size=D(contract_size), tick_size=D("0.01"), lot_size=D("1"),
                             min_notional=D("0"), maker_fee_bps=D("2"), taker_fee_bps=D("5"))  # fmt: skip


def test_budget_counts_inverse_contracts_at_their_face_value() -> None:
    # Both venues inverse (COIN-M style, a contract is 100 USD): a budget of 1,050 USD is 10.5 contracts at
    # any price -> 10 (price x contracts would have said 1050 / 60,300 = 0.017 contracts: nothing to trade).
    h = Harness(make_config(max_notional_per_trade=D("1050"), max_order_quantity=D("50"), quantity_step=D("1"),
                            min_size=D("1")))  # fmt: skip
    h.feed(_spec("A", "inverse", "100"))
    h.feed(_spec("B", "inverse", "100"))
    h.quote("A", "59990", "60000", ask_size="50")
    out = h.quote("B", "60300", "60310", bid_size="50")  # 50 bps over the ask
    assert {o.quantity for o in orders_of(out)} == {D("10")}


def test_budget_counts_linear_contract_size() -> None:
    # A linear contract of 0.01 BTC on B at 100.30 is worth 1.003: 150 / 1.003 = 149.55 contracts; the spot
    # buy leg on A allows 150 / 100.00 = 1.5 units, so the budget caps at 1.5 (same quantity on both legs).
    h = Harness(make_config(max_notional_per_trade=D("150"), max_order_quantity=D("500")))
    h.feed(_spec("B", "linear", "0.01"))
    h.quote("A", "99.00", "100.00", ask_size="500")
    out = h.quote("B", "100.30", "101.00", bid_size="500")
    assert {o.quantity for o in orders_of(out)} == {D("1.5")}


def test_budget_below_min_size_does_not_fire() -> None:
    h = Harness(make_config(max_notional_per_trade=D("5")))  # 5 / 100.30 = 0.0498 < 0.1
    h.quote("A", "99.00", "100.00")
    assert h.quote("B", "100.30", "101.00") == []


# ---------------------------------------------------------------- leg failure: hedge vs unwind


def _partial_buy_full_sell(policy: str) -> tuple[PlaceOrder, PlaceOrder, Harness, list[EventBase]]:
    h = Harness(make_config(on_leg_failure=policy))
    h.quote("A", "99.00", "100.00")
    buy, sell = orders_of(h.quote("B", "100.30", "101.00"))  # quantity 2
    assert h.fill(buy, "0.4", final=False) == []
    assert h.fill(sell, "2", final=True) == []  # buy leg still live: wait
    out = h.feed(OrderCanceled(envelope=h.env(0), order_id=buy.order_id, venue="A", reason="ioc"))
    return buy, sell, h, out


def test_hedge_buys_the_missing_quantity_on_the_buy_venue() -> None:
    buy, _, h, out = _partial_buy_full_sell("hedge")
    (repair,) = orders_of(out)
    # Sold 2 on B but bought only 0.4 on A: buy the missing 1.6 on A, market.
    assert (repair.venue, repair.side, repair.quantity) == ("A", Side.BUY, D("1.6"))
    assert repair.order_type is OrderType.MARKET and repair.reduce_only is False
    assert repair.leg_group_id == buy.leg_group_id and h.state.legs_in_flight == 1
    h.fill(repair, "1.6", final=True)
    assert h.state.legs_in_flight == 0


def test_unwind_buys_back_the_excess_on_the_sell_venue() -> None:
    _, _, h, out = _partial_buy_full_sell("unwind")
    (repair,) = orders_of(out)
    # The sell leg did 1.6 more than the buy leg: buy 1.6 back on B. Not reduce_only: its size is measured
    # against the group's own fills, whatever else the venue's position holds.
    assert (repair.venue, repair.side, repair.quantity) == ("B", Side.BUY, D("1.6"))
    assert repair.order_type is OrderType.MARKET and repair.reduce_only is False and repair.repair is True


@pytest.mark.parametrize(
    ("policy", "venue"),
    [("hedge", "C"), ("unwind", "A")],
)
def test_risk_rejected_leg_counts_as_unfilled_and_its_venue_is_avoided(policy: str, venue: str) -> None:
    h = Harness(make_config(on_leg_failure=policy))
    h.quote("A", "99.00", "100.00")
    buy, sell = orders_of(h.quote("B", "100.30", "101.00"))
    h.feed(
        RiskCheckRejected(
            envelope=h.env(0), order_id=sell.order_id, rule="max_position", limit=D("1"), actual=D("2")
        )
    )
    (repair,) = orders_of(h.fill(buy, "2", final=True))
    # Bought 2 on A, sold nothing, and risk refused the sell on B: hedge sells 2 on the next venue, C (not
    # on B again); unwind sells 2 back on A.
    assert (repair.venue, repair.side, repair.quantity, repair.reduce_only) == (
        venue,
        Side.SELL,
        D("2"),
        False,
    )


def test_equal_partial_fills_need_no_repair_and_expiry_is_terminal() -> None:
    h = Harness(make_config())
    h.quote("A", "99.00", "100.00")
    buy, sell = orders_of(h.quote("B", "100.30", "101.00"))
    h.fill(buy, "0.5", final=False)
    h.fill(sell, "0.5", final=False)
    assert h.feed(OrderExpired(envelope=h.env(0), order_id=buy.order_id, venue="A")) == []
    assert h.feed(OrderCanceled(envelope=h.env(0), order_id=sell.order_id, venue="B")) == []
    assert h.state.legs_in_flight == 0


# ---------------------------------------------------------------- start / stop, determinism of ids


def test_stop_and_start() -> None:
    h = Harness(make_config(max_legs_in_flight=10))
    h.quote("A", "99.00", "100.00")
    h.feed(StopStrategy(envelope=h.env(0), strategy_id="other", operator="ops"))
    assert h.quote("B", "100.30", "101.00") != []  # another strategy's stop does not apply
    h.feed(StopStrategy(envelope=h.env(0), strategy_id="spread-1", operator="ops"))
    assert h.quote("B", "100.31", "101.00") == []
    h.feed(StartStrategy(envelope=h.env(0), strategy_id="spread-1", operator="ops"))
    assert h.quote("B", "100.32", "101.00") != []


def test_configured_stopped_until_started() -> None:
    h = Harness(make_config(started=False))
    h.quote("A", "99.00", "100.00")
    assert h.quote("B", "100.30", "101.00") == []
    h.feed(StartStrategy(envelope=h.env(0), strategy_id="spread-1", operator="ops"))
    assert h.quote("B", "100.30", "101.00") != []


def test_same_inputs_same_ids() -> None:
    runs = []
    for _ in range(2):
        h = Harness(make_config())
        h.quote("A", "99.00", "100.00")
        runs.append([e.model_dump_json() for e in h.quote("B", "100.30", "101.00")])
    assert runs[0] == runs[1]


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="taker_fee_bps missing"):
        make_config(taker_fee_bps={"A": D("1"), "B": D("1")})
    with pytest.raises(ValueError, match="distinct"):
        make_config(venues=("A", "A"))


# ---------------------------------------------------------------- convergence exit


def held_spread(h: Harness, filled: str = "2") -> None:
    """Bought on A at 100.00 and sold on B at 100.30, both legs filled `filled`: long A, short B."""
    h.quote("A", "99.00", "100.00")
    buy, sell = orders_of(h.quote("B", "100.30", "101.00"))
    h.fill(buy, filled, final=True)
    h.fill(sell, filled, final=True)
    assert h.state.inventory == {"A": D(filled), "B": -D(filled)}


@pytest.mark.parametrize(("a_bid", "fires"), [("99.90", False), ("99.9001", True), ("99.95", True)])
def test_exit_closes_the_held_spread_strictly_above_the_exit_edge(a_bid: str, fires: bool) -> None:
    # Closing sells on A (long) and buys on B (short). With B at 99.00 / 100.00, the gross edge is
    # (bid_A - 100.00) / 100.00 * 10_000 bps; net = gross - 10 (A) - 10 (B) must be > -30: bid_A > 99.90.
    h = Harness(make_config(exit_edge_bps=D("-30")))
    held_spread(h)
    h.quote("B", "99.00", "100.00")
    out = h.quote("A", a_bid, "100.50")
    assert bool(out) is fires
    if fires:
        signal, buy, sell = out
        assert isinstance(signal, SpreadOpportunityDetected) and (signal.buy_venue, signal.sell_venue) == (
            "B",
            "A",
        )
        assert isinstance(buy, PlaceOrder) and isinstance(sell, PlaceOrder)
        assert (buy.venue, buy.side, buy.limit_price, buy.quantity) == ("B", Side.BUY, D("100.00"), D("2"))
        assert (sell.venue, sell.side, sell.limit_price, sell.quantity) == ("A", Side.SELL, D(a_bid), D("2"))


def test_exit_is_capped_at_what_is_held_and_flattens_the_inventory() -> None:
    h = Harness(make_config(exit_edge_bps=D("-30")))
    held_spread(h, filled="1.5")
    h.quote("B", "99.00", "100.00")
    _, buy, sell = h.quote("A", "99.95", "100.50")
    assert isinstance(buy, PlaceOrder) and isinstance(sell, PlaceOrder)
    assert buy.quantity == sell.quantity == D("1.5")  # sizes 5, max order 2, held 1.5
    h.fill(buy, "1.5", final=True)
    h.fill(sell, "1.5", final=True)
    assert h.state.inventory == {"A": D("0"), "B": D("0")}
    assert h.quote("A", "99.95", "100.50") == []  # nothing held: no exit, and no entry at these prices


def test_without_exit_edge_nothing_held_is_ever_closed() -> None:
    h = Harness(make_config())
    held_spread(h)
    h.quote("B", "99.00", "100.00")
    assert h.quote("A", "99.99", "100.50") == []  # closing costs 1 + 20 bps of fees: only exit_edge_bps may
