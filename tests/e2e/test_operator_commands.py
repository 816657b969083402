"""Operator commands through `cse command` into an embedded run: the kill switch (global or of one account)
engaged mid-run stops every order from T on, the run replays with zero divergences, an operator releases a
latched drawdown halt, and bad commands exit non-zero naming the problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.entrypoints.cli import main
from adapters.entrypoints.commands import SAMPLES
from adapters.sqlite_event_log import SqliteEventLog
from domain.events import (
    DrawdownBreached,
    DrawdownHaltReleased,
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
    (["limits", "set", "max_open_orders=3"], "no earlier limits command for every account: pass --config FILE"),
    (["limits", "set", "max_open_orders=3", "--account", "demo"], "for account 'demo': pass --config FILE"),
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


def _run(home: Path, run_id: str) -> list[object]:
    assert main(["backtest", "--session", "s", "--config", str(CONFIG), "--id", run_id]) == 0
    with SqliteEventLog(home / "events.sqlite") as log:
        return [decode(s.record.payload) for s in log.read(run_id, "derived")]


def test_an_account_scoped_kill_switch_stops_that_account_and_replays_exactly(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["command", "kill-switch", "engage", "--account", "demo", "--session", "s", "--at", KILL_AT,
                 "--reason", "demo only"]) == 0  # fmt: skip
    printed = json.loads(capsys.readouterr().out)
    assert printed["account"] == "demo"
    derived = _run(home, "bt")
    engaged = [e for e in derived if isinstance(e, KillSwitchEngaged)]
    assert [(e.account, e.scope, e.envelope.event_time_ns) for e in engaged] == [
        ("demo", "account", KILL_AT_NS)
    ]
    passed = [e for e in derived if isinstance(e, RiskCheckPassed)]
    assert passed and all(e.envelope.event_time_ns < KILL_AT_NS for e in passed), "an order passed after T"
    capsys.readouterr()
    assert main(["replay", "bt", "--verify"]) == 0
    assert "identical" in capsys.readouterr().out


def test_a_command_for_an_account_no_run_uses_is_stored_said_and_changes_nothing(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # no run yet: nothing to compare the account with, the command is stored silently
    assert (
        main(["command", "kill-switch", "engage", "--account", "other", "--session", "s", "--at", KILL_AT])
        == 0
    )
    assert capsys.readouterr().err == ""
    derived = _run(home, "bt")
    assert not [e for e in derived if isinstance(e, KillSwitchEngaged)]  # risk of "demo" ignores it
    assert [e for e in derived if isinstance(e, RiskCheckPassed) and e.envelope.event_time_ns > KILL_AT_NS]
    capsys.readouterr()
    # now a run of the session trades "demo": a command for another account is stored (exit 0) and said
    later = str(KILL_AT_NS + 1)
    assert (
        main(["command", "kill-switch", "release", "--account", "typo", "--session", "s", "--at", later]) == 0
    )
    err = capsys.readouterr().err
    assert "no recorded run of session 's' uses account 'typo' (runs use: demo)" in err, err
    with SqliteEventLog(home / "events.sqlite") as log:
        assert log.end_offset("s", "commands") == 2


def test_a_latched_drawdown_halt_is_released_by_the_operator(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a drawdown limit of 1e-6 of the equity (0.10 USDT): the first fees breach it and the halt latches; the
    # operator raises the limit back at 10 s (the halt stays latched) and releases it at 25 s
    assert main(["command", "limits", "set", "max_drawdown_fraction=0.000001", "--account", "demo", "--session",
                 "s", "--config", str(CONFIG), "--at", str(START_NS)]) == 0  # fmt: skip
    raised_ns = START_NS + 10_000_000_000
    assert main(["command", "limits", "set", "max_drawdown_fraction=0.02", "--account", "demo", "--session", "s",
                 "--at", str(raised_ns)]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["command", "drawdown", "release", "--account", "demo", "--session", "s", "--at", KILL_AT,
                 "--reason", "reviewed", "--operator", "alice"]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out)["type"] == "command.release_drawdown_halt"
    derived = _run(home, "bt")
    breaches = [e for e in derived if isinstance(e, DrawdownBreached)]
    released = [e for e in derived if isinstance(e, DrawdownHaltReleased)]
    assert breaches and breaches[0].envelope.event_time_ns < KILL_AT_NS
    assert [(e.account, e.operator, e.reason, e.envelope.event_time_ns) for e in released] == [
        ("demo", "alice", "reviewed", KILL_AT_NS)
    ]
    assert len(breaches) == 1  # measured again from the release, within the raised limit
    halted = [e.envelope.event_time_ns for e in derived if isinstance(e, RiskCheckRejected)
              and e.rule == "drawdown_halt"]  # fmt: skip
    assert halted and max(halted) < KILL_AT_NS  # refused until the release ...
    assert [t for t in halted if t > raised_ns]  # ... also after the limit was raised: the halt stays latched
    assert [e for e in derived if isinstance(e, RiskCheckPassed) and e.envelope.event_time_ns > KILL_AT_NS]


def test_limits_set_for_an_account_starts_from_that_accounts_limits(home: Path) -> None:
    assert main(["command", "limits", "set", "max_open_orders=3", "--session", "s", "--config", str(CONFIG),
                 "--at", str(START_NS)]) == 0  # fmt: skip
    assert main(["command", "limits", "set", "price_collar_bps=20", "--account", "demo", "--session", "s",
                 "--at", str(START_NS + 1)]) == 0  # fmt: skip
    assert (
        main(["command", "limits", "set", "max_open_orders=5", "--session", "s", "--at", str(START_NS + 2)])
        == 0
    )
    with SqliteEventLog(home / "events.sqlite") as log:
        updates = [decode(s.record.payload) for s in log.read("s", "commands")]
    assert [(u.account, u.limits.max_open_orders, str(u.limits.price_collar_bps)) for u in updates
            if isinstance(u, UpdateRiskLimits)] == [(None, 3, "50"), ("demo", 3, "20"), (None, 5, "50")]  # fmt: skip
