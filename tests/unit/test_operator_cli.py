"""`cse command` input parsing and limit updates: times to the nanosecond, limits validated as a whole; every
command carries its account (`--account`, default every account), a drawdown halt is released by command,
and a bad account exits 2 storing nothing."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.entrypoints.cli import main
from adapters.entrypoints.commands import SAMPLES, UserError
from adapters.entrypoints.operator_cli import parse_time_ns
from adapters.sqlite_event_log import SqliteEventLog
from application.operator_commands import updated_limits
from domain.events import (
    EngageKillSwitch,
    EventBase,
    ReleaseDrawdownHalt,
    ReleaseKillSwitch,
    StartStrategy,
    StopStrategy,
    UpdateRiskLimits,
    decode,
)
from domain.values import RiskLimits
from tests.api_support import open_live_session

CONFIG = SAMPLES / "spread-demo.toml"


@pytest.mark.parametrize(("text", "expected"), [
    ("2024-08-08T23:54:38.123456789Z", 1_723_161_278_123_456_789),
    ("2024-08-08T23:54:38.5", 1_723_161_278_500_000_000),  # no zone: UTC
    ("2024-08-09T01:54:38+02:00", 1_723_161_278_000_000_000),
    ("1723161278000000001", 1_723_161_278_000_000_001),
])  # fmt: skip
def test_times_keep_nanoseconds(text: str, expected: int) -> None:
    assert parse_time_ns(text) == expected


@pytest.mark.parametrize("text", ["yesterday", "2024-13-01T00:00:00Z", "1960-01-01T00:00:00Z", "-5"])
def test_bad_times_are_named(text: str) -> None:
    with pytest.raises(UserError, match="--at"):
        parse_time_ns(text)


def test_limits_change_only_the_given_keys() -> None:
    base = RiskLimits(max_open_orders=7, price_collar_bps=Decimal("30"))
    new = updated_limits(base, {"max_position_per_asset_venue": "2.5"})
    assert new.max_position_per_asset_venue == Decimal("2.5")
    assert new.max_open_orders == 7 and new.price_collar_bps == Decimal("30")
    with pytest.raises(ValueError, match="unknown limit.*max_orders; allowed: drawdown_action, "):
        updated_limits(base, {"max_orders": "1"})
    with pytest.raises(ValueError, match="max_open_orders='1.5'"):
        updated_limits(base, {"max_open_orders": "1.5"})


@pytest.fixture()
def live_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A CSE_HOME whose log holds one open live session, "live"."""
    monkeypatch.setenv("CSE_HOME", str(tmp_path))
    monkeypatch.delenv("CSE_EVENT_LOG", raising=False)
    with SqliteEventLog(tmp_path / "events.sqlite") as log:
        open_live_session(log, "live", time_ns=1)
    return tmp_path


def _logged(home: Path) -> list[EventBase]:
    with SqliteEventLog(home / "events.sqlite") as log:
        return [decode(s.record.payload) for s in log.read("live", "commands")]


@pytest.mark.parametrize(("argv", "kind"), [
    (["kill-switch", "engage"], EngageKillSwitch),
    (["kill-switch", "release"], ReleaseKillSwitch),
    (["drawdown", "release"], ReleaseDrawdownHalt),
    (["strategy", "start", "spread-btcusdt"], StartStrategy),
    (["strategy", "stop", "spread-btcusdt"], StopStrategy),
    (["limits", "set", "max_open_orders=2", "--config", str(CONFIG)], UpdateRiskLimits),
])  # fmt: skip
@pytest.mark.parametrize("account", [None, "desk-2"])
def test_every_command_carries_its_account(live_home: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                                           kind: type[EventBase], account: str | None) -> None:  # fmt: skip
    scope = ["--account", account] if account else []
    assert main(["command", *argv, *scope, "--session", "live", "--at", "10", "--operator", "bob"]) == 0
    printed = json.loads(capsys.readouterr().out)
    (command,) = _logged(live_home)
    assert isinstance(command, kind) and command.model_dump()["account"] == account
    assert (printed["type"], printed["account"], printed["command_id"]) == (
        command.type, account, str(command.envelope.event_id))  # fmt: skip


def test_drawdown_release_keeps_reason_and_operator(live_home: Path) -> None:
    assert main(["command", "drawdown", "release", "--session", "live", "--at", "10", "--reason", "reviewed",
                 "--operator", "alice"]) == 0  # fmt: skip
    (command,) = _logged(live_home)
    assert isinstance(command, ReleaseDrawdownHalt)
    assert (command.reason, command.operator, command.account, command.envelope.event_time_ns) == (
        "reviewed", "alice", None, 10)  # fmt: skip


def test_limits_for_an_account_without_earlier_limits_need_the_config(live_home: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    argv = ["limits", "set", "max_open_orders=2", "--account", "desk-2", "--session", "live", "--at", "10"]
    assert main(["command", *argv]) == 2
    assert "no earlier limits command for account 'desk-2': pass --config FILE" in capsys.readouterr().err
    assert _logged(live_home) == []


@pytest.mark.parametrize("argv", [
    ["kill-switch", "engage"], ["drawdown", "release"], ["limits", "set", "max_open_orders=2"],
])  # fmt: skip
@pytest.mark.parametrize("account", ["", "  "])
def test_an_empty_account_exits_2_and_stores_nothing(live_home: Path, capsys: pytest.CaptureFixture[str],
                                                     argv: list[str], account: str) -> None:  # fmt: skip
    with pytest.raises(SystemExit) as exit_:
        main(["command", *argv, "--account", account, "--session", "live", "--at", "10"])
    assert exit_.value.code == 2
    assert "argument --account: empty: name the account, or leave --account out" in capsys.readouterr().err
    assert _logged(live_home) == []


def test_drawdown_has_release_only(live_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["command", "drawdown", "engage", "--session", "live"])
    assert exit_.value.code == 2
    assert "invalid choice: 'engage' (choose from 'release')" in capsys.readouterr().err
