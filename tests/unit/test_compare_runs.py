"""`cse compare` on two small sessions written through the event log, every expected number worked out by
hand below (a trader can redo them on paper).

Venues: binance-spot (spot BTCUSDT) and binance-usdm (linear BTCUSDT, 1 BTC per contract), both settled in
USDT. Marks: the backtest's last quotes, spot 100/102 -> mid 101, usdm 107/109 -> mid 108 (the live session's
own last quote, spot mid 50, must not be used: one common mark).

Backtest (simulated venue, 5 ms + 5 ms assumed), one spread signal at t=1.000 s (buy spot 100, sell usdm 110):
  B1 buy  spot 2 @ 100, fee 0.2      gross at mark 2*(101-100)   =  2      pnl  1.8
  B2 sell usdm 2 @ 110, fee 0.11     gross -2*(108-110)          =  4      pnl  3.89
  B3 buy  spot 1 @ 104, fee 0.104 (t=5 s, its own signal at 104)  gross 1*(101-104) = -3   pnl -3.104
  total 2.586
Live, signal at t=1.030 s (buy spot 100.5, sell usdm 109.5):
  L1 buy  spot 2: 1 @ 100.5 (fee 0.1005) + 1 @ 101 (fee 0.101); the first fill is delivered twice (same
     venue trade id: counted once). cost 201.5, gross 2*101-201.5 = 0.5, fees 0.2015, pnl 0.2985
  L2 sell usdm 2: 1.5 @ 109 (fee 0.08175), rest canceled. gross -1.5*108+1.5*109 = 1.5, pnl 1.41825
  L4 sell spot 1 @ 99 (fee 0.099), t=7 s, its own signal at 99: gross -101+99 = -2, pnl -2.099
  total -0.38225
Matching (default tolerance 1 s): L1-B1 and L2-B2 (30 ms apart, same venue and side); B3 (spot buy at 5 s)
is 3.97 s from L1 and L1 is taken: only in the backtest; L4 (spot sell): only in live.

PnL difference live - backtest = -0.38225 - 2.586 = -2.96825, in parts:
  only in live      L4: -2.099
  only in backtest  -B3: +3.104
  L1/B1  quantity: live quantity at backtest prices 2*(101-100) = 2, minus backtest 2        =  0
         decision: 2 bought at 100.5 instead of 100: 2*(100-100.5)                          = -1
         slippage: price part (0.5-2 = -1.5) minus decision; live avg 100.75 vs 100.5, 2*0.25 = -0.5
         fees: 0.2 - 0.2015                                                                  = -0.0015
  L2/B2  quantity: 1.5 sold at 110 marked at 108 = 3, minus backtest 4                       = -1
         decision: 1.5 sold at 109.5 instead of 110: 1.5*(109.5-110)                         = -0.75
         slippage: price part (1.5-4) - (-1) = -1.5, minus decision; sold 109 vs 109.5: 1.5*0.5 = -0.75
         fees: 0.11 - 0.08175                                                                = 0.02825
  quantity -1, decision price -1.75, slippage -1.25, fees 0.02675; sum -2.96825.

Round trips (FIFO, as the backtest report counts them): live L4 sells 1 spot against the first lot of L1
(1 @ 100.5, fee 0.1005): (99 - 100.5) * 1 - 0.1005 - 0.099 = -1.6995; the backtest only adds to positions.
"""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from adapters.entrypoints.cli import main
from adapters.sqlite_event_log import SqliteEventLog
from application.compare_runs import compare_sessions
from application.ports import LogRecord
from domain.events import (
    Envelope,
    EventBase,
    InstrumentDefined,
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderPartiallyFilled,
    PlaceOrder,
    QuoteTick,
    SessionStarted,
    SpreadOpportunityDetected,
    encode,
)
from domain.values import Liquidity, OrderType, Side, TimeInForce

pytestmark = pytest.mark.unit

S = 1_000_000_000
MS = 1_000_000
LIVE, BACKTEST = "live-1", "live-1.bt"


