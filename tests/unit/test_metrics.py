"""Backtest results checked against numbers computed by hand: round trips (FIFO, fees pro rata), end
inventory and unhedged exposure, rejections by rule, drawdown, and the horizon rule of Sharpe/Sortino."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from application.metrics import MIN_RETURNS, BacktestMetrics, drawdown_series, max_drawdown, risk_adjusted
from domain.events import (
    Envelope,
    InstrumentDefined,
    OrderFilled,
    PlaceOrder,
    QuoteTick,
    RiskCheckRejected,
    input_event_id,
)
from domain.market_view import ReferenceMarketView
from domain.values import Liquidity, OrderType, Side, TimeInForce

D = Decimal
SECOND = 1_000_000_000
_seq = iter(range(1_000_000))


def env(t: int) -> Envelope:
    n = next(_seq)
    return Envelope(event_id=input_event_id("t", "s", n), session_id="t", sequence=n, event_time_ns=t,
                    ingest_time_ns=t, source="test")  # fmt: skip


def fill(t: int, side: Side, quantity: str, price: str, fee: str, venue: str = "spot") -> OrderFilled:
    return OrderFilled(envelope=env(t), order_id=uuid.uuid4(), venue=venue, instrument="BTCUSDT", side=side,
                       price=D(price), quantity=D(quantity), fee=D(fee), fee_currency="USDT",
                       liquidity=Liquidity.TAKER, venue_trade_id=str(t), cumulative_quantity=D(quantity),
                       leaves_quantity=D(0))  # fmt: skip


def fill_of(
    venue: str, instrument: str, t: int, side: Side, quantity: str, price: str, fee: str
) -> OrderFilled:
    return fill(t, side, quantity, price, fee, venue).model_copy(update={"instrument": instrument})


def quote(venue: str, bid: str, ask: str) -> QuoteTick:
    return QuoteTick(envelope=env(0), venue=venue, instrument="BTCUSDT", bid_price=D(bid), bid_size=D(1),
                     ask_price=D(ask), ask_size=D(1))  # fmt: skip


def test_two_entries_one_exit_fifo_with_fees() -> None:
    m = BacktestMetrics()
    m.observe(defined("spot", "BTCUSDT", "spot", "1"))
    m.observe(fill(1, Side.BUY, "1", "100", "0.10"))
    m.observe(fill(2, Side.BUY, "1", "110", "0.11"))
    m.observe(fill(3, Side.SELL, "1.5", "120", "0.18"))
    (trip,) = m.round_trips.trips
    # FIFO: the sell closes all of lot 1 (1 @ 100) and half of lot 2 (0.5 @ 110): entry value 155.
    # Fees: 0.10 (lot 1) + 0.055 (half of lot 2's 0.11) + 0.18 (the exit, all of it closes) = 0.335.
    # PnL: 1.5 * 120 - 155 - 0.335 = 24.665.
    assert trip.direction == "long" and trip.quantity == D("1.5")
    assert trip.entry_time_ns == 1 and trip.exit_time_ns == 3
    assert trip.entry_price * 3 == D("310")  # 155 / 1.5
    assert trip.fees == D("0.335") and trip.pnl == D("24.665")
    # Left open: 0.5 @ 110 carrying the other 0.055 of fee.
    m.observe(quote("spot", "99", "101"))
    summary = m.summary(D(1000))
    assert summary["trades"] == 1 and summary["hit_ratio"] == 1.0 and summary["round_trip_pnl"] == "24.665"
    assert summary["end_inventory"] == [{"venue": "spot", "instrument": "BTCUSDT", "asset": "BTC", "quantity": "0.5",
                                         "base_quantity": "0.5", "mark": "100", "notional": "50"}]  # fmt: skip
    m.observe(fill(4, Side.SELL, "0.5", "100", "0.05"))
    last = m.round_trips.trips[-1]
    assert last.fees == D("0.105") and last.pnl == D("-5.105")  # (100 - 110) * 0.5 - (0.055 + 0.05)
    assert m.summary(D(1000))["hit_ratio"] == 0.5


def test_a_flip_closes_then_opens_the_other_way_with_the_rest_of_the_fee() -> None:
    m = BacktestMetrics()
    m.observe(fill(1, Side.SELL, "1", "100", "0.1"))
    m.observe(fill(2, Side.BUY, "3", "90", "0.3"))  # covers the short (1), then long 2
    (trip,) = m.round_trips.trips
    assert trip.direction == "short" and trip.quantity == 1
    assert trip.fees == D("0.2") and trip.pnl == D("9.8")  # (100 - 90) * 1 - (0.1 + 0.3 / 3)
    m.observe(fill(3, Side.SELL, "2", "95", "0"))
    assert m.round_trips.trips[-1].pnl == D("9.8")  # (95 - 90) * 2 - 0.2 left on the lot


def test_the_edge_seen_at_fill_time_is_not_a_win() -> None:
    # The old hit ratio counted a spread as won on its fill-time edge; one that is opened and closed at a loss
    # after fees is a lost round trip on each venue.
    m = BacktestMetrics()
    m.observe(fill(1, Side.BUY, "1", "100", "0.1", venue="a"))
    m.observe(fill(1, Side.SELL, "1", "100.03", "0.05", venue="b"))
    m.observe(fill(2, Side.SELL, "1", "100.01", "0.1", venue="a"))
    m.observe(fill(2, Side.BUY, "1", "100.02", "0.05", venue="b"))
    summary = m.summary(D(1000))
    assert summary["trades"] == 2 and summary["hit_ratio"] == 0.0
    assert summary["round_trip_pnl"] == "-0.28"  # a: 0.01 - (0.1 + 0.1); b: 0.01 - (0.05 + 0.05)
    assert summary["end_inventory"] == [] and summary["unhedged_exposure"] == {}


def test_unhedged_exposure_nets_venues_of_one_asset() -> None:
    m = BacktestMetrics()
    m.observe(defined("spot", "BTCUSDT", "spot", "1"))
    m.observe(defined("perp", "BTCUSDT", "linear", "1"))
    m.observe(quote("spot", "99", "101"))
    m.observe(quote("perp", "101", "103"))
    m.observe(fill(1, Side.SELL, "1", "100", "0", venue="spot"))
    m.observe(fill(1, Side.BUY, "0.75", "102", "0", venue="perp"))
    exposure = m.summary(D(1000))["unhedged_exposure"]
    assert exposure == {"BTC": {"net_quantity": "-0.25", "gross_quantity": "1.75", "net_notional": "-23.5"}}


def test_an_instrument_without_definition_is_listed_under_its_own_name_not_guessed() -> None:
    m = BacktestMetrics()
    m.observe(fill(1, Side.BUY, "1", "100", "0", venue="spot"))
    (row,) = m.summary(D(1000))["end_inventory"]
    assert row["asset"] == "BTCUSDT"


def defined(venue: str, instrument: str, kind: str, contract_size: str) -> InstrumentDefined:
    return InstrumentDefined(envelope=env(0), venue=venue, instrument=instrument, base="BTC", quote="USD",
                             settlement="BTC" if kind == "inverse" else "USDT", kind=kind,  # type: ignore[arg-type]
                             contract_size=D(contract_size), tick_size=D("0.1"), lot_size=D(1), min_notional=D(0),
                             maker_fee_bps=D(0), taker_fee_bps=D(0))  # fmt: skip


def test_inverse_contracts_by_hand() -> None:
    # 10 BTCUSD_PERP contracts of 100 USD: long at 50,000, out at 55,000. In BTC: 1,000 * (1/50,000 -
    # 1/55,000) = 0.0018181.. BTC, worth 100 USD at the exit price; minus 0.5 USD of fees.
    m = BacktestMetrics()
    m.observe(defined("coinm", "BTCUSD_PERP", "inverse", "100"))
    m.observe(fill_of("coinm", "BTCUSD_PERP", 1, Side.BUY, "10", "50000", "0.2"))
    m.observe(fill_of("coinm", "BTCUSD_PERP", 2, Side.SELL, "4", "55000", "0.3"))
    (trip,) = m.round_trips.trips
    assert trip.entry_price == D(50000) and trip.pnl == D("40") - D("0.08") - D("0.3")  # 4 of 10: 40 USD
    # Six contracts (600 USD) left; at a mid of 60,000 that is 0.01 BTC long.
    m.observe(QuoteTick(envelope=env(3), venue="coinm", instrument="BTCUSD_PERP", bid_price=D(59999),
                        bid_size=D(1), ask_price=D(60001), ask_size=D(1)))  # fmt: skip
    (row,) = m.end_inventory()
    assert row["quantity"] == "6" and D(row["base_quantity"]) == D("0.01") and D(row["notional"]) == D(600)


def test_linear_contract_size_scales_pnl_and_inventory() -> None:
    m = BacktestMetrics()
    m.observe(defined("um", "BTCUSDT", "linear", "0.001"))
    m.observe(fill_of("um", "BTCUSDT", 1, Side.SELL, "1000", "100", "0"))
    m.observe(fill_of("um", "BTCUSDT", 2, Side.BUY, "400", "90", "0"))
    assert m.round_trips.trips[0].pnl == D(4)  # 400 contracts = 0.4 BTC short, 10 USD a BTC
    assert m.end_inventory()[0]["base_quantity"] == "-0.6"


def test_rejections_are_broken_down_by_rule() -> None:
    m = BacktestMetrics()
    for rule in ("max_position", "kill_switch", "max_position"):
        m.observe(
            RiskCheckRejected(envelope=env(1), order_id=uuid.uuid4(), rule=rule, limit=D(1), actual=D(2))
        )
    summary = m.summary(D(1000))
    assert summary["risk_rejections"] == 3
    assert summary["risk_rejections_by_rule"] == {"kill_switch": 1, "max_position": 2}


def test_drawdown_from_the_running_peak() -> None:
    equity = [(i, D(v)) for i, v in enumerate(["100", "110", "99", "105", "88", "120", "114"])]
    # peaks 100, 110, 110, 110, 110, 120, 120 -> drawdowns 0, 0, 0.1, 0.04545.., 0.2, 0, 0.05
    assert drawdown_series(equity) == pytest.approx([0, 0, 0.1, 5 / 110, 0.2, 0, 0.05])
    assert max_drawdown(equity) == pytest.approx(0.2)
    assert max_drawdown([]) == 0.0


def test_sharpe_is_not_reported_on_a_two_minute_run() -> None:
    equity = [(0, D(100_000)), (60 * SECOND, D(99_999)), (120 * SECOND, D(99_998))]
    sharpe, sortino, horizon = risk_adjusted(equity)
    assert sharpe is None and sortino is None
    assert horizon == f"n/a: 2 one-minute returns over 2m0s (Sharpe/Sortino need at least {MIN_RETURNS})"


def test_sharpe_from_enough_minute_returns_by_hand() -> None:
    # 60 minute returns alternating +1% and -0.5%: mean 0.0025, sample std 0.0075 * sqrt(60/59);
    # Sortino: downside deviation sqrt(30 * 0.005^2 / 60) = 0.005 / sqrt(2).
    values = [D(100)]
    for i in range(MIN_RETURNS):
        values.append(values[-1] * (D("1.01") if i % 2 == 0 else D("0.995")))
    equity = [(i * 60 * SECOND, v) for i, v in enumerate(values)]
    sharpe, sortino, horizon = risk_adjusted(equity)
    per_year = (365 * 24 * 60) ** 0.5
    assert sharpe == pytest.approx(0.0025 / (0.0075 * (60 / 59) ** 0.5) * per_year, rel=1e-9)
    assert sortino == pytest.approx(0.0025 / (0.005 / 2**0.5) * per_year, rel=1e-9)
    assert horizon == "annualised from 60 one-minute returns over 1h0s"


def test_summary_of_a_run_without_trades_says_so() -> None:
    summary = BacktestMetrics().summary(D(1000))
    assert summary["trades"] == 0 and summary["hit_ratio"] is None and summary["avg_pnl_per_trade"] is None
    assert summary["max_drawdown_fraction"] == 0.0 and summary["sharpe_annualized"] is None


def test_an_orders_arrival_mid_is_the_last_quote_of_the_view_it_follows() -> None:
    """Slippage by hand: the run's view holds bid 99 / ask 101 (mid 100) when the buy is derived; filled at
    100.5 = 50 bps paid over mid. A quote the metrics are shown afterwards does not move that mid."""
    view = ReferenceMarketView()
    view.apply(quote("spot", "99", "101"))
    m = BacktestMetrics()
    m.follow(view)
    order_id = uuid.uuid4()
    m.observe(PlaceOrder(envelope=env(1), order_id=order_id, account="acc", strategy_id="s1", venue="spot",
                         instrument="BTCUSDT", side=Side.BUY, order_type=OrderType.MARKET,
                         time_in_force=TimeInForce.IOC, quantity=D("1"), leg_group_id=order_id))  # fmt: skip
    m.observe(quote("spot", "199", "201"))  # shown to the metrics, not applied to the run's view
    m.observe(fill(2, Side.BUY, "1", "100.5", "0").model_copy(update={"order_id": order_id}))
    assert m.legs["spot"].as_dict()["avg_slippage_bps"] == pytest.approx(50.0)
