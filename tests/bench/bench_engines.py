"""nautilus_trader and backtrader on the same quotes: the bookTicker lines of the spot and USD-M captures.

Both get the same strategy as ours, in each engine's idiom: keep the last quote per venue; when one venue's
bid exceeds the other's ask by both taker fees + min edge (1 + 1.7 + 0.5 bps), both quotes are fresher than
0.5 s and the 2 s cooldown has passed, buy 0.05 BTC at market on the cheap venue and sell on the rich one.
Loading and converting the quotes is not timed; only the engine's run is (like ours with decode excluded).
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from bench_ours import PAIR

THRESHOLD = (1.0 + 1.7 + 0.5) / 10_000
QTY = 0.05
COOLDOWN_NS = 2_000_000_000
MAX_AGE_NS = 500_000_000
FEES = {"SPOT": Decimal("0.0001"), "USDM": Decimal("0.00017")}


def load_quotes() -> dict[str, list[tuple[int, float, float, float, float]]]:
    """venue -> [(receive_ns, bid, bid_size, ask, ask_size)] in file order (= receive-time order)."""
    quotes: dict[str, list[tuple[int, float, float, float, float]]] = {}
    for path, venue in zip(PAIR, ("SPOT", "USDM"), strict=True):
        rows = quotes.setdefault(venue, [])
        with gzip.open(path, "rt") as fh:
            for line in fh:
                head, _, body = line.partition(" ")
                if "@bookTicker" not in body:
                    continue
                d = json.loads(body)["data"]
                rows.append((int(head), float(d["b"]), float(d["B"]), float(d["a"]), float(d["A"])))
    return quotes


class _Edge:
    """The per-quote bookkeeping both strategies share (floats: each engine's natural idiom)."""

    def __init__(self) -> None:
        self.last: dict[str, tuple[int, float, float]] = {}
        self.next_allowed = 0
        self.signals = 0

    def on_quote(self, venue: str, ts: int, bid: float, ask: float) -> tuple[str, str] | None:
        self.last[venue] = (ts, bid, ask)
        if len(self.last) < 2 or ts < self.next_allowed:
            return None
        (ta, bid_a, ask_a), (tb, bid_b, ask_b) = self.last["SPOT"], self.last["USDM"]
        if ts - ta > MAX_AGE_NS or ts - tb > MAX_AGE_NS:
            return None
        if bid_a > ask_b * (1 + THRESHOLD):
            legs = ("USDM", "SPOT")  # buy USDM, sell SPOT
        elif bid_b > ask_a * (1 + THRESHOLD):
            legs = ("SPOT", "USDM")
        else:
            return None
        self.signals += 1
        self.next_allowed = ts + COOLDOWN_NS
        return legs


def nautilus() -> dict[str, Any]:
    from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
    from nautilus_trader.config import LoggingConfig, StrategyConfig
    from nautilus_trader.model.currencies import BTC, USDT
    from nautilus_trader.model.data import QuoteTick
    from nautilus_trader.model.enums import AccountType, OmsType, OrderSide
    from nautilus_trader.model.identifiers import InstrumentId, Symbol, TraderId, Venue
    from nautilus_trader.model.instruments import CurrencyPair
    from nautilus_trader.model.objects import Money, Price, Quantity
    from nautilus_trader.trading.strategy import Strategy

    size_precision = {"SPOT": 5, "USDM": 3}

    def instrument(venue: str) -> CurrencyPair:
        return CurrencyPair(
            instrument_id=InstrumentId(Symbol("BTCUSDT"), Venue(venue)), raw_symbol=Symbol("BTCUSDT"),
            base_currency=BTC, quote_currency=USDT, price_precision=2, size_precision=size_precision[venue],
            price_increment=Price(0.01, 2), size_increment=Quantity(10 ** -size_precision[venue],
                                                                    size_precision[venue]),
            lot_size=None, max_quantity=None, min_quantity=None, max_notional=None, min_notional=None,
            max_price=None, min_price=None, margin_init=Decimal(0), margin_maint=Decimal(0),
            maker_fee=Decimal(0), taker_fee=FEES[venue], ts_event=0, ts_init=0,
        )  # fmt: skip

    class SpreadConfig(StrategyConfig, frozen=True):
        spot: str
        usdm: str

    class Spread(Strategy):
        def __init__(self, config: SpreadConfig) -> None:
            super().__init__(config)
            self.ids = {"SPOT": InstrumentId.from_str(config.spot), "USDM": InstrumentId.from_str(config.usdm)}
            self.venue_of = {v: k for k, v in self.ids.items()}
            self.edge = _Edge()
            self.quotes = 0
            self.qty = {k: Quantity(QTY, size_precision[k]) for k in self.ids}

        def on_start(self) -> None:
            for instrument_id in self.ids.values():
                self.subscribe_quote_ticks(instrument_id)

        def on_quote_tick(self, tick: QuoteTick) -> None:
            self.quotes += 1
            venue = self.venue_of[tick.instrument_id]
            legs = self.edge.on_quote(venue, tick.ts_event, tick.bid_price.as_double(), tick.ask_price.as_double())
            if legs is not None:
                buy, sell = legs
                for leg, side in ((buy, OrderSide.BUY), (sell, OrderSide.SELL)):
                    self.submit_order(self.order_factory.market(self.ids[leg], side, self.qty[leg]))

    quotes = load_quotes()
    engine = BacktestEngine(BacktestEngineConfig(trader_id=TraderId("BENCH-001"),
                                                 logging=LoggingConfig(log_level="ERROR")))  # fmt: skip
    ids = {}
    for venue, rows in quotes.items():
        engine.add_venue(Venue(venue), OmsType.NETTING, AccountType.MARGIN, [Money(50_000, USDT)],
                         base_currency=None, default_leverage=Decimal(1))  # fmt: skip
        inst = instrument(venue)
        engine.add_instrument(inst)
        ids[venue] = inst.id
        sp = size_precision[venue]
        engine.add_data([QuoteTick(inst.id, Price(b, 2), Price(a, 2), Quantity(bs, sp), Quantity(as_, sp), ts, ts)
                         for ts, b, bs, a, as_ in rows])  # fmt: skip
    strategy = Spread(SpreadConfig(spot=str(ids["SPOT"]), usdm=str(ids["USDM"])))
    engine.add_strategy(strategy)
    started = time.perf_counter()
    engine.run()
    seconds = time.perf_counter() - started
    fills = sum(1 for o in engine.cache.orders() if o.filled_qty > 0)
    engine.dispose()
    return {"events": strategy.quotes, "seconds": seconds, "signals": strategy.edge.signals, "orders_filled": fills}


def backtrader() -> dict[str, Any]:
    import backtrader as bt
    import pandas as pd

    class QuoteData(bt.feeds.PandasData):
        lines = ("bid", "ask")
        params = (("bid", "bid"), ("ask", "ask"), ("openinterest", None))

    class Spread(bt.Strategy):
        def __init__(self) -> None:
            self.edge = _Edge()
            self.quotes = 0
            self.seen = {d._name: -1 for d in self.datas}

        def next(self) -> None:
            for data in self.datas:  # a feed that advanced this step delivered a new quote
                length = len(data)
                if length == self.seen[data._name]:
                    continue
                self.seen[data._name] = length
                self.quotes += 1
                ts = int(bt.num2date(data.datetime[0]).timestamp() * 1e9)
                legs = self.edge.on_quote(data._name, ts, data.bid[0], data.ask[0])
                if legs is not None:
                    by_name = {d._name: d for d in self.datas}
                    self.buy(data=by_name[legs[0]], size=QTY)
                    self.sell(data=by_name[legs[1]], size=QTY)

    cerebro = bt.Cerebro(stdstats=False)
    for venue, rows in load_quotes().items():
        frame = pd.DataFrame(rows, columns=["ns", "bid", "bid_size", "ask", "ask_size"])
        frame.index = pd.to_datetime(frame.pop("ns"), unit="ns")
        mid = (frame["bid"] + frame["ask"]) / 2
        frame = frame.assign(open=mid, high=frame["ask"], low=frame["bid"], close=mid, volume=frame["bid_size"])
        cerebro.adddata(QuoteData(dataname=frame), name=venue)
        cerebro.broker.setcommission(commission=float(FEES[venue]), name=venue)
    cerebro.broker.setcash(100_000)
    cerebro.addstrategy(Spread)
    started = time.perf_counter()
    strategy = cerebro.run()[0]
    seconds = time.perf_counter() - started
    return {"events": strategy.quotes, "seconds": seconds, "signals": strategy.edge.signals}


WORKERS: dict[str, Callable[[], dict[str, Any]]] = {"nautilus": nautilus, "backtrader": backtrader}