class Writer:
    def __init__(self, log: SqliteEventLog, session: str) -> None:
        self.log, self.session, self.sequence = log, session, 0

    def envelope(self, time_ns: int) -> Envelope:
        self.sequence += 1
        return Envelope(event_id=uuid.uuid5(uuid.NAMESPACE_OID, f"{self.session}/{self.sequence}"),
                        session_id=self.session, sequence=self.sequence, event_time_ns=time_ns,
                        ingest_time_ns=time_ns, source="test")  # fmt: skip

    def add(self, stream: str, event: EventBase) -> None:
        record = LogRecord(stream, stream, event.type, event.envelope.event_time_ns, encode(event))
        self.log.append(self.session, [record])

    def market(self, spot_mid_edges: tuple[str, str], usdm_edges: tuple[str, str], end_ns: int) -> None:
        for venue, kind, (bid, ask) in (("binance-spot", "spot", spot_mid_edges),
                                        ("binance-usdm", "linear", usdm_edges)):  # fmt: skip
            stream = f"md.{venue}.BTCUSDT"
            self.add(stream, InstrumentDefined(
                envelope=self.envelope(0), venue=venue, instrument="BTCUSDT", base="BTC", quote="USDT",
                settlement="USDT", kind=kind, contract_size=Decimal(1), tick_size=Decimal("0.01"),
                lot_size=Decimal("0.001"), min_notional=Decimal(5), maker_fee_bps=Decimal(2),
                taker_fee_bps=Decimal(5)))  # fmt: skip
            self.add(stream, QuoteTick(envelope=self.envelope(end_ns), venue=venue, instrument="BTCUSDT",
                                       bid_price=Decimal(bid), bid_size=Decimal(1), ask_price=Decimal(ask),
                                       ask_size=Decimal(1)))  # fmt: skip

    def started(self, mode: str, latency_ns: int | None) -> None:
        config = (
            {} if latency_ns is None else {"order_latency_ns": latency_ns, "response_latency_ns": latency_ns}
        )
        parameters = json.dumps({"config": config, "input_session": "capture"})
        self.add("session", SessionStarted(envelope=self.envelope(0), mode=mode, config_hash="h", model_hash="",
                                           code_version="test", parameters=parameters))  # fmt: skip

    def signal(self, t: int, buy: tuple[str, str] | None, sell: tuple[str, str] | None) -> uuid.UUID:
        opportunity = uuid.uuid5(uuid.NAMESPACE_OID, f"{self.session}/signal/{t}")
        self.add("derived", SpreadOpportunityDetected(
            envelope=self.envelope(t), opportunity_id=opportunity, strategy_id="spread", instrument="BTCUSDT",
            buy_venue=buy[0] if buy else "binance-usdm", sell_venue=sell[0] if sell else "binance-usdm",
            buy_price=Decimal(buy[1] if buy else "1"), sell_price=Decimal(sell[1] if sell else "1"),
            quantity=Decimal(2), gross_edge_bps=Decimal(1), net_edge_bps=Decimal(1)))  # fmt: skip
        return opportunity

    def order(self, t: int, group: uuid.UUID, venue: str, side: Side, quantity: str, limit: str) -> uuid.UUID:
        order_id = uuid.uuid5(group, f"{venue}/{side}")
        self.add("derived", PlaceOrder(
            envelope=self.envelope(t), order_id=order_id, account="acct", strategy_id="spread", venue=venue,
            instrument="BTCUSDT", side=side, order_type=OrderType.LIMIT, time_in_force=TimeInForce.IOC,
            quantity=Decimal(quantity), limit_price=Decimal(limit), leg_group_id=group))  # fmt: skip
        return order_id

    def answer(self, stream: str, event_type: type[Any], t: int, order_id: uuid.UUID, venue: str,
               **fields: Any) -> None:  # fmt: skip
        self.add(stream, event_type(envelope=self.envelope(t), order_id=order_id, venue=venue, **fields))

    def fill(self, stream: str, event_type: type[Any], t: int, order_id: uuid.UUID, venue: str, side: Side,
             price: str, quantity: str, fee: str, trade: str, cumulative: str, leaves: str) -> None:  # fmt: skip
        self.answer(stream, event_type, t, order_id, venue, exchange_time_ns=t - 5 * MS, instrument="BTCUSDT",
                    side=side, price=Decimal(price), quantity=Decimal(quantity), fee=Decimal(fee),
                    fee_currency="USDT", liquidity=Liquidity.TAKER, venue_trade_id=trade,
                    cumulative_quantity=Decimal(cumulative), leaves_quantity=Decimal(leaves))  # fmt: skip


