"""A backtest submitted through the API runs in a worker process; its progress and result are visible through
the `backtestRuns` query and the `backtestProgress` subscription, and the run is a session of the log."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.entrypoints.commands import SAMPLES, _import
from adapters.settings import Settings
from adapters.sqlite_event_log import SqliteEventLog
from tests.api_support import WsClient, running_server

INPUT = "binance-btcusdt-20240808"
PROGRESS = "subscription($r: String!) { backtestProgress(runId: $r) { status progress eventsDone eventsTotal summary } }"


def test_submitted_backtest_reports_progress_and_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CSE_HOME", str(tmp_path))  # the worker process reads the same log
    settings = Settings(home=tmp_path)
    _import(settings, [SAMPLES / "hftbacktest" / "spot" / "btcusdt_20240808.gz",
                       SAMPLES / "hftbacktest" / "usdm" / "btcusdt_20240808.gz"], INPUT, "binance-ws", None, None)  # fmt: skip
    config = (SAMPLES / "spread-demo.toml").read_text()
    with running_server(settings) as server:
        mutation = 'mutation($s: String!, $c: String!) { submitBacktest(session: $s, config: $c, runId: "run-1") { runId status } }'
        refused = server.post(mutation, {"s": INPUT, "c": config}, role="viewer")
        assert "requires the trader role" in refused["errors"][0]["message"]
        submitted = server.post(mutation, {"s": INPUT, "c": config}, role="trader")
        assert submitted["data"]["submitBacktest"]["runId"] == "run-1"
        client = WsClient(server.url, server.keys["viewer"])
        client.subscribe("p", PROGRESS, {"r": "run-1"})
        updates = [p["data"]["backtestProgress"] for p in client.until_complete("p")]
        client.close()
        runs = server.post("{ backtestRuns { runId status progress summary } }")["data"]["backtestRuns"]
    assert updates[-1]["status"] == "succeeded", updates[-1]
    last = updates[-1]
    assert last["progress"] == 1.0 and int(last["eventsDone"]) == int(last["eventsTotal"]) > 40_000
    done = [float(u["progress"]) for u in updates]
    assert done == sorted(done) and len(updates) >= 2
    assert runs == [
        {"runId": "run-1", "status": "succeeded", "progress": 1.0, "summary": updates[-1]["summary"]}
    ]
    summary = updates[-1]["summary"]
    assert summary["session_id"] == "run-1" and summary["trades"] > 0
    with SqliteEventLog(settings.event_log_path) as log:
        assert "run-1" in log.sessions()
