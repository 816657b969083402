"""The report: one self-contained HTML file, its tables, and charts that keep the extremes of long runs."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from adapters.html_report import _envelope, write_report
from application.metrics import BacktestMetrics


def test_a_day_of_samples_keeps_its_worst_point() -> None:
    x = [datetime.fromtimestamp(i, tz=UTC) for i in range(86_400)]
    y = [0.001 * (i % 7) for i in range(86_400)]
    y[51_234] = 0.25  # one deep drawdown
    cx, cy = _envelope(x, y)
    assert len(cy) <= 4_000 and max(cy) == 0.25 and cx[cy.index(0.25)] == x[51_234]
    assert cx == sorted(cx)


def test_report_is_one_file_with_tables(tmp_path: Path) -> None:
    metrics = BacktestMetrics()
    metrics.equity = [(i * 1_000_000_000, Decimal(100 + i % 3)) for i in range(100)]
    summary = metrics.summary(Decimal(100))
    summary["risk_rejections_by_rule"] = {"kill_switch": 3}
    trip = {"venue": "v", "instrument": "BTCUSDT", "direction": "long", "quantity": "1", "entry_time_ns": 0,
            "exit_time_ns": 1_500_000_000, "entry_price": "100", "exit_price": "101", "fees": "0.2", "pnl": "0.8"}  # fmt: skip
    page = write_report(tmp_path, "t", summary, metrics.equity, [], [trip]).read_text()
    assert page.count('src="data:image/png;base64,') == 3 and 'src="equity.png"' not in page
    assert "<td>kill_switch</td><td>3</td>" in page and "Round trips (1)" in page
    assert "<td>1970-01-01 00:00:01.500000000Z</td>" in page and "<td>0.8</td>" in page
    assert "n/a: 1 one-minute returns over 1m39s" in page
