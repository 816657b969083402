"""Planted secrets never leak: recognisable fake exchange keys (and a database password) are planted in the
environment and in secrets files (`CSE_*_FILE`), the `cse` commands that read the configuration run as real
processes with JSON logs, and everything they leave behind is scanned for the planted values: stdout and
stderr (logs and error messages, including configuration errors about the secrets themselves), every file
under the working directory (the SQLite event log with its WAL, read models, reports) and a /metrics scrape
of a running service.

Commands covered: import, backtest, record --exchanges and trade --mode live (both against the local exchange
through --api-base: planted keys are never sent to a real exchange), trade --mode paper, trade --mode live with
half a key pair (refused before anything is sent), compare, inspect, sessions, command (kill switch), project
--follow (the service, which also projects into the read models scanned)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from adapters.entrypoints.commands import SAMPLES
from adapters.exchanges.credentials import ccxt_options, credentials_for
from adapters.settings import Settings
from tests.e2e.live_support import local_exchange
from tests.local_exchange.orders import OrderDesk
from tests.service_process import ROOT, ServiceProcess, http_get
from tests.unit.test_import_safety import head_gz

pytestmark = pytest.mark.e2e

TAG = uuid.uuid4().hex[:12]
PLANTED = {
    f"CSE_{exchange.upper()}_API_{part.upper()}": f"PLANTED{TAG}{exchange}{part}"
    for exchange in ("binance", "coinbase", "kraken", "bybit")
    for part in ("key", "secret", "passphrase")
}
PLANTED["CSE_PG_PASSWORD"] = f"PLANTED{TAG}pgpassword"
BY_FILE = {"CSE_KRAKEN_API_KEY", "CSE_KRAKEN_API_SECRET", "CSE_BYBIT_API_SECRET", "CSE_PG_PASSWORD"}
"""Given as `CSE_<NAME>_FILE` pointing at a secrets file; the others as plain variables."""


def leaks(text: str | bytes) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return sorted(name for name, value in PLANTED.items() if value.encode() in data)


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    base = tmp_path_factory.mktemp("planted")
    secrets, home = base / "run-secrets", base / "home"
    secrets.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CSE_")}
    env.update(PYTHONPATH=str(ROOT), CSE_HOME=str(home), CSE_EVENT_LOG=str(home / "events.sqlite"),
               CSE_LOG_FORMAT="json", CSE_LOG_LEVEL="debug")  # fmt: skip
    for name, value in PLANTED.items():
        if name in BY_FILE:
            path = secrets / name.lower()
            path.write_text(value + "\n")
            env[f"{name}_FILE"] = str(path)
        else:
            env[name] = value
    return home, env


def cse(env: dict[str, str], *args: str, ok: bool = True) -> str:
    run = subprocess.run([sys.executable, "-m", "adapters.entrypoints.cli", *args], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert (run.returncode == 0) == ok, f"cse {' '.join(args)} exited {run.returncode}:\n{run.stderr[-3000:]}"
    return run.stdout + run.stderr


def test_the_planted_credentials_are_what_the_commands_read(
    planted: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scan below means something only if the commands did read the planted values."""
    _, env = planted
    for name, value in env.items():
        if name.startswith("CSE_"):
            monkeypatch.setenv(name, value)
    settings = Settings()
    for exchange in ("binance", "coinbase", "kraken", "bybit"):
        options = ccxt_options(credentials_for(settings, exchange))
        assert options == {"apiKey": PLANTED[f"CSE_{exchange.upper()}_API_KEY"],
                           "secret": PLANTED[f"CSE_{exchange.upper()}_API_SECRET"],
                           "password": PLANTED[f"CSE_{exchange.upper()}_API_PASSPHRASE"]}  # fmt: skip
    assert settings.database_url.endswith(f":{PLANTED['CSE_PG_PASSWORD']}@127.0.0.1:55432/cse")
    assert leaks(repr(settings)) == [] and leaks(str(settings.model_dump())) == []
    assert leaks(f"x{PLANTED['CSE_BYBIT_API_KEY']}x") == ["CSE_BYBIT_API_KEY"]  # the scan finds what it seeks


