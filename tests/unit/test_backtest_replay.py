"""Backtest and replay on the shipped sample: the replay reproduces every derived event byte for byte."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from adapters.entrypoints.commands import code_version, load_run_config, simulated_venues
from adapters.importers.binance_ws import import_binance_ws
from adapters.sqlite_event_log import SqliteEventLog
from application.backtest import run_backtest
from application.replay import replay_session, session_markers
from application.session_run import RunParameters, market_data_streams
from domain.events import SessionEnded

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "deploy" / "samples" / "hftbacktest"
CONFIG = ROOT / "deploy" / "samples" / "spread-demo.toml"
INPUT = "sample"


@pytest.fixture(scope="module")
def backtested(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    path = tmp_path_factory.mktemp("log") / "events.sqlite"
    with SqliteEventLog(path) as log:
        import_binance_ws(log, INPUT, [SAMPLE / "spot" / "btcusdt_20240808.gz", SAMPLE / "usdm" / "btcusdt_20240808.gz"],
                          code_version=code_version, echo=None)  # fmt: skip
        parameters = RunParameters(INPUT, market_data_streams(log, INPUT), load_run_config(CONFIG))
        result = run_backtest(log, parameters, "bt", simulated_venues, code_version())
    return path, "bt", result.digest


def test_backtest_trades_and_records_a_self_contained_session(backtested: tuple[Path, str, str]) -> None:
    path, session, digest = backtested
    with SqliteEventLog(path) as log:
        streams = log.streams(session)
        started, ended = session_markers(log, session)
        inputs = sum(log.end_offset(INPUT, s) for s in market_data_streams(log, INPUT))
        copied = sum(log.end_offset(session, s) for s in market_data_streams(log, session))
    assert streams == ["derived", "md.binance-spot.BTCUSDT", "md.binance-usdm.BTCUSDT", "merge", "session"]
    assert copied == inputs
    assert started is not None and started.mode == "backtest"
    assert json.loads(started.parameters)["input_session"] == INPUT
    assert isinstance(ended, SessionEnded) and ended.digest == digest
    assert ended.derived_events > 100  # the strategy really traded: opportunities, orders, fills, equity


def test_replay_reproduces_the_digest(backtested: tuple[Path, str, str]) -> None:
    path, session, digest = backtested
    with SqliteEventLog(path) as log:
        report = replay_session(log, session, simulated_venues, code_version())
    assert report.ok, report.first
    assert report.replayed_digest == report.recorded_digest == digest
    assert report.events_checked > 100


def test_replay_of_an_import_session_checks_canonical_bytes(backtested: tuple[Path, str, str]) -> None:
    path, _, _ = backtested
    with SqliteEventLog(path) as log:
        report = replay_session(log, INPUT, simulated_venues, code_version())
        stored = sum(log.end_offset(INPUT, s) for s in log.streams(INPUT))
    assert report.ok and report.mode == "import"
    assert report.events_checked == stored


def test_replay_shows_the_first_divergence(backtested: tuple[Path, str, str], tmp_path: Path) -> None:
    path, session, _ = backtested
    copy = tmp_path / "tampered.sqlite"
    with sqlite3.connect(path) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    with sqlite3.connect(copy) as db:
        (payload,) = db.execute(
            "SELECT payload FROM records WHERE session_id=? AND stream='derived' AND offset=7", (session,)
        ).fetchone()
        event = json.loads(payload)
        event["envelope"]["source"] = "tampered"
        db.execute(
            "UPDATE records SET payload=? WHERE session_id=? AND stream='derived' AND offset=7",
            (json.dumps(event, separators=(",", ":")).encode(), session),
        )
    with SqliteEventLog(copy) as log:
        report = replay_session(log, session, simulated_venues, code_version())
    assert not report.ok
    assert report.divergences >= 1
    assert report.first is not None and report.first.index == 7
    assert '"tampered"' in report.first.recorded and '"tampered"' not in report.first.replayed


def test_backtest_digest_is_equal_in_two_processes(backtested: tuple[Path, str, str], tmp_path: Path) -> None:
    path, session, digest = backtested
    digests = []
    for seed in ("1", "987"):
        home = tmp_path / f"home{seed}"
        home.mkdir()
        with SqliteEventLog(home / "events.sqlite") as fresh, SqliteEventLog(path) as log:
            for stream in log.streams(INPUT):  # only the import: each process records its own backtest
                fresh.append_many(INPUT, (stored.record for stored in log.read(INPUT, stream)))
        env = {**os.environ, "PYTHONHASHSEED": seed, "CSE_HOME": str(home)}
        out = subprocess.run(
            [sys.executable, "-m", "adapters.entrypoints.cli", "backtest", "--session", INPUT, "--config",
             str(CONFIG), "--id", session],
            env=env, capture_output=True, text=True, check=True, cwd=ROOT, timeout=300,
        )  # fmt: skip
        digests.append(json.loads(out.stdout)["digest"])
    assert digests == [digest, digest]


def test_skipping_deciders_by_what_they_consume_changes_nothing(backtested: tuple[Path, str, str]) -> None:
    """The kernel skips a decider for event types outside its `consumes`; the same deciders without that
    attribute (seeing every event) derive exactly the same events from the sample."""
    from application.engine import Kernel
    from application.run_config import build_deciders
    from application.session_run import merged_inputs, restamp
    from domain.events import EventBase, decode, encode

    class SeesEverything:
        def __init__(self, inner: Any) -> None:
            self.inner, self.name = inner, inner.name

        def initial_state(self) -> Any:
            return self.inner.initial_state()

        def decide(self, state: Any, event: EventBase, view: Any) -> list[EventBase]:
            return self.inner.decide(state, event, view)

        def evolve(self, state: Any, event: EventBase, view: Any) -> Any:
            return self.inner.evolve(state, event, view)

    path, _, _ = backtested
    config = load_run_config(CONFIG)
    deciders = build_deciders(config)
    assert sum(hasattr(d, "consumes") for d in deciders) >= 4
    outputs: list[list[bytes]] = [[], []]
    with SqliteEventLog(path) as log:
        streams = market_data_streams(log, INPUT)
        for out, chosen in zip(outputs, (deciders, [SeesEverything(d) for d in build_deciders(config)]),
                               strict=True):  # fmt: skip
            kernel = Kernel(chosen, simulated_venues(config), lambda e, out=out: out.append(encode(e)))
            for merged in merged_inputs(log, INPUT, streams):
                kernel.feed(restamp(decode(merged.item[1].record.payload), "bt-check", merged.stream))
            kernel.release_due(kernel.clock.now_ns())
    assert len(outputs[0]) > 100 and outputs[0] == outputs[1]


def test_the_merge_order_is_recorded_and_the_replay_follows_the_record(backtested: tuple[Path, str, str]) -> None:
    """The backtest records the order it consumed its inputs in (run-length `InputsMerged` chunks); the
    replay reads that order back: a different recorded order is followed exactly, and one that does not
    match the streams in the log is refused with a clear error."""
    from application.session_run import (
        RecordedOrderError,
        merged_inputs,
        ordered_inputs,
        recorded_merge,
    )
    from domain.events import InputsMerged

    path, session, _ = backtested
    with SqliteEventLog(path) as log:
        started, _ = session_markers(log, session)
        assert started is not None
        streams = RunParameters.from_json(started.parameters).streams
        order = recorded_merge(log, session)
        assert order is not None
        chunks = list(order)
        assert len(chunks) > 1 and chunks[0].first_input == 0  # the sample spans several chunks
        by_rule = [(m.stream, m.sequence) for m in merged_inputs(log, session, streams)]
        recorded = [(stream, stored.offset) for stream, stored in ordered_inputs(log, session, streams, chunks)]
        assert recorded == by_rule and len(recorded) == sum(n for c in chunks for _, n in c.runs)

        # Another order that covers the same records: the first two runs of different streams swapped.
        first = chunks[0]
        swapped = InputsMerged(envelope=first.envelope, streams=first.streams, first_input=0,
                               runs=(first.runs[1], first.runs[0], *first.runs[2:]))  # fmt: skip
        assert first.runs[0][0] != first.runs[1][0]
        followed = [(stream, stored.offset)
                    for stream, stored in ordered_inputs(log, session, streams, [swapped, *chunks[1:]])]  # fmt: skip
        (a, n_a), (b, n_b) = first.runs[0], first.runs[1]
        assert followed[:n_b] == [(streams[b], i) for i in range(n_b)]
        assert followed[n_b : n_a + n_b] == [(streams[a], i) for i in range(n_a)]
        assert sorted(followed) == sorted(recorded)

        def drain(chunk_list: list[InputsMerged]) -> None:
            for _ in ordered_inputs(log, session, streams, chunk_list):
                pass

        too_many = InputsMerged(envelope=first.envelope, streams=first.streams, first_input=0,
                                runs=(*first.runs, (first.runs[0][0], 10**9)))  # fmt: skip
        with pytest.raises(RecordedOrderError, match="more records"):
            drain([too_many])
        with pytest.raises(RecordedOrderError, match="does not cover"):
            drain(chunks[:-1])
        with pytest.raises(RecordedOrderError, match="expected"):
            drain(chunks[1:])
