"""Venue fees default to ccxt's market metadata where a run configuration leaves them out."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from adapters.entrypoints.commands import UserError, load_run_config

pytestmark = pytest.mark.unit

BASE = """
[strategy]
strategy_id = "s"
instrument = "BTCUSDT"
max_order_quantity = "1"
max_notional_per_trade = "1000"
"""


def test_fees_left_out_come_from_ccxt(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text(BASE + '[venues.binance-spot]\n[venues.binance-usdm]\ntaker_bps = "4"\n')
    config = load_run_config(path)
    assert config.venues["binance-spot"].maker_bps == Decimal("10")  # ccxt binance spot: 0.1 %
    assert config.venues["binance-spot"].taker_bps == Decimal("10")
    assert config.venues["binance-usdm"].maker_bps == Decimal("2")  # ccxt binance linear: 0.02 %
    assert config.venues["binance-usdm"].taker_bps == Decimal("4")  # the configured value wins
    assert config.strategy.taker_fee_bps == {"binance-spot": Decimal("10"), "binance-usdm": Decimal("4")}


def test_unknown_venue_without_fees_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text(BASE + "[venues.binance-spot]\n[venues.mystery]\n")
    with pytest.raises(UserError, match="no ccxt fee defaults for venue 'mystery'"):
        load_run_config(path)
