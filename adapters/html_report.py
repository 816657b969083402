"""Writes a backtest report: metrics.json, equity/drawdown/spread charts as PNG, and report.html showing them."""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402


def write_report(
    out_dir: Path,
    title: str,
    summary: dict[str, Any],
    equity: list[tuple[int, Decimal]],
    spreads: list[tuple[int, float]],
) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    times = [_utc(t) for t, _ in equity]
    values = [float(v) for _, v in equity]
    peaks = [max(values[: i + 1]) for i in range(len(values))]
    drawdowns = [(p - v) / p if p else 0.0 for p, v in zip(peaks, values, strict=True)]
    _chart(out_dir / "equity.png", "Equity", times, values, "equity (quote currency)")
    _chart(out_dir / "drawdown.png", "Drawdown from peak", times, drawdowns, "fraction")
    _chart(out_dir / "spread.png", "Detected spread (gross bps)", [_utc(t) for t, _ in spreads],
           [s for _, s in spreads], "bps", marker=".")  # fmt: skip
    rows = "\n".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in sorted(summary.items())
        if k != "legs"
    )
    legs = "\n".join(
        f"<tr><th>{html.escape(venue)}</th><td><pre>{html.escape(json.dumps(stats, indent=1))}</pre></td></tr>"
        for venue, stats in summary.get("legs", {}).items()
    )
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{text-align:left;padding:2px 8px}}</style></head>
<body><h1>{html.escape(title)}</h1>
<table>{rows}</table>
<h2>Legs</h2><table>{legs}</table>
<h2>Equity</h2><img src="equity.png" alt="equity">
<h2>Drawdown</h2><img src="drawdown.png" alt="drawdown">
<h2>Spread</h2><img src="spread.png" alt="spread">
</body></html>
"""
    path = out_dir / "report.html"
    path.write_text(page)
    return path


def _utc(time_ns: int) -> datetime:
    return datetime.fromtimestamp(time_ns / 1e9, tz=UTC)


def _chart(path: Path, title: str, x: list[datetime], y: list[float], ylabel: str, marker: str = "") -> None:
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
