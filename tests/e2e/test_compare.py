"""`cse compare` on a real recorded capture: the shipped Binance spot + USD-M sample played as the live feed of
a paper session (`cse trade --mode paper`) whose simulated venue is slow (40 ms + 60 ms), then backtested over
that paper session's own market data with the demo's venue latencies (5 ms + 5 ms), and with the paper
session's own. Checked against what nobody here wrote: the marks are the last bookTicker of Binance's own
captures, every number compare reports is recomputed here from the fills the sessions hold, and the round
trips are the backtest report's."""

from __future__ import annotations

import gzip
import json
import re
import uuid
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from adapters.entrypoints.cli import main
from adapters.entrypoints.commands import SAMPLES
from adapters.exchanges.client_ids import client_order_id
from adapters.sqlite_event_log import SqliteEventLog
from domain.events import OrderFillEvent, decode
from tests.e2e.live_support import local_exchange
from tests.local_exchange.orders import OrderDesk
from tests.unit.test_import_safety import head_gz

pytestmark = pytest.mark.e2e

CAPTURES = {"binance-spot": SAMPLES / "hftbacktest" / "spot" / "btcusdt_20240808.gz",
            "binance-usdm": SAMPLES / "hftbacktest" / "usdm" / "btcusdt_20240808.gz"}  # fmt: skip
CONFIG = SAMPLES / "spread-demo.toml"
MS = 1_000_000


def last_book_ticker_mid(capture: Path) -> Decimal:
    """Mid of the capture's last bookTicker message, read from the raw file (not through our importer)."""
    last = None
    with gzip.open(capture, "rt") as lines:
        for line in lines:
            if "@bookTicker" in line:
                last = json.loads(line.split(" ", 1)[1])["data"]
    assert last is not None
    return (Decimal(last["b"]) + Decimal(last["a"])) / 2


def fills_by_order(log: SqliteEventLog, session: str) -> dict[str, list[OrderFillEvent]]:
    fills: dict[str, list[OrderFillEvent]] = defaultdict(list)
    for stored in log.read(session, "derived"):
        event = decode(stored.record.payload)
        if isinstance(event, OrderFillEvent):
            fills[str(event.order_id)].append(event)
    return fills


def pnl_at(fills: dict[str, list[OrderFillEvent]], marks: dict[str, Decimal]) -> Decimal:
    """Cash flows of every fill, minus fees (charged in USDT here), plus what is held at the marks."""
    total = Decimal(0)
    for fill in (f for order in fills.values() for f in order):
        assert fill.fee_currency == "USDT"
        total += fill.side.sign * fill.quantity * (marks[fill.venue] - fill.price) - fill.fee
    return total


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("compare")
    slow = home / "slow.toml"
    text = CONFIG.read_text()
    text = re.sub(r"^order_latency_ns = .*$", "order_latency_ns = 40_000_000", text, flags=re.M)
    slow.write_text(
        re.sub(r"^response_latency_ns = .*$", "response_latency_ns = 60_000_000", text, flags=re.M)
    )
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CSE_HOME", str(home))
        env.delenv("CSE_EVENT_LOG", raising=False)
        assert main(["import", *map(str, CAPTURES.values()), "--session", "capture"]) == 0
        assert main(["trade", "--mode", "paper", "--config", str(slow), "--session", "paper",
                     "--market-session", "capture", "--speed", "0"]) == 0  # fmt: skip
        assert main(["backtest", "--session", "paper", "--config", str(CONFIG), "--id", "bt"]) == 0
        assert main(["backtest", "--session", "paper", "--config", str(slow), "--id", "bt-same"]) == 0
    return home


