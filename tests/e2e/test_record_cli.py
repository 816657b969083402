"""`cse record` as a service against the local exchange: /health and /metrics while it runs, SIGTERM leaves
every received message durable, and the recorded session backtests and replays with zero divergences."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from adapters.sqlite_event_log import SqliteEventLog
from domain.events import BookResyncNeeded, BookSnapshot, InstrumentDefined, decode
from tests.local_exchange import LocalExchange
from tests.service_process import ServiceProcess, wait_for

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
VENUES = {"binance": "binance-spot", "binanceusdm": "binance-usdm"}


def _cse(args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CSE_HOME": str(home), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "adapters.entrypoints.cli", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=600)  # fmt: skip


def _messages(metrics: str, venue: str) -> float:
    match = re.search(rf'^cse_recorder_messages_total\{{venue="{venue}"\}} (\S+)$', metrics, re.M)
    return float(match.group(1)) if match else 0.0


def test_sigterm_leaves_everything_received_durable_and_the_session_backtests_and_replays(
    tmp_path: Path,
) -> None:
    with LocalExchange(venues=list(VENUES), message_limit=40_000) as exchange:
        exchange.venue("binance").faults.skip_depth(after=200)  # a gap: the session holds a resync
        bases = [a for v in VENUES for a in ("--api-base", f"{v}={exchange.api_base(v)}")]
        recorder = ServiceProcess("recorder", ["record", "--exchanges", ",".join(VENUES), "--symbols", "BTC/USDT",
                                               "--session", "live", *bases],
                                  {"CSE_HOME": str(tmp_path), "CSE_LOG_FORMAT": "text"}, tmp_path / "recorder.log")  # fmt: skip
        try:
            recorder.wait_healthy(60)
            wait_for(
                "5000 spot messages", lambda: _messages(recorder.metrics(), "binance-spot") >= 5000, 60, 0.1
            )
            assert "cse_recorder_sequence_gaps_total" in recorder.metrics()
            assert recorder.terminate() == 0, recorder.output()[-3000:]
        finally:
            recorder.kill()
    output = recorder.output()
    summary = json.loads(next(line for line in output.splitlines() if line.startswith('{"session"')))
    log = SqliteEventLog(tmp_path / "events.sqlite")
    for exchange_id, venue in VENUES.items():
        kinds = Counter(
            type(decode(s.record.payload)).__name__ for s in log.read("live", f"md.{venue}.BTCUSDT")
        )
        # every message received is recorded: one event per data message (all but the subscription
        # acknowledgement), plus the REST snapshots, the instrument definition and the resyncs
        data_events = (
            sum(kinds.values()) - kinds[InstrumentDefined.__name__] - kinds[BookResyncNeeded.__name__]
        )
        assert data_events == summary["messages"][exchange_id] - 1 + kinds[BookSnapshot.__name__], (
            venue,
            kinds,
        )
    assert summary["sequence_gaps"]["binance"] >= 1
    log.close()

    run = _cse(["backtest", "--session", "live", "--config", str(ROOT / "deploy/samples/spread-demo.toml"),
                "--id", "bt-live"], tmp_path)  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    replay = _cse(["replay", "bt-live", "--verify"], tmp_path)
    assert replay.returncode == 0 and "identical" in replay.stdout, replay.stdout + replay.stderr
    assert re.search(r"\b[1-9]\d* events checked", replay.stdout), replay.stdout


def test_record_refuses_an_unknown_exchange_or_symbol(tmp_path: Path) -> None:
    run = _cse(["record", "--exchanges", "nosuch", "--symbols", "BTC/USDT"], tmp_path)
    assert run.returncode == 2 and "unknown exchange 'nosuch'" in run.stderr
    with LocalExchange(venues=["kraken"], message_limit=100) as exchange:
        run = _cse(["record", "--exchanges", "kraken", "--symbols", "DOGE/XYZ", "--api-base",
                    f"kraken={exchange.api_base('kraken')}"], tmp_path)  # fmt: skip
    assert run.returncode == 2 and "kraken has no market 'DOGE/XYZ'" in run.stderr, run.stderr
    run = _cse(
        ["record", "--exchanges", "kraken", "--symbols", "BTC/USDT", "--api-base", "kraken=ftp://x"], tmp_path
    )
    assert run.returncode == 2 and "--api-base" in run.stderr