def write_sessions(path: Path) -> None:
    with SqliteEventLog(path) as log:
        bt = Writer(log, BACKTEST)
        bt.started("backtest", 5 * MS)
        bt.market(("100", "102"), ("107", "109"), 9 * S)
        g = bt.signal(1 * S, ("binance-spot", "100"), ("binance-usdm", "110"))
        b1 = bt.order(1 * S, g, "binance-spot", Side.BUY, "2", "100")
        b2 = bt.order(1 * S, g, "binance-usdm", Side.SELL, "2", "110")
        for oid, venue in ((b1, "binance-spot"), (b2, "binance-usdm")):
            bt.answer("derived", OrderAccepted, 1 * S + 10 * MS, oid, venue, venue_order_id=str(oid)[:8])
        bt.fill("derived", OrderFilled, 1 * S + 10 * MS, b1, "binance-spot", Side.BUY, "100", "2", "0.2", "b1",
                "2", "0")  # fmt: skip
        bt.fill("derived", OrderFilled, 1 * S + 10 * MS, b2, "binance-usdm", Side.SELL, "110", "2", "0.11", "b2",
                "2", "0")  # fmt: skip
        g3 = bt.signal(5 * S, ("binance-spot", "104"), None)
        b3 = bt.order(5 * S, g3, "binance-spot", Side.BUY, "1", "104")
        bt.answer("derived", OrderAccepted, 5 * S + 10 * MS, b3, "binance-spot", venue_order_id="b3")
        bt.fill("derived", OrderFilled, 5 * S + 10 * MS, b3, "binance-spot", Side.BUY, "104", "1", "0.104", "b3",
                "1", "0")  # fmt: skip

        live = Writer(log, LIVE)
        live.started("live", None)
        live.market(("49", "51"), ("49", "51"), 9 * S)  # never the mark: the backtest's quotes are
        t = 1 * S + 30 * MS
        g = live.signal(t, ("binance-spot", "100.5"), ("binance-usdm", "109.5"))
        l1 = live.order(t, g, "binance-spot", Side.BUY, "2", "101")
        l2 = live.order(t, g, "binance-usdm", Side.SELL, "2", "109.5")
        venue_stream = "venue"  # a live session records the exchange's answers as inputs
        live.answer(venue_stream, OrderAccepted, t + 45 * MS, l1, "binance-spot", venue_order_id="x1",
                    exchange_time_ns=t + 20 * MS)  # fmt: skip
        live.answer(venue_stream, OrderAccepted, t + 45 * MS, l2, "binance-usdm", venue_order_id="x2")
        for _ in range(2):  # delivered twice (a reconnect): one fill
            live.fill(venue_stream, OrderPartiallyFilled, t + 50 * MS, l1, "binance-spot", Side.BUY, "100.5", "1",
                      "0.1005", "t1", "1", "1")  # fmt: skip
        live.fill(venue_stream, OrderFilled, t + 60 * MS, l1, "binance-spot", Side.BUY, "101", "1", "0.101", "t2",
                  "2", "0")  # fmt: skip
        live.fill(venue_stream, OrderPartiallyFilled, t + 50 * MS, l2, "binance-usdm", Side.SELL, "109", "1.5",
                  "0.08175", "t3", "1.5", "0.5")  # fmt: skip
        live.answer(venue_stream, OrderCanceled, t + 70 * MS, l2, "binance-usdm", reason="IOC remainder")
        g4 = live.signal(7 * S, None, ("binance-spot", "99"))
        l4 = live.order(7 * S, g4, "binance-spot", Side.SELL, "1", "99")
        live.answer(venue_stream, OrderAccepted, 7 * S + 40 * MS, l4, "binance-spot", venue_order_id="x4")
        live.fill(venue_stream, OrderFilled, 7 * S + 40 * MS, l4, "binance-spot", Side.SELL, "99", "1", "0.099",
                  "t4", "1", "0")  # fmt: skip
        log.append("capture", [LogRecord("md.x", "k", "market.quote", 0, b"{}")])  # an import: no orders


