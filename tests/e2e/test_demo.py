"""`cse demo` end to end: import, backtest, replay --verify, report files, on an empty working directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DEMO_DIGEST = "ba88bb60fe49f2860cdbe0da169798e60716527a3281cb3d2907cf26413d7e58"
"""The demo backtest's digest, also in the README: a change of any derived byte must be deliberate."""


def test_demo_backtests_and_replays_identically(tmp_path: Path) -> None:
    env = {**os.environ, "CSE_HOME": str(tmp_path)}
    run = subprocess.run([sys.executable, "-m", "adapters.entrypoints.cli", "demo"], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    lines = dict(line.split(None, 1) for line in run.stdout.splitlines() if line.startswith("  ") and " " in line.strip())
    assert "digests equal          True" in run.stdout
    # the backtest ran on the compiled core, the replay on the reference path: equal digests prove them equal
    assert "(compiled market core)" in run.stdout and "replay --verify --reference" in run.stdout
    assert "identical" in run.stdout
    report = Path(lines["report"].strip())
    metrics = json.loads((report.parent / "metrics.json").read_text())
    assert metrics["digest"] == DEMO_DIGEST and DEMO_DIGEST in run.stdout
    assert metrics["opportunities"] > 0
    # Spreads opened when spot is rich are closed as the basis converges (exit_edge_bps): round trips, each
    # losing after the venues' real fees; what is still held at the end is the inventory (hedged in BTC).
    assert metrics["trades"] == len(metrics["round_trips"]) > 0 and metrics["end_inventory"]
    assert metrics["unhedged_exposure"]["BTC"]["gross_quantity"] != "0"
    assert "End inventory" in run.stdout and "performance_horizon" in run.stdout
    # Fees: what each venue charged and where the rates come from, and that the strategy priced its edge
    # with lower taker rates than charged (deliberately: the demo would not trade otherwise).
    assert metrics["fee_rates"] == {
        "binance-spot": {"maker_bps": "10", "taker_bps": "10", "source": "config"},
        "binance-usdm": {"maker_bps": "2", "taker_bps": "5", "source": "config"},
    }
    assert metrics["strategy_prices_edge_with"] == (
        "strategy.taker_fee_bps from the config, not the charged taker rates: "
        "binance-spot 1 (charged 10), binance-usdm 1.7 (charged 5)"
    )
    assert "binance-usdm charged maker 2 / taker 5 bps (config)" in run.stdout
    assert "the strategy priced its edge with strategy.taker_fee_bps from the config" in run.stdout
    assert metrics["input_events"] == 42_866  # 2 minutes of spot + USD-M messages, all imported, + 2 InstrumentDefined
    for name in ("report.html", "equity.png", "drawdown.png", "spread.png"):
        assert (report.parent / name).stat().st_size > 1000
    page = report.read_text()
    assert page.count('src="data:image/png;base64,') == 3  # one self-contained file
    assert "Round trips" in page and "Risk rejections by rule" in page and "End inventory" in page
