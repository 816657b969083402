"""hftbacktest (PyPI, Rust core) with a numba strategy doing the spread logic, on the same capture files as ours.

Conversion (untimed, `prepare`): every line of a capture becomes hftbacktest rows (`event_dtype`, 64 bytes):
a depth update one row per level (`DEPTH_EVENT`, bid/ask flag), a REST snapshot a clear row plus one
`DEPTH_SNAPSHOT_EVENT` row per level, a trade one `TRADE_EVENT` row (side = aggressor), a bookTicker two
`DEPTH_BBO_EVENT` rows (bid, ask). Both clocks are the line's receive time, the one clock our engine and the
nautilus_trader run use. hftbacktest's Python API builds an L2 book that ignores BBO rows (its fused book is
Rust-only), so the bookTicker rows are local-only: they reach the strategy (a wake) but move no book, and the
strategy reads the best levels of the depth book. Rows are written per capture file as `.npz`
(hftbacktest loads them one after the other while it runs), one asset per venue.

Strategy (`njit`, the same rule as ours and nautilus_trader's): woken on every feed (`wait_next_feed`); keep
the best bid/ask of spot (asset 0) and USD-M (asset 1) from their books; when one venue's bid exceeds the other's
ask by both taker fees + min edge (1 + 1.7 + 0.5 bps), both venues had a feed within 0.5 s and the 2 s cooldown
has passed, buy 0.05 BTC at market on the cheap venue and sell on the rich one. Timed: the strategy loop to the
end of the data (numba compiled beforehand on a slice; not timed). Figures: messages (lines) per second;
the rows it processed are reported too (one message = several rows).
"""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]
FOLDERS = ("spot", "usdm", "cm")  # asset numbers
TICK = {"spot": 0.01, "usdm": 0.1, "cm": 0.1}
LOT = {"spot": 0.00001, "usdm": 0.001, "cm": 1.0}
TAKER = {"spot": 0.0001, "usdm": 0.00017, "cm": 0.0005}
HURDLE = (1.0 + 1.7 + 0.5) / 10_000
QTY = 0.05
COOLDOWN_NS = 2_000_000_000
MAX_AGE_NS = 500_000_000
LATENCY_NS = 1_000_000  # order entry and response latency (constant), like the simulated venue's


def prepare(files: list[Path], out: Path) -> dict[str, Any]:
    """Convert the capture files to hftbacktest rows under `out/<folder>/<n>.npz`; returns counts."""
    from hftbacktest import (
        BUY_EVENT,
        DEPTH_BBO_EVENT,
        DEPTH_CLEAR_EVENT,
        DEPTH_EVENT,
        DEPTH_SNAPSHOT_EVENT,
        EXCH_EVENT,
        LOCAL_EVENT,
        SELL_EVENT,
        TRADE_EVENT,
    )  # fmt: skip
    from hftbacktest.types import event_dtype

    both = EXCH_EVENT | LOCAL_EVENT
    messages = rows = 0
    for n, path in enumerate(files):
        target = out / path.parent.name / f"{n:03d}.npz"
        buf = np.empty(4_000_000, event_dtype)
        i = 0
        with gzip.open(path, "rb") as fh:
            for line in fh:
                head, _, body = line.partition(b" ")
                ts = int(head)
                m = json.loads(body)
                messages += 1
                d = m.get("data")
                batch: list[tuple[int, Any, Any]] = []  # (flags, price, quantity) rows of this message
                if d is None:  # the REST snapshot
                    batch.append((both | DEPTH_CLEAR_EVENT, 0, 0))
                    batch += [(both | DEPTH_SNAPSHOT_EVENT | BUY_EVENT, p, q) for p, q in m["bids"]]
                    batch += [(both | DEPTH_SNAPSHOT_EVENT | SELL_EVENT, p, q) for p, q in m["asks"]]
                elif (kind := m["stream"].partition("@")[2]).startswith("depth"):
                    batch += [(both | DEPTH_EVENT | BUY_EVENT, p, q) for p, q in d["b"]]
                    batch += [(both | DEPTH_EVENT | SELL_EVENT, p, q) for p, q in d["a"]]
                elif kind == "trade":
                    batch.append((both | TRADE_EVENT | (SELL_EVENT if d["m"] else BUY_EVENT), d["p"], d["q"]))
                elif kind == "bookTicker":
                    batch.append((LOCAL_EVENT | DEPTH_BBO_EVENT | BUY_EVENT, d["b"], d["B"]))
                    batch.append((LOCAL_EVENT | DEPTH_BBO_EVENT | SELL_EVENT, d["a"], d["A"]))
                for flags, px, qty in batch:
                    buf[i] = (flags, ts, ts, float(px), float(qty), 0, 0, 0.0)
                    i += 1
        target.parent.mkdir(parents=True, exist_ok=True)
        np.savez(target, data=buf[:i])
        rows += i
    return {"messages": messages, "rows": rows}


