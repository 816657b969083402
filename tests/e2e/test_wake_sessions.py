"""Wakes on every recorded session: sound (no owner acts where its wake spec is false), and the gated run
(`application.fast_run` over the pure-Python core) gives the reference run's derived events, digest and report
figures. Sessions: the shipped demo pair, every Binance capture of ../shared/data/hftbacktest in one session,
and the Lean minute quote bars of Binance COIN-M vs Bybit inverse BTCUSD; each with the demo's strategy and
with an eager one (no cooldown, a negative edge threshold, two groups in flight) so that wakes really act."""

from __future__ import annotations

import os
import shutil
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.entrypoints.commands import code_version, simulated_venues
from adapters.importers.binance_ws import import_binance_ws
from adapters.importers.lean import import_lean_quotes
from adapters.sqlite_event_log import SqliteEventLog
from application.backtest import run_backtest
from application.fast_run import reference_core
from application.replay import replay_session
from application.run_config import RunConfig, build_deciders
from application.session_run import RunParameters, market_data_streams, restamp, session_inputs
from domain.events import EventBase, decode
from tests.wake_audit import audit_run

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("CSE_SHARED_DATA") or ROOT.parent / "shared" / "data")
SAMPLES = ROOT / "deploy" / "samples"
DEMO = tomllib.loads((SAMPLES / "spread-demo.toml").read_text())
LEAN_PAIR = ("quantconnect-lean/cryptofuture/binance/minute/btcusd/20221213_quote.zip",
             "quantconnect-lean/cryptofuture/bybit/minute/btcusd/20221213_quote.zip")  # fmt: skip


def _captures() -> list[Path]:
    found = sorted((DATA / "hftbacktest").glob("*/*.gz"))
    assert len(found) >= 5, f"recorded captures missing under {DATA / 'hftbacktest'}"  # a failure, never a skip
    return found


def _config(venues: tuple[str, str], instrument: str, eager: bool) -> RunConfig:
    raw: dict[str, Any] = {**DEMO, "venues": {v: {"maker_bps": "2", "taker_bps": "5"} for v in venues}}
    strategy = {**DEMO["strategy"], "instrument": instrument, "taker_fee_bps": dict.fromkeys(venues, "1")}
    if eager:
        strategy.update(min_edge_bps="-8", cooldown_ns=0, max_legs_in_flight=2, exit_edge_bps="-9")
    raw["strategy"] = strategy
    return RunConfig.model_validate(raw)


SESSIONS = {
    "demo-pair": ("binance-ws", lambda: [SAMPLES / "hftbacktest" / "spot" / "btcusdt_20240808.gz",
                                         SAMPLES / "hftbacktest" / "usdm" / "btcusdt_20240808.gz"],
                  ("binance-spot", "binance-usdm"), "BTCUSDT"),
    "all-captures": ("binance-ws", _captures, ("binance-spot", "binance-usdm"), "BTCUSDT"),
    "lean-inverse-pair": ("lean", lambda: [DATA / p for p in LEAN_PAIR],
                          ("binance-cryptofuture", "bybit-cryptofuture"), "BTCUSD"),
}  # fmt: skip


@pytest.fixture(scope="module", params=sorted(SESSIONS))
def imported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    name: str = request.param
    kind, paths, _, _ = SESSIONS[name]
    path = tmp_path_factory.mktemp(name) / "events.sqlite"
    with SqliteEventLog(path) as log:
        importer = import_binance_ws if kind == "binance-ws" else import_lean_quotes
        report = importer(log, name, paths(), code_version=code_version, echo=None)
        assert report.records > 0
    yield path, name


def _inputs(log: SqliteEventLog, parameters: RunParameters) -> list[EventBase]:
    return [restamp(decode(stored.record.payload), "audit", stream)
            for stream, stored in session_inputs(log, parameters.input_session, parameters.streams)]  # fmt: skip


@pytest.mark.parametrize("eager", [False, True], ids=["demo-strategy", "eager-strategy"])
def test_no_owner_acts_where_its_wake_spec_is_false(imported: tuple[Path, str], eager: bool) -> None:
    path, name = imported
    _, _, venues, instrument = SESSIONS[name]
    config = _config(venues, instrument, eager)
    with SqliteEventLog(path) as log:
        parameters = RunParameters(name, market_data_streams(log, name), config)
        inputs = _inputs(log, parameters)
    audit, derived = audit_run(build_deciders(config), simulated_venues(config), inputs)
    assert audit.breaches == []
    assert audit.acted > 0 and derived  # owners really acted: the audit saw wakes that mattered
    assert audit.woken < audit.rows  # and the specs skip rows: the gate is not "always"


@pytest.mark.parametrize("eager", [False, True], ids=["demo-strategy", "eager-strategy"])
def test_gated_run_equals_the_reference_run(imported: tuple[Path, str], eager: bool, tmp_path: Path) -> None:
    path, name = imported
    _, _, venues, instrument = SESSIONS[name]
    config = _config(venues, instrument, eager)
    copy = tmp_path / "gated.sqlite"
    shutil.copy(path, copy)
    results = []
    for log_path, core in ((path, None), (copy, reference_core)):
        with SqliteEventLog(log_path) as log:
            parameters = RunParameters(name, market_data_streams(log, name), config)
            session = f"bt-{eager}"
            results.append(run_backtest(log, parameters, session, simulated_venues, "test", core=core))
            derived = [stored.record.payload for stored in log.read(session, "derived")]
            results[-1].summary["derived_payloads"] = derived
    reference, gated = results
    assert reference.derived > 0
    assert (gated.digest, gated.inputs, gated.derived) == (reference.digest, reference.inputs, reference.derived)
    assert gated.summary == reference.summary  # report figures and every derived byte
    with SqliteEventLog(path) as log:  # the gated replay of the reference path's session: byte for byte
        report = replay_session(log, f"bt-{eager}", simulated_venues, "test", core=reference_core)
    assert report.ok and report.events_checked == reference.derived