def test_no_command_leaks_a_planted_secret(planted: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    home, env = planted
    captures = [head_gz(SAMPLES / "hftbacktest" / market / "btcusdt_20240808.gz",
                        tmp_path / market / "btcusdt_20240808.gz", 5000) for market in ("spot", "usdm")]  # fmt: skip
    outputs = [
        cse(env, "import", *map(str, captures), "--session", "s"),
        cse(
            env,
            "command",
            "kill-switch",
            "engage",
            "--session",
            "s",
            "--reason",
            "scan",
            "--at",
            "2024-08-08T23:55:30Z",
        ),  # fmt: skip
        cse(env, "backtest", "--session", "s", "--config", str(SAMPLES / "spread-demo.toml"), "--id", "bt"),
        cse(
            env,
            "trade",
            "--mode",
            "paper",
            "--config",
            str(SAMPLES / "spread-demo.toml"),
            "--session",
            "paper",
            "--market-session",
            "s",
            "--speed",
            "0",
        ),  # fmt: skip
        cse(env, "compare", "paper", "paper"),
        cse(env, "compare", "bt", "bt"),
        cse(env, "compare", "bt", "bt", "--json"),
        cse(env, "inspect", "s", "--json"),
        cse(env, "sessions"),
        # error paths, each naming a variable of a secret: the value must not follow it into the message
        cse(env, "compare", "missing", "bt", ok=False),
        cse(
            {**env, "CSE_KRAKEN_API_KEY": "PLANTED" + TAG + "krakenkey"}, "sessions", ok=False
        ),  # and its _FILE
        cse({**env, "CSE_BYBIT_API_SECRET_FILE": str(tmp_path / "absent")}, "sessions", ok=False),
        cse({**env, "CSE_TRACE_SAMPLE_RATIO": "2"}, "sessions", ok=False),
        # live trading with half of Binance's key pair: refused before anything is sent, naming what is missing
        cse(
            {k: v for k, v in env.items() if k != "CSE_BINANCE_API_SECRET"},
            "trade",
            "--mode",
            "live",
            "--config",
            str(SAMPLES / "spread-demo.toml"),
            "--session",
            "live",
            "--market-session",
            "s",
            ok=False,
        ),  # fmt: skip
    ]
    assert (
        "CSE_BINANCE_API_SECRET not set while CSE_BINANCE_API_KEY, CSE_BINANCE_API_PASSPHRASE set"
        in outputs[-1]
    )
    assert "CSE_KRAKEN_API_KEY and CSE_KRAKEN_API_KEY_FILE are both set" in outputs[-4]
    assert "CSE_BYBIT_API_SECRET_FILE: cannot read secret file" in outputs[-3]

    # Recording and live trading against the local exchange (planted keys are never sent to a real one): the
    # keys sign every order request; the desk filling at the limit makes the session hold the exchange's answers.
    desk = OrderDesk()
    desk.fill_at_limit = True
    config = str(SAMPLES / "spread-demo.toml")
    with local_exchange(desk) as local:
        bases = [a for v in ("binance", "binanceusdm") for a in ("--api-base", f"{v}={local.api_base(v)}")]
        record = ["record", "--exchanges", "binance,binanceusdm", "--symbols", "BTC/USDT", "--session", "rec"]
        trade = ["trade", "--mode", "live", "--config", config, "--session", "live", "--market-session", "s"]
        outputs += [
            cse(env, *record, "--duration", "4", *bases),
            cse(env, *trade, "--speed", "0", "--poll-interval", "0.2", *bases),
        ]
    assert desk.orders, "no order reached the exchange: the keys were never used"

    follower = ServiceProcess("projector", ["project", "--follow"], env, tmp_path / "projector.log")
    try:
        follower.wait_healthy()
        status, scrape = http_get(f"{follower.url}/metrics")
        assert status == 200 and "cse_build_info" in scrape
    finally:
        assert follower.terminate() == 0
    outputs += [scrape, follower.output()]
    assert any(
        '"level"' in line or '"message"' in line for line in follower.output().splitlines()
    )  # JSON logs

    found = {f"output {i}": leaks(text) for i, text in enumerate(outputs)}
    files = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.name.startswith("events.sqlite") for p in files) and any(p.suffix == ".html" for p in files)
    found.update({str(p.relative_to(home)): leaks(p.read_bytes()) for p in files})
    assert {where: names for where, names in found.items() if names} == {}