def compare(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str
) -> Any:
    monkeypatch.setenv("CSE_HOME", str(home))
    monkeypatch.delenv("CSE_EVENT_LOG", raising=False)
    capsys.readouterr()
    assert main(["compare", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_slow_paper_venue_vs_backtest(
    runs: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    report = compare(runs, capsys, monkeypatch, "paper", "bt")
    assert (report["live"]["mode"], report["backtest"]["mode"]) == ("paper", "backtest")
    assert report["notes"] == []  # the backtest ran over the paper session's own market data
    marks = {venue: last_book_ticker_mid(path) for venue, path in CAPTURES.items()}
    assert {k.split(":")[0]: Decimal(v["mid"]) for k, v in report["marks"].items()} == marks

    with SqliteEventLog(runs / "events.sqlite") as log:
        slow, fast = fills_by_order(log, "paper"), fills_by_order(log, "bt")
    assert Decimal(report["live"]["pnl_at_mark"]["USDT"]) == pnl_at(slow, marks)
    assert Decimal(report["backtest"]["pnl_at_mark"]["USDT"]) == pnl_at(fast, marks)
    parts = {k: Decimal(v) for k, v in report["pnl_difference"]["USDT"].items()}
    total = parts.pop("total")
    assert total == pnl_at(slow, marks) - pnl_at(fast, marks) == sum(parts.values())  # to the last digit

    # round trips as the backtest report counts them
    metrics = json.loads((runs / "reports" / "bt" / "metrics.json").read_text())
    assert (report["backtest"]["round_trips"], report["backtest"]["round_trip_pnl"]) == (
        metrics["trades"],
        metrics["round_trip_pnl"],
    )

    # latency: what each simulated venue assumed is what its orders saw
    assert report["live"]["assumed_latency_ns"] == {"order": 40 * MS, "response": 60 * MS}
    assert report["backtest"]["assumed_latency_ns"] == {"order": 5 * MS, "response": 5 * MS}
    pairs = [o for o in report["orders"] if o["live"] and o["backtest"]]
    assert len(pairs) == report["matching"]["pairs"] >= 5, report["matching"]  # enough pairs to mean something
    for order in pairs:
        live, backtest = order["live"], order["backtest"]
        if live["response_latency_ns"] is not None:  # refused by risk: never sent
            assert live["response_latency_ns"] == 100 * MS and backtest["response_latency_ns"] == 10 * MS
        assert abs(order["placed_apart_ns"]) <= 1_000 * MS
        for side, fills in (("live", slow), ("backtest", fast)):
            mine = fills.get(order[side]["order_id"], [])
            assert Decimal(order[side]["filled_quantity"]) == sum((f.quantity for f in mine), Decimal(0))
            assert Decimal(order[side]["fees"]) == sum((f.fee for f in mine), Decimal(0))
    # The slow venue changes what happens: some order filled differently, or only in one run.
    assert any(o["pnl_difference"]["total"] != "0" for o in report["orders"])


def test_paper_and_its_backtest_at_the_same_latency_differ_in_nothing(
    runs: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Live (here paper) and backtest behave the same: same orders, same fills, same fees, same PnL."""
    report = compare(runs, capsys, monkeypatch, "paper", "bt-same")
    assert report["matching"]["only_in_live"] == report["matching"]["only_in_backtest"] == 0
    assert report["matching"]["pairs"] == report["live"]["orders"] > 0
    assert set(report["pnl_difference"]["USDT"].values()) == {"0"}
    assert all(o["placed_apart_ns"] == 0 and o["price_difference"] in (None, "0") for o in report["orders"])
    assert report["live"]["pnl_at_mark"] == report["backtest"]["pnl_at_mark"]


def test_live_session_on_the_local_exchange_vs_its_backtest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A live session (`cse trade --mode live` on the local exchange, every order filling at its limit) against
    a backtest of its own market data: the exchange's fills are the live run's truth (fill at the limit =
    the decision price: no live slippage), and nothing is assumed about a live venue's latency."""
    monkeypatch.setenv("CSE_HOME", str(tmp_path))
    monkeypatch.delenv("CSE_EVENT_LOG", raising=False)
    monkeypatch.setenv("CSE_BINANCE_API_KEY", "local-key")
    monkeypatch.setenv("CSE_BINANCE_API_SECRET", "local-secret")
    captures = [head_gz(path, tmp_path / venue / path.name, 6000) for venue, path in CAPTURES.items()]
    assert main(["import", *map(str, captures), "--session", "capture"]) == 0
    desk = OrderDesk()
    desk.fill_at_limit = True
    with local_exchange(desk) as local:
        bases = [a for v in ("binance", "binanceusdm") for a in ("--api-base", f"{v}={local.api_base(v)}")]
        trade = ["trade", "--mode", "live", "--config", str(CONFIG), "--session", "live", "--market-session"]
        assert main([*trade, "capture", "--speed", "0", "--poll-interval", "0.2", *bases]) == 0
    assert desk.orders, "no order reached the exchange: nothing to compare"
    assert main(["backtest", "--session", "live", "--config", str(CONFIG), "--id", "live.bt"]) == 0
    report = compare(tmp_path, capsys, monkeypatch, "live", "live.bt")

    assert report["live"]["mode"] == "live" and report["notes"] == []
    assert report["live"]["assumed_latency_ns"] == {"order": None, "response": None}
    assert report["live"]["seen_response_latency_ns"]["orders_answered"] == len(desk.orders)
    assert report["matching"]["pairs"] > 0
    with SqliteEventLog(tmp_path / "events.sqlite") as log:
        exchange_fills = [decode(s.record.payload) for v in ("binance-spot", "binance-usdm")
                          for s in log.read("live", f"orders.{v}")]  # fmt: skip
    fills = [f for f in exchange_fills if isinstance(f, OrderFillEvent)]
    assert len(fills) == len(desk.trades) > 0  # every trade the exchange made, recorded once
    # each live order as the exchange saw it: its trades (by client order id) are its fills and fees
    trades: dict[str, list[Any]] = defaultdict(list)
    for trade in desk.trades:
        trades[trade.order.client_id].append(trade)
    exchange_of = {"binance-spot": "binance", "binance-usdm": "binanceusdm"}
    checked = 0
    for order in (o for o in report["orders"] if o["live"] is not None):
        live = order["live"]
        made = trades.get(client_order_id(exchange_of[order["venue"]], uuid.UUID(live["order_id"])), [])
        assert Decimal(live["filled_quantity"]) == sum((t.quantity for t in made), Decimal(0))
        if made:
            assert {t.price for t in made} == {Decimal(live["avg_price"])}  # filled at its limit...
            assert live["slippage"] == "0"  # ...which is the signal's price: no live slippage
            assert Decimal(live["fees"]) == sum((t.commission for t in made), Decimal(0))
            checked += 1
    assert checked > 0