def test_hand_computed_differences(tmp_path: Path) -> None:
    write_sessions(tmp_path / "events.sqlite")
    with SqliteEventLog(tmp_path / "events.sqlite") as log:
        report = compare_sessions(log, LIVE, BACKTEST).as_dict()
    assert report["marks"] == {
        "binance-spot:BTCUSDT": {"mid": "101", "from_session": BACKTEST},
        "binance-usdm:BTCUSDT": {"mid": "108", "from_session": BACKTEST},
    }
    assert report["live"]["pnl_at_mark"] == {"USDT": "-0.38225"}
    assert report["backtest"]["pnl_at_mark"] == {"USDT": "2.586"}
    assert report["pnl_difference"] == {"USDT": {
        "orders_only_in_live": "-2.099", "orders_only_in_backtest": "3.104", "quantity": "-1",
        "decision_price": "-1.75", "slippage": "-1.25", "fees": "0.02675", "total": "-2.96825"}}  # fmt: skip
    assert report["matching"]["pairs"] == 2
    assert (report["matching"]["only_in_live"], report["matching"]["only_in_backtest"]) == (1, 1)
    # latency: the backtest assumed 5 + 5 ms and saw 10 ms; live assumed nothing and saw 45 ms
    assert report["backtest"]["assumed_latency_ns"] == {"order": 5 * MS, "response": 5 * MS}
    assert report["live"]["assumed_latency_ns"] == {"order": None, "response": None}
    assert report["live"]["seen_response_latency_ns"] == {
        "median": 45 * MS,
        "max": 45 * MS,
        "orders_answered": 3,
    }
    assert (report["live"]["partially_filled"], report["live"]["filled"]) == (1, 2)
    assert (report["live"]["round_trips"], report["live"]["round_trip_pnl"]) == (1, "-1.6995")
    assert (report["backtest"]["round_trips"], report["backtest"]["round_trip_pnl"]) == (0, "0")

    by_order = {
        (o["venue"], o["side"], o["live"] is not None, o["backtest"] is not None): o for o in report["orders"]
    }
    o1 = by_order[("binance-spot", "buy", True, True)]
    assert o1["placed_apart_ns"] == 30 * MS
    assert (
        o1["live"]["avg_price"] == "100.75" and o1["live"]["fills"] == 2
    )  # the duplicate delivery counted once
    assert o1["price_difference"] == "0.75"
    assert (o1["live"]["slippage"], o1["backtest"]["slippage"], o1["slippage_difference"]) == (
        "0.25",
        "0",
        "0.25",
    )
    assert o1["live"]["slippage_bps"] == "24.8756"  # 0.25 / 100.5 * 10000 = 24.87562...
    assert o1["fee_difference"] == "0.0015"
    assert (o1["live"]["response_latency_ns"], o1["live"]["venue_latency_ns"]) == (45 * MS, 20 * MS)
    assert o1["response_latency_difference_ns"] == 35 * MS
    assert o1["pnl_difference"] == {"currency": "USDT", "total": "-1.5015", "quantity": "0", "decision_price": "-1",
                                    "slippage": "-0.5", "fees": "-0.0015"}  # fmt: skip
    o2 = by_order[("binance-usdm", "sell", True, True)]
    assert o2["live"]["status"] == "canceled" and o2["filled_quantity_difference"] == "-0.5"
    assert (o2["price_difference"], o2["slippage_difference"], o2["fee_difference"]) == (
        "-1",
        "0.5",
        "-0.02825",
    )
    assert o2["pnl_difference"]["total"] == "-2.47175"
    assert by_order[("binance-spot", "buy", False, True)]["pnl_difference"]["total"] == "3.104"
    assert by_order[("binance-spot", "sell", True, False)]["pnl_difference"]["total"] == "-2.099"


def test_cli_text_json_and_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    monkeypatch.setenv("CSE_EVENT_LOG", str(tmp_path / "events.sqlite"))
    write_sessions(tmp_path / "events.sqlite")
    assert main(["compare", LIVE, BACKTEST, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["pnl_difference"]["USDT"]["total"] == "-2.96825"
    assert main(["compare", LIVE, BACKTEST]) == 0
    out = capsys.readouterr().out
    assert "2 pairs, 1 only in live, 1 only in the backtest" in out and "-2.96825" in out
    assert "100.75 / 100" in out and "1.5 canceled / 2" in out

    assert main(["compare", "nope", BACKTEST]) == 2
    assert "no session 'nope'" in capsys.readouterr().err
    assert main(["compare", LIVE, "capture"]) == 2
    assert "session 'capture' has no orders" in capsys.readouterr().err
    # 30 ms apart: with a 10 ms tolerance nothing pairs, nothing is compared
    assert main(["compare", LIVE, BACKTEST, "--tolerance-ms", "10"]) == 2
    err = capsys.readouterr().err
    assert "nothing to compare" in err and "Traceback" not in err
