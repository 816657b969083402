"""Writes a backtest report: metrics.json, the charts as PNG, and report.html, one self-contained file (the
charts are embedded as data URIs, so the page can be mailed or archived alone).

The page leads with what a trader checks first: PnL and fees, end inventory and unhedged exposure per asset,
round-trip results; then the risk rejections by rule, the charts, the round-trip table and every other figure.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import matplotlib

from application.metrics import drawdown_series

matplotlib.use("Agg")  # no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402

HEADLINE = ("pnl", "fees", "trades", "hit_ratio", "round_trip_pnl", "avg_pnl_per_trade", "max_drawdown_fraction",
            "sharpe_annualized", "sortino_annualized", "performance_horizon")  # fmt: skip
SECTIONED = {"legs", "end_inventory", "unhedged_exposure", "risk_rejections_by_rule", "round_trips"}
CHART_BUCKETS = 2_000
TRADE_COLUMNS = ("entry_time_ns", "exit_time_ns", "venue", "instrument", "direction", "quantity", "entry_price",
                 "exit_price", "fees", "pnl")  # fmt: skip


def write_report(
    out_dir: Path,
    title: str,
    summary: dict[str, Any],
    equity: list[tuple[int, Decimal]],
    spreads: list[tuple[int, float]],
    round_trips: Sequence[Mapping[str, Any]] = (),
) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(
        json.dumps({**summary, "round_trips": list(round_trips)}, indent=2, sort_keys=True) + "\n"
    )
    times = [_utc(t) for t, _ in equity]
    _chart(out_dir / "equity.png", "Equity", times, [float(v) for _, v in equity], "equity (quote currency)")
    _chart(out_dir / "drawdown.png", "Drawdown from peak", times, drawdown_series(equity), "fraction")
    _chart(out_dir / "spread.png", "Detected spread (gross bps)", [_utc(t) for t, _ in spreads],
           [s for _, s in spreads], "bps", marker=".")  # fmt: skip
    headline = [(k, summary[k]) for k in HEADLINE if k in summary]
    others = [(k, v) for k, v in sorted(summary.items()) if k not in SECTIONED and k not in HEADLINE]
    inventory = summary.get("end_inventory", [])
    exposure = [{"asset": asset, **values} for asset, values in summary.get("unhedged_exposure", {}).items()]
    rejections = [
        {"rule": rule, "count": n} for rule, n in summary.get("risk_rejections_by_rule", {}).items()
    ]
    legs = [{"venue": venue, **stats} for venue, stats in summary.get("legs", {}).items()]
    trades = [{**t, "entry_time_ns": _stamp(t["entry_time_ns"]), "exit_time_ns": _stamp(t["exit_time_ns"])}
              for t in round_trips]  # fmt: skip
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{_e(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{text-align:left;padding:2px 8px}}
table.grid{{border-collapse:collapse}}table.grid td,table.grid th{{border:1px solid #ccc}}</style></head>
<body><h1>{_e(title)}</h1>
<table>{_pairs(headline)}</table>
<h2>End inventory</h2>
{_table(inventory, ("venue", "instrument", "asset", "quantity", "base_quantity", "mark", "notional"), "flat: no open position")}
<h3>Unhedged exposure per asset (net over venues)</h3>
{_table(exposure, ("asset", "net_quantity", "gross_quantity", "net_notional"), "none")}
<h2>Risk rejections by rule</h2>
{_table(rejections, ("rule", "count"), "none")}
<h2>Equity</h2>{_img(out_dir / "equity.png", "equity")}
<h2>Drawdown</h2>{_img(out_dir / "drawdown.png", "drawdown")}
<h2>Spread</h2>{_img(out_dir / "spread.png", "spread")}
<h2>Round trips ({len(trades)})</h2>
<p>FIFO per venue and instrument; PnL after the entry and exit fees (see the README, "Backtest report").</p>
{_table(trades, TRADE_COLUMNS, "no position was closed in this run: see the end inventory")}
<h2>Legs</h2>
{_table(legs, ("venue", *sorted({k for leg in legs for k in leg} - {"venue"})), "no orders")}
<h2>Other figures</h2>
<table>{_pairs(others)}</table>
</body></html>
"""
    path = out_dir / "report.html"
    path.write_text(page)
    return path


def _e(value: Any) -> str:
    return html.escape("n/a" if value is None else str(value))


def _pairs(items: Iterable[tuple[str, Any]]) -> str:
    return "\n".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in items)


def _table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], empty: str) -> str:
    if not rows:
        return f"<p>{_e(empty)}</p>"
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "\n".join(
        "<tr>" + "".join(f"<td>{_e(row.get(c))}</td>" for c in columns) + "</tr>" for row in rows
    )
    return f'<table class="grid"><tr>{head}</tr>\n{body}</table>'


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" alt="{_e(alt)}">'


def _utc(time_ns: int) -> datetime:
    return datetime.fromtimestamp(time_ns / 1e9, tz=UTC)


def _stamp(time_ns: int) -> str:
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%d %H:%M:%S") + f".{nanos:09d}Z"


def _envelope(
    x: list[datetime], y: list[float], buckets: int = CHART_BUCKETS
) -> tuple[list[datetime], list[float]]:
    """At most two points (the lowest and the highest, in time order) per bucket of consecutive samples: the
    chart looks the same at 810 pixels wide, extremes such as the worst drawdown are kept, and a day of
    one-second samples draws in a fraction of a second instead of many."""
    if len(y) <= 2 * buckets:
        return x, y
    size = -(-len(y) // buckets)
    keep: list[int] = []
    for start in range(0, len(y), size):
        window = range(start, min(start + size, len(y)))
        low, high = min(window, key=y.__getitem__), max(window, key=y.__getitem__)
        keep.extend(sorted({low, high}))
    return [x[i] for i in keep], [y[i] for i in keep]


def _chart(path: Path, title: str, x: list[datetime], y: list[float], ylabel: str, marker: str = "") -> None:
    x, y = _envelope(x, y)
    fig, ax = plt.subplots(figsize=(9, 3.2))
    ax.plot(x, y, marker=marker, linewidth=1)  # type: ignore[arg-type]
    ax.set_title(title)
    ax.set_xlabel("event time (UTC)")
    ax.ticklabel_format(axis="y", useOffset=False, style="plain")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
