"""`cse import` and `cse backtest` on bad input, as a new user meets them: the real command in a subprocess,
asserting the exit code, the one-line message naming the file, no traceback, and what the log holds after."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from adapters.sqlite_event_log import SqliteEventLog

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("CSE_SHARED_DATA") or ROOT.parent / "shared" / "data")
SPOT = DATA / "hftbacktest" / "spot" / "btcusdt_20240808.gz"
USDM = DATA / "hftbacktest" / "usdm" / "btcusdt_20240808.gz"
CSE = Path(sys.executable).with_name("cse")
TARDIS_QUOTES = "exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,bid_price,bid_amount\n"


class Cse:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = {**os.environ, "CSE_HOME": str(home), "PYTHONPATH": str(ROOT)}

    def __call__(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(CSE), *map(str, args)], env=self.env, cwd=self.home, capture_output=True,
                              text=True, timeout=300)  # fmt: skip

    def refused(self, *args: str | Path) -> str:
        """Run a command that must be refused: exit 2, one line on stderr, no traceback; returns that line."""
        run = self(*args)
        assert run.returncode == 2, run.stdout + run.stderr
        assert "Traceback" not in run.stderr
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1, run.stderr
        return lines[0]

    def holdings(self) -> dict[str, dict[str, int]]:
        path = self.home / "events.sqlite"
        if not path.exists():
            return {}
        with SqliteEventLog(path) as log:
            return {s: {name: log.end_offset(s, name) for name in log.streams(s)} for s in log.sessions()}


@pytest.fixture
def cse(tmp_path: Path) -> Cse:
    home = tmp_path / "home"
    home.mkdir()
    return Cse(home)


def test_truncated_capture_then_the_good_one_twice(tmp_path: Path, cse: Cse) -> None:
    cut = tmp_path / "spot" / "btcusdt_20240808.gz"
    cut.parent.mkdir()
    cut.write_bytes(SPOT.read_bytes()[:400_000])  # ~13,000 whole lines, then the gzip stops
    line = cse.refused("import", cut, "--session", "s")
    assert line.startswith(f"cse import: {cut}: truncated or corrupt gzip after line 13")
    assert line.endswith("; nothing was imported into session 's'")
    assert cse.holdings() == {}

    run = cse("import", SPOT, "--session", "s")
    assert run.returncode == 0, run.stderr
    assert f"{SPOT} (binance-spot): 41249 records, 0 rows refused" in run.stdout
    line = cse.refused("import", SPOT, "--session", "s")
    assert line.startswith(f"cse import: {SPOT}: already imported into session 's' (as btcusdt_20240808.gz")
    assert cse.holdings() == {"s": {"md.binance-spot.BTCUSDT": 1 + 41_249, "session": 2}}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty file (no header line)"),
        (TARDIS_QUOTES.replace(",bid_amount", "") + "x,BTCUSDT,1,1,1,2,1\n",
         ", line 1: missing column(s) bid_amount; the file has exchange, symbol, timestamp, local_timestamp, "
         "ask_amount, ask_price, bid_price (see docs/import-formats.md)"),
        (TARDIS_QUOTES + "x,BTCUSDT,1,1000,1,-2,1,1\nx,BTCUSDT,1,2000,1,1,1,1\n",
         ": no valid row: all 2 refused (1 x locked quote, 1 x price not positive)"),
    ],
)  # fmt: skip
def test_bad_csv_files_are_refused_whole(tmp_path: Path, cse: Cse, content: str, message: str) -> None:
    path = tmp_path / "quotes.csv"
    path.write_text(content)
    line = cse.refused("import", path, "--session", "q", "--format", "tardis-quotes")
    prefix = f"cse import: {path}" + ("" if message.startswith((",", ":")) else ": ")
    assert line == f"{prefix}{message}; nothing was imported into session 'q'"
    assert cse.holdings() == {}


def test_impossible_rows_are_counted_by_reason_and_the_rest_imported(tmp_path: Path, cse: Cse) -> None:
    path = tmp_path / "quotes.csv"
    path.write_text(
        TARDIS_QUOTES + "x,BTCUSDT,1,1000,1,101,100,1\n"  # good
        "x,BTCUSDT,1,2000,1,101,-100,1\nx,BTCUSDT,1,3000,1,101,0,1\n"  # negative, zero price
        "x,BTCUSDT,1,4000,1,99,100,1\nx,BTCUSDT,1,5000,-1,101,100,1\n"  # crossed, negative size
    )  # fmt: skip
    specs = tmp_path / "specs.toml"  # venue "v" is the user's own: specified in a file of theirs
    specs.write_text('[[instrument]]\nvenue = "v"\ninstrument = "BTCUSDT"\nbase = "BTC"\nquote = "USDT"\n'
                     'settlement = "USDT"\nkind = "spot"\ncontract_size = "1"\ntick_size = "0.01"\n'
                     'lot_size = "0.00001"\nmin_notional = "5"\nmaker_fee_bps = "10"\ntaker_fee_bps = "10"\n'
                     'source = "test"\n')  # fmt: skip
    run = cse("import", path, "--session", "q", "--format", "tardis-quotes", "--venue", "v", "--instruments", specs)
    assert run.returncode == 0, run.stderr
    assert (
        f"{path} (x): 1 records, 4 rows refused; 2 x price not positive; 1 x crossed quote; 1 x size negative"
        in run.stdout
    )
    assert f"refused row {path}, line 5: crossed quote: bid 100 > ask 99" in run.stdout
    assert cse.holdings() == {"q": {"md.v.BTCUSDT.quotes": 1 + 1, "session": 2}}  # definition + the good row


def test_two_venues_under_one_venue_are_refused(tmp_path: Path, cse: Cse) -> None:
    spot, usdm = tmp_path / "spot.gz", tmp_path / "usdm.gz"
    for src, dst in ((SPOT, spot), (USDM, usdm)):
        with gzip.open(src, "rt") as fh, gzip.open(dst, "wt") as out:
            out.writelines(line for _, line in zip(range(2_000), fh, strict=False))
    line = cse.refused("import", spot, usdm, "--session", "v", "--venue", "binance-spot")
    assert line == (f"cse import: {usdm}: a binance-usdm file, but md.binance-spot.BTCUSDT already holds binance-spot"
                    f" data (from {spot}); import each venue under its own --venue; nothing was imported into session"
                    " 'v'")  # fmt: skip
    assert cse.holdings() == {}


def test_backtest_refuses_a_session_without_its_venues_data(tmp_path: Path, cse: Cse) -> None:
    spot = tmp_path / "spot" / "btcusdt_20240808.gz"
    spot.parent.mkdir()
    with gzip.open(SPOT, "rt") as fh, gzip.open(spot, "wt") as out:
        out.writelines(line for _, line in zip(range(2_000), fh, strict=False))
    assert cse("import", spot, "--session", "spot").returncode == 0
    line = cse.refused(
        "backtest", "--session", "spot", "--config", ROOT / "deploy" / "samples" / "spread-demo.toml"
    )
    assert line == ("cse backtest: session 'spot' has no market data of BTCUSDT (strategy.instrument) on binance-usdm"
                    " (configured venues); it has: md.binance-spot.BTCUSDT (2,001 records)")  # fmt: skip
    assert list(cse.holdings()) == ["spot"]


def test_an_import_killed_midway_leaves_the_session_as_it_was(cse: Cse) -> None:
    assert cse("import", SPOT, "--session", "s").returncode == 0
    before = cse.holdings()
    proc = subprocess.Popen([str(CSE), "import", str(USDM), "--session", "s"], env=cse.env, cwd=cse.home,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    # Market data goes to a columnar file written at the end (the log's WAL no longer grows while records
    # are parsed): kill it after a while into its ~95k messages, before it can have committed.
    time.sleep(2.0)
    assert proc.poll() is None, "the import ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert cse.holdings() == before == {"s": {"md.binance-spot.BTCUSDT": 1 + 41_249, "session": 2}}
    assert cse("import", USDM, "--session", "s").returncode == 0  # and the import can simply be run again
    assert cse.holdings()["s"]["md.binance-usdm.BTCUSDT"] == 1 + 93_954