def prepare_warm_up(files: list[Path], out: Path, lines: int = 2_000) -> None:
    """A few thousand rows of the same venues, to compile the strategy on before the timed run."""
    heads = []
    for path in files:
        head = out / "captures" / path.parent.name / path.name
        head.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(path, "rb") as fin, gzip.open(head, "wb") as fout:
            for _, line in zip(range(lines), fin, strict=False):
                fout.write(line)
        heads.append(head)
    prepare(heads, out)


def _assets(folder_files: dict[str, list[str]]) -> list[Any]:
    from hftbacktest import BacktestAsset

    assets = []
    for folder in FOLDERS:
        if folder not in folder_files:
            continue
        asset = BacktestAsset().data(folder_files[folder])
        asset = asset.inverse_asset(100.0) if folder == "cm" else asset.linear_asset(1.0)  # contract size
        asset = (asset.constant_order_latency(LATENCY_NS, LATENCY_NS).risk_adverse_queue_model()
                 .no_partial_fill_exchange().trading_value_fee_model(0.0, TAKER[folder])
                 .tick_size(TICK[folder]).lot_size(LOT[folder]).last_trades_capacity(0))  # fmt: skip
        assets.append(asset)
    return assets


def _strategy() -> Any:
    from hftbacktest import GTC, MARKET
    from numba import njit

    @njit  # type: ignore[untyped-decorator]
    def spread(hbt: Any, hurdle: float, max_age: int, cooldown: int, qty: float) -> tuple[int, int]:
        next_allowed = 0
        wakes = 0
        signals = 0
        order_id = 1
        while True:
            rc = hbt.wait_next_feed(False, 3_600_000_000_000)
            if rc == 1:  # end of the data
                break
            if rc != 2:
                continue
            wakes += 1
            now = hbt.current_timestamp
            if now < next_allowed:
                continue
            fresh = True
            for asset_no in (0, 1):  # the last feed of each venue (its local receive time) within max_age
                seen = hbt.feed_latency(asset_no)
                if seen is None:
                    fresh = False
                else:
                    _, local_ts = seen
                    fresh = fresh and now - local_ts <= max_age
            if not fresh:
                continue
            d0 = hbt.depth(0)
            d1 = hbt.depth(1)
            bid0, ask0, bid1, ask1 = d0.best_bid, d0.best_ask, d1.best_bid, d1.best_ask
            if not (bid0 > 0 and bid1 > 0 and ask0 < 1e12 and ask1 < 1e12):
                continue
            if bid0 > ask1 * (1 + hurdle):  # buy USD-M, sell spot
                hbt.submit_buy_order(1, order_id, ask1, qty, GTC, MARKET, False)
                hbt.submit_sell_order(0, order_id + 1, bid0, qty, GTC, MARKET, False)
            elif bid1 > ask0 * (1 + hurdle):  # buy spot, sell USD-M
                hbt.submit_buy_order(0, order_id, ask0, qty, GTC, MARKET, False)
                hbt.submit_sell_order(1, order_id + 1, bid1, qty, GTC, MARKET, False)
            else:
                continue
            order_id += 2
            signals += 1
            next_allowed = now + cooldown
            hbt.clear_inactive_orders(0)
            hbt.clear_inactive_orders(1)
        return wakes, signals

    return spread


def run(prepared: Path, warm_up: Path | None = None) -> dict[str, Any]:
    """Time the strategy over the prepared rows (`prepared/<folder>/*.npz`); compile on `warm_up` first."""
    from hftbacktest import HashMapMarketDepthBacktest

    spread = _strategy()

    def files(root: Path) -> dict[str, list[str]]:
        return {f: sorted(str(p) for p in (root / f).glob("*.npz")) for f in FOLDERS if (root / f).is_dir()}

    if warm_up is not None:  # numba compiles on the first call: not part of the measurement
        hbt = HashMapMarketDepthBacktest(_assets(files(warm_up)))
        spread(hbt, HURDLE, MAX_AGE_NS, COOLDOWN_NS, QTY)
        hbt.close()
    hbt = HashMapMarketDepthBacktest(_assets(files(prepared)))
    started = time.perf_counter()
    wakes, signals = spread(hbt, HURDLE, MAX_AGE_NS, COOLDOWN_NS, QTY)
    seconds = time.perf_counter() - started
    filled = [abs(hbt.position(a)) for a in (0, 1)]
    hbt.close()
    return {"seconds": seconds, "wakes": int(wakes), "signals": int(signals), "position_btc": filled}
