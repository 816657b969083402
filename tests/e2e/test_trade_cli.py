"""`cse trade` as a user runs it: a paper session over a recorded feed that replays with zero divergences;
live mode on the local exchange (`--api-base`) whose session replays exactly, and refused with a clear message
when the exchange's credentials are missing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.live_support import local_exchange
from tests.e2e.test_import_cli import SPOT, USDM, Cse
from tests.local_exchange import LocalExchange
from tests.local_exchange.orders import OrderDesk
from tests.unit.test_import_safety import head_gz

pytestmark = pytest.mark.e2e

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "samples" / "spread-demo.toml"


@pytest.fixture
def cse(tmp_path: Path) -> Cse:
    home = tmp_path / "home"
    home.mkdir()
    cse = Cse(home)
    spot = head_gz(SPOT, tmp_path / "spot" / SPOT.name, 4000)
    usdm = head_gz(USDM, tmp_path / "usdm" / USDM.name, 4000)
    assert cse("import", spot, usdm, "--session", "feed").returncode == 0
    return cse


def test_a_paper_session_over_a_recorded_feed_replays_exactly(cse: Cse) -> None:
    run = cse("trade", "--mode", "paper", "--config", CONFIG, "--session", "paper-1", "--market-session", "feed",
              "--speed", "0")  # fmt: skip
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    recorded = cse.holdings()["feed"]
    assert summary["mode"] == "paper" and summary["inputs"] == sum(
        n for s, n in recorded.items() if s.startswith("md.")
    )
    assert summary["derived"] > 0
    replay = cse("replay", "paper-1", "--verify")
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert f"({summary['derived']} events checked: identical" in replay.stdout.replace("(paper): ", "("), (
        replay.stdout
    )
    assert f"recorded digest  {summary['digest']}" in replay.stdout


def test_live_mode_without_credentials_is_refused_naming_the_variables(cse: Cse) -> None:
    for name in ("CSE_BINANCE_API_KEY", "CSE_BINANCE_API_SECRET"):
        cse.env.pop(name, None)
    line = cse.refused("trade", "--mode", "live", "--config", CONFIG, "--session", "live-1",
                       "--market-session", "feed")  # fmt: skip
    assert "needs binance credentials" in line


def test_live_trading_on_the_local_exchange_through_api_base_replays_exactly(cse: Cse) -> None:
    desk = OrderDesk()
    desk.fill_at_limit = True  # every order the strategy sends fills at its price
    with local_exchange(desk) as local:
        cse.env.update(CSE_BINANCE_API_KEY="local-key", CSE_BINANCE_API_SECRET="local-secret-value")
        run = cse("trade", "--mode", "live", "--config", CONFIG, "--session", "live-1", "--market-session", "feed",
                  "--speed", "0", "--poll-interval", "0.2",
                  "--api-base", f"binance={local.api_base('binance')}",
                  "--api-base", f"binanceusdm={local.api_base('binanceusdm')}")  # fmt: skip
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["mode"] == "live" and summary["derived"] > 0
    assert desk.orders, "the strategy sent nothing: the test proves nothing"
    assert len({o.client_id for o in desk.orders}) == len(desk.orders)  # no order placed twice
    sent = sum(v["orders_sent"] for v in summary["venues"].values())
    assert sent == len(desk.orders)
    assert "local-secret-value" not in run.stdout + run.stderr
    replay = cse("replay", "live-1", "--verify")
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert f"recorded digest  {summary['digest']}" in replay.stdout
    held = cse.holdings()["live-1"]
    assert held["orders.binance-spot"] + held["orders.binance-usdm"] >= 2 * len(
        desk.orders
    )  # accepted + filled


def test_paper_trading_on_the_exchanges_live_market_data_records_it_and_replays_exactly(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    cse = Cse(home)
    with LocalExchange(venues=("binance", "binanceusdm"), message_limit=3000) as local:
        run = cse("trade", "--mode", "paper", "--config", CONFIG, "--session", "paper-live", "--symbol", "BTC/USDT",
                  "--duration", "8", "--api-base", f"binance={local.api_base('binance')}",
                  "--api-base", f"binanceusdm={local.api_base('binanceusdm')}")  # fmt: skip
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    held = cse.holdings()
    recorded = {s: n for s, n in held["paper-live.md"].items() if s.startswith("md.")}
    assert sorted(recorded) == ["md.binance-spot.BTCUSDT", "md.binance-usdm.BTCUSDT"]
    assert all(n > 100 for n in recorded.values())  # the definition, a snapshot, then the played updates
    # every market event the recorder recorded went through the trading session, and nothing else did
    traded = {s: n for s, n in held["paper-live"].items() if s.startswith("md.")}
    assert traded == recorded and summary["inputs"] == sum(recorded.values())
    replay = cse("replay", "paper-live", "--verify")
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert f"recorded digest  {summary['digest']}" in replay.stdout
