"""Operator commands through `cse command` into an embedded run: the kill switch engaged mid-run stops every
order from T on, the run replays with zero divergences, and bad commands exit non-zero naming the problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.entrypoints.cli import main
from adapters.entrypoints.commands import SAMPLES
from adapters.sqlite_event_log import SqliteEventLog
from domain.events import (
    KillSwitchEngaged,
    OrderAccepted,
    RiskCheckPassed,
    RiskCheckRejected,
    UpdateRiskLimits,
    decode,
)

CAPTURES = [SAMPLES / "hftbacktest" / "spot" / "btcusdt_20240808.gz",
            SAMPLES / "hftbacktest" / "usdm" / "btcusdt_20240808.gz"]  # fmt: skip
CONFIG = SAMPLES / "spread-demo.toml"
START_NS = 1_723_161_253_937_085_768  # first record of the sample (2024-08-08T23:54:13.937085768Z)
KILL_AT = "2024-08-08T23:54:38.5Z"  # 25 s in: the strategy is still trading (orders pass risk)
KILL_AT_NS = 1_723_161_278_500_000_000


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CSE_HOME", str(tmp_path))
    monkeypatch.delenv("CSE_EVENT_LOG", raising=False)
    assert main(["import", *map(str, CAPTURES), "--session", "s"]) == 0
    return tmp_path


def test_kill_switch_engaged_mid_run_stops_orders_and_replays_exactly(home: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    capsys.readouterr()
    assert main(["command", "kill-switch", "engage", "--session", "s", "--at", KILL_AT, "--reason", "test",
                 "--operator", "alice"]) == 0  # fmt: skip
    printed = json.loads(capsys.readouterr().out)
    assert printed["event_time_ns"] == KILL_AT_NS and printed["type"] == "command.engage_kill_switch"
    assert main(["backtest", "--session", "s", "--config", str(CONFIG), "--id", "bt"]) == 0
    capsys.readouterr()

    with SqliteEventLog(home / "events.sqlite") as log:
        commands = list(log.read("bt", "commands"))
        derived = [decode(s.record.payload) for s in log.read("bt", "derived")]
    assert len(commands) == 1  # the command is an input of the run, re-stamped into it
    engaged = [e for e in derived if isinstance(e, KillSwitchEngaged)]
    assert (
        len(engaged) == 1 and engaged[0].envelope.event_time_ns == KILL_AT_NS and engaged[0].reason == "test"
    )
    passed = [e for e in derived if isinstance(e, RiskCheckPassed)]
    rejected_after = [
        e for e in derived if isinstance(e, RiskCheckRejected) and e.envelope.event_time_ns >= KILL_AT_NS
    ]
    assert passed and all(e.envelope.event_time_ns < KILL_AT_NS for e in passed), "an order passed after T"
    assert "kill_switch" in {e.rule for e in rejected_after}  # the first rule checked
    accepted = {e.order_id for e in derived if isinstance(e, OrderAccepted)}
    assert accepted and accepted <= {e.order_id for e in passed}  # only orders passed before T reach a venue

    assert main(["replay", "bt", "--verify"]) == 0
    out = capsys.readouterr().out
    assert "identical" in out


def test_limits_set_merges_with_the_run_config_and_later_commands(home: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    assert main(["command", "limits", "set", "max_open_orders=3", "price_collar_bps=20", "--session", "s",
                 "--config", str(CONFIG), "--at", str(START_NS)]) == 0  # fmt: skip
    assert (
        main(["command", "limits", "set", "max_open_orders=4", "--session", "s", "--at", str(START_NS + 1)])
        == 0
    )
    with SqliteEventLog(home / "events.sqlite") as log:
        updates = [decode(s.record.payload) for s in log.read("s", "commands")]
    assert all(isinstance(u, UpdateRiskLimits) for u in updates)
    first, second = updates
    assert isinstance(first, UpdateRiskLimits) and isinstance(second, UpdateRiskLimits)
    assert first.limits.max_open_orders == 3 and str(first.limits.price_collar_bps) == "20"
    assert str(first.limits.max_position_per_asset_venue) == "1"  # from the config's [risk], not a default
    assert second.limits.max_open_orders == 4 and str(second.limits.price_collar_bps) == "20"


@pytest.mark.parametrize(("argv", "message"), [
    (["limits", "set", "max_open_order=3"], "unknown limit(s) max_open_order; allowed: drawdown_action"),
    (["limits", "set", "max_open_orders=three", "--config", str(CONFIG)], "max_open_orders='three'"),
    (["limits", "set", "max_open_orders"], "is not KEY=VALUE"),
    (["limits", "set", "max_open_orders=3"], "pass --config FILE"),
    (["kill-switch", "engage", "--at", "yesterday"], "--at 'yesterday' is not an ISO 8601 time"),
    (["strategy", "stop", "x", "--session", "nope"], "no session 'nope'"),
    (["kill-switch", "engage", "--at", "2024-08-08T23:00:00Z"], "before the session's last command"),
    (["kill-switch", "engage"], "a command timed now would come after all of it; pass --at TIME"),
])  # fmt: skip
def test_bad_commands_exit_non_zero_with_a_clear_message(home: Path, capsys: pytest.CaptureFixture[str],
                                                         argv: list[str], message: str) -> None:  # fmt: skip
    assert main(["command", "strategy", "stop", "spread-btcusdt", "--session", "s", "--at", KILL_AT]) == 0
    with SqliteEventLog(home / "events.sqlite") as log:
        before = log.end_offset("s", "commands")
    capsys.readouterr()
    session = [] if "--session" in argv else ["--session", "s"]
    assert main(["command", *argv, *session]) == 2
    err = capsys.readouterr().err
    assert message in err, err
    with SqliteEventLog(home / "events.sqlite") as log:
        assert log.end_offset("s", "commands") == before  # nothing written


def test_commands_to_a_finished_run_are_refused(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backtest", "--session", "s", "--config", str(CONFIG), "--id", "done"]) == 0
    capsys.readouterr()
    assert main(["command", "kill-switch", "engage", "--session", "done"]) == 2
    assert "is a finished run" in capsys.readouterr().err
