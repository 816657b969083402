"""The compiled market core end to end: a backtest gated by `adapters.market_core` (CSE_CORE=compiled) derives
the reference run's events byte for byte (digest, report figures, every derived payload) on every recorded
session of `test_wake_sessions` (the demo pair, all Binance captures in one session, the Lean inverse pair),
with the demo strategy and an eager one; and the compiled replay of the reference session verifies."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from adapters.entrypoints.commands import simulated_venues
from adapters.market_core import compiled_core
from adapters.sqlite_event_log import SqliteEventLog
from application.backtest import run_backtest
from application.replay import replay_session
from application.session_run import RunParameters, market_data_streams
from tests.e2e.test_wake_sessions import SESSIONS, _config, imported  # noqa: F401  (module-scoped sessions)

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("eager", [False, True], ids=["demo-strategy", "eager-strategy"])
def test_compiled_run_equals_the_reference_run(
    imported: tuple[Path, str],  # noqa: F811  (the fixture imported above)
    eager: bool,
    tmp_path: Path,
) -> None:
    path, name = imported
    _, _, venues, instrument = SESSIONS[name]
    config = _config(venues, instrument, eager)
    copy = tmp_path / "compiled.sqlite"
    shutil.copy(path, copy)
    results = []
    session = f"bt-compiled-{eager}"
    for log_path, core in ((path, None), (copy, compiled_core)):
        with SqliteEventLog(log_path) as log:
            parameters = RunParameters(name, market_data_streams(log, name), config)
            results.append(run_backtest(log, parameters, session, simulated_venues, "test", core=core))
            results[-1].summary["derived_payloads"] = [s.record.payload for s in log.read(session, "derived")]
    reference, compiled = results
    assert reference.derived > 0
    assert (compiled.digest, compiled.inputs, compiled.derived) == (
        reference.digest,
        reference.inputs,
        reference.derived,
    )
    assert compiled.summary == reference.summary
    with SqliteEventLog(path) as log:  # the compiled replay of the reference path's session: byte for byte
        report = replay_session(log, session, simulated_venues, "test", core=compiled_core)
    assert report.ok and report.events_checked == reference.derived
