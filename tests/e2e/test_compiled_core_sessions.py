"""The compiled market core end to end: a backtest gated by `adapters.market_core` (CSE_CORE=compiled) derives
the reference run's events byte for byte (digest, report figures, every derived payload) on every recorded
session of `test_wake_sessions` (the demo pair, all Binance captures in one session, the Lean inverse pair),
with the demo strategy and an eager one; and the compiled replay of the reference session verifies."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from adapters.entrypoints.commands import simulated_venues
from adapters.market_core import compiled_core
from adapters.sqlite_event_log import SqliteEventLog
from application.backtest import run_backtest
from application.replay import replay_session
from application.session_run import RunParameters, market_data_streams
from tests.e2e.test_wake_sessions import RUN_IDS, RUNS, SESSIONS, _config, copy_log, imported  # noqa: F401

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(("name", "eager"), RUNS, ids=RUN_IDS)
def test_compiled_run_equals_the_reference_run(
    imported: Callable[[str], Path],  # noqa: F811  (the fixture imported above)
    name: str,
    eager: bool,
    tmp_path: Path,
) -> None:
    path = imported(name)
    _, _, venues, instrument = SESSIONS[name]
    config = _config(venues, instrument, eager)
    copy = copy_log(path, tmp_path / "compiled")
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
