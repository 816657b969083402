"""nautilus_trader on the same quotes: the bookTicker lines of the session's captures (spot and USD-M for the
pair; spot, USD-M and COIN-M for the dense session), one instrument per venue.

The same strategy as ours, in nautilus' idiom (floats): keep the last quote per venue; when the spot and USD-M
bid exceeds the other's ask by both taker fees + min edge (1 + 1.7 + 0.5 bps), both quotes are fresher than
0.5 s and the 2 s cooldown has passed, buy 0.05 BTC at market on the cheap venue and sell on the rich one
(COIN-M quotes are delivered to the strategy and counted, not traded). Loading and building the `QuoteTick`s is
not timed; only `BacktestEngine.run()` is.
"""

from __future__ import annotations

import gzip
import json
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

THRESHOLD = (1.0 + 1.7 + 0.5) / 10_000
QTY = 0.05
COOLDOWN_NS = 2_000_000_000
MAX_AGE_NS = 500_000_000
FEES = {"SPOT": Decimal("0.0001"), "USDM": Decimal("0.00017"), "COINM": Decimal("0.0005")}
PAIR = ("SPOT", "USDM")  # the venues the strategy trades
VENUES = {"spot": "SPOT", "usdm": "USDM", "cm": "COINM"}  # capture folder -> venue
SYMBOLS = {"SPOT": "BTCUSDT", "USDM": "BTCUSDT", "COINM": "BTCUSDPERP"}  # no "_": nautilus reads it as a spread
SIZE_PRECISION = {"SPOT": 5, "USDM": 3, "COINM": 0}
PRICE_PRECISION = {"SPOT": 2, "USDM": 2, "COINM": 1}


def load_quotes(files: list[Path]) -> dict[str, list[tuple[int, float, float, float, float]]]:
    """venue -> [(receive_ns, bid, bid_size, ask, ask_size)] in file order (= receive-time order)."""
    quotes: dict[str, list[tuple[int, float, float, float, float]]] = {}
    for path in files:
        rows = quotes.setdefault(VENUES[path.parent.name], [])
        with gzip.open(path, "rt") as fh:
            for line in fh:
                head, _, body = line.partition(" ")
                if "@bookTicker" not in body:
                    continue
                d = json.loads(body)["data"]
                rows.append((int(head), float(d["b"]), float(d["B"]), float(d["a"]), float(d["A"])))
    return quotes


class _Edge:
    """The strategy's per-quote bookkeeping (floats: the engine's natural idiom); only spot and USD-M trade."""

    def __init__(self) -> None:
        self.last: dict[str, tuple[int, float, float]] = {}
        self.next_allowed = 0
        self.signals = 0

    def on_quote(self, venue: str, ts: int, bid: float, ask: float) -> tuple[str, str] | None:
        self.last[venue] = (ts, bid, ask)
        if venue not in PAIR or any(v not in self.last for v in PAIR) or ts < self.next_allowed:
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


def nautilus(files: list[Path]) -> dict[str, Any]:
    from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
    from nautilus_trader.config import LoggingConfig, StrategyConfig
    from nautilus_trader.model.currencies import BTC, USDT
    from nautilus_trader.model.data import QuoteTick
    from nautilus_trader.model.enums import AccountType, OmsType, OrderSide
    from nautilus_trader.model.identifiers import InstrumentId, Symbol, TraderId, Venue
    from nautilus_trader.model.instruments import CurrencyPair
    from nautilus_trader.model.objects import Money, Price, Quantity
    from nautilus_trader.trading.strategy import Strategy

    size_precision = SIZE_PRECISION

    def instrument(venue: str) -> CurrencyPair:
        pp, sp = PRICE_PRECISION[venue], size_precision[venue]
        return CurrencyPair(
            instrument_id=InstrumentId(Symbol(SYMBOLS[venue]), Venue(venue)), raw_symbol=Symbol(SYMBOLS[venue]),
            base_currency=BTC, quote_currency=USDT, price_precision=pp, size_precision=sp,
            price_increment=Price(10**-pp, pp), size_increment=Quantity(10**-sp, sp),
            lot_size=None, max_quantity=None, min_quantity=None, max_notional=None, min_notional=None,
            max_price=None, min_price=None, margin_init=Decimal(0), margin_maint=Decimal(0),
            maker_fee=Decimal(0), taker_fee=FEES[venue], ts_event=0, ts_init=0,
        )  # fmt: skip

    class SpreadConfig(StrategyConfig, frozen=True):
        instruments: tuple[str, ...]  # one per venue, "SYMBOL.VENUE"

    class Spread(Strategy):
        def __init__(self, config: SpreadConfig) -> None:
            super().__init__(config)
            ids = [InstrumentId.from_str(i) for i in config.instruments]
            self.ids = {i.venue.value: i for i in ids}
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

    quotes = load_quotes(files)
    engine = BacktestEngine(BacktestEngineConfig(trader_id=TraderId("BENCH-001"),
                                                 logging=LoggingConfig(log_level="ERROR")))  # fmt: skip
    ids = {}
    for venue, rows in quotes.items():
        engine.add_venue(Venue(venue), OmsType.NETTING, AccountType.MARGIN, [Money(50_000, USDT)],
                         base_currency=None, default_leverage=Decimal(1))  # fmt: skip
        inst = instrument(venue)
        engine.add_instrument(inst)
        ids[venue] = inst.id
        pp, sp = PRICE_PRECISION[venue], size_precision[venue]
        engine.add_data([QuoteTick(inst.id, Price(b, pp), Price(a, pp), Quantity(bs, sp), Quantity(as_, sp), ts, ts)
                         for ts, b, bs, a, as_ in rows])  # fmt: skip
    strategy = Spread(SpreadConfig(instruments=tuple(str(i) for i in ids.values())))
    engine.add_strategy(strategy)
    started = time.perf_counter()
    engine.run()
    seconds = time.perf_counter() - started
    fills = sum(1 for o in engine.cache.orders() if o.filled_qty > 0)
    engine.dispose()
    return {"quotes": strategy.quotes, "seconds": seconds, "signals": strategy.edge.signals, "orders_filled": fills}



