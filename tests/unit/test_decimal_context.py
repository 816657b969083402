"""One Decimal context for every decision: a backtest of the shipped sample through every decider (book,
strategy, risk, orders, portfolio) and the simulated venues gives the same derived events, byte for byte,
whatever decimal context the caller has set (issue 10 item 5)."""

from __future__ import annotations

import decimal
from pathlib import Path

import pytest

from adapters.entrypoints.commands import load_run_config, simulated_venues
from adapters.importers.binance_ws import import_binance_ws
from adapters.sqlite_event_log import SqliteEventLog
from application.backtest import run_backtest
from application.session_run import RunParameters, market_data_streams
from domain.values import DECIMAL_CONTEXT, decimal_context

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "deploy" / "samples" / "hftbacktest"
CONFIG = ROOT / "deploy" / "samples" / "spread-demo.toml"


def backtest(path: Path) -> list[bytes]:
    with SqliteEventLog(path) as log:
        import_binance_ws(log, "in", [SAMPLE / "spot" / "btcusdt_20240808.gz", SAMPLE / "usdm" / "btcusdt_20240808.gz"],
                          code_version=lambda: "test", echo=None)  # fmt: skip
        parameters = RunParameters("in", market_data_streams(log, "in"), load_run_config(CONFIG))
        run_backtest(log, parameters, "bt", simulated_venues, "test")
        return [r.record.payload for r in log.read("bt", "derived")]


def test_a_hostile_caller_context_changes_no_derived_event(tmp_path: Path) -> None:
    expected = backtest(tmp_path / "calm.sqlite")
    with decimal.localcontext() as hostile:
        hostile.prec = 8
        hostile.rounding = decimal.ROUND_UP
        hostile.traps[decimal.Inexact] = True
        hostile.traps[decimal.Rounded] = True
        got = backtest(tmp_path / "hostile.sqlite")
        assert decimal.getcontext().prec == 8  # the caller's context is left as it was
    assert got == expected
    assert any(b'"type":"order.filled"' in p for p in expected) and any(
        b"equity_sampled" in p for p in expected
    )


def test_the_domain_context_is_fixed_whatever_the_defaults() -> None:
    saved = decimal.DefaultContext.prec
    decimal.DefaultContext.prec = 5
    try:
        with decimal_context() as ctx:
            assert (ctx.prec, ctx.rounding) == (34, decimal.ROUND_HALF_EVEN)
            assert decimal.Decimal(1) / decimal.Decimal(3) == decimal.Decimal("0." + "3" * 34)
            assert ctx.traps[decimal.InvalidOperation] and not ctx.traps[decimal.Inexact]
    finally:
        decimal.DefaultContext.prec = saved
    assert DECIMAL_CONTEXT.prec == 34
