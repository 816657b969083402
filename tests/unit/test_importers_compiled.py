"""The compiled import of Binance captures (`binance_ws_compiled`) against the Python path it must equal: the
same catalog file (sha256), the same SQLite records and the same report, on every shared capture alone and
all of them in one session; and inputs it cannot vouch for going the Python path, with today's results."""

from __future__ import annotations

import gzip
import os
import sqlite3
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

import adapters.importers.binance_ws_compiled as compiled_path
from adapters.importers.binance_ws import import_binance_ws
from adapters.importers.common import FileError, ImportReport
from adapters.instruments.catalog import load_catalog
from adapters.sqlite_event_log import SqliteEventLog

pytestmark = pytest.mark.unit

DATA = Path(os.environ.get("CSE_SHARED_DATA") or Path(__file__).parents[2].parent / "shared" / "data")
HFT = DATA / "hftbacktest"
CAPTURES = ["spot/btcusdt_20240808.gz", "spot/btcusdt_20240809.gz", "usdm/btcusdt_20240808.gz",
            "cm/btcusd_perp_20240808.gz", "cm/btcusd_perp_20240809.gz"]  # fmt: skip


def version() -> str:
    return "test-build"


Outcome = tuple[str | None, list[tuple[Any, ...]], dict[str, Any]]
"""(catalog file sha256, SQLite rows of every table, report), or the error's text as the first item."""


def outcome(home: Path, imports: list[list[Path]], compiled: bool, **kwargs: Any) -> Outcome:
    """Run `imports` (one import each) into session "s" of a fresh log under `home`."""
    home.mkdir(parents=True, exist_ok=True)
    log = SqliteEventLog(home / "events.sqlite")
    reports: list[ImportReport] = []
    with log:
        try:
            for paths in imports:
                reports.append(import_binance_ws(log, "s", paths, code_version=version, echo=None,
                                                 compiled=compiled, **kwargs))  # fmt: skip
        except FileError as exc:
            return str(exc), [], {}
    db = sqlite3.connect(home / "events.sqlite")
    rows = [
        ("records", *r) for r in db.execute('SELECT * FROM records ORDER BY session_id, stream, "offset"')
    ]
    rows += [("streams", *r) for r in db.execute("SELECT * FROM streams ORDER BY session_id, stream")]
    rows += [("market_data", *r) for r in db.execute("SELECT * FROM market_data")]
    db.close()
    figures = [{k: v for k, v in asdict(r).items() if k != "seconds"} for r in reports]
    return rows[-1][2] if rows[-1][0] == "market_data" else None, rows, {"reports": figures}


def both(tmp_path: Path, imports: list[list[Path]], **kwargs: Any) -> tuple[Outcome, Outcome]:
    return (outcome(tmp_path / "compiled", imports, True, **kwargs),
            outcome(tmp_path / "python", imports, False, **kwargs))  # fmt: skip


@pytest.mark.parametrize("capture", CAPTURES)
def test_each_capture_alone_as_the_python_path(tmp_path: Path, capture: str) -> None:
    fast, reference = both(tmp_path, [[HFT / capture]])
    assert fast[0] is not None and len(fast[0]) == 64
    assert fast == reference


def test_all_captures_in_one_session_and_a_second_import_as_the_python_path(tmp_path: Path) -> None:
    spot, *others = (HFT / c for c in CAPTURES)
    fast, reference = both(tmp_path, [[spot, *others[1:]], [others[0]]])  # the second import extends spot
    assert fast[2]["reports"][1]["records"] == 58_325
    assert fast == reference


def test_the_compiled_path_runs_on_clean_captures(tmp_path: Path, fallbacks: list[str]) -> None:
    outcome(tmp_path, [[HFT / CAPTURES[0], HFT / CAPTURES[2]]], compiled=True)
    assert fallbacks == []


# -- inputs the compiled parser does not vouch for: the Python path decides, as before ----------------------


def head_lines(capture: str, n: int) -> list[str]:
    with gzip.open(HFT / capture, "rt") as fh:
        return [next(fh).rstrip("\n") for _ in range(n)]


def write_gz(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    return path


def spoil(lines: list[str], at: int, change: Callable[[str], str]) -> list[str]:
    return [*lines[:at], change(lines[at]), *lines[at + 1 :]]


def _backwards(lines: list[str]) -> list[str]:
    earlier = int(lines[0].split(" ", 1)[0]) - 1
    return spoil(lines, 40, lambda line: f"{earlier} {line.split(' ', 1)[1]}")


def _too_large(line: str) -> str:
    head, body = line.split(" ", 1)
    return f'{head} {{"stream":"btcusdt@trade","data":{{"E":1,"t":1,"p":"1{"0" * 20}","q":"1","m":false}}}}'


SPOILED: dict[str, Callable[[list[str]], list[str]]] = {
    "bad JSON line": lambda lines: spoil(lines, 10, lambda line: line[: len(line) // 2]),
    "receive time going backwards": _backwards,
    "unknown stream kind": lambda lines: spoil(lines, 60, lambda line: line.split(" ")[0] + ' {"stream":"btcusdt@kline_1m","data":{}}'),
    "amount too large": lambda lines: spoil(lines, 30, _too_large),
    "crossed quote": lambda lines: spoil(lines, 50, lambda line: line.split(" ")[0] + ' {"stream":"btcusdt@bookTicker","data":{"u":1,"b":"2","B":"1","a":"1","A":"1"}}'),
}  # fmt: skip


@pytest.fixture
def fallbacks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Why each compiled attempt gave way to the Python path."""
    seen: list[str] = []
    feed = compiled_path.feed_capture

    def watched(*args: Any, **kwargs: Any) -> None:
        try:
            feed(*args, **kwargs)
        except compiled_path.Unproven as exc:
            seen.append(str(exc))
            raise

    monkeypatch.setattr(compiled_path, "feed_capture", watched)
    return seen


@pytest.mark.parametrize("spoiled", sorted(SPOILED))
def test_a_spoiled_capture_gets_the_python_paths_result(
    tmp_path: Path, spoiled: str, fallbacks: list[str]
) -> None:
    path = write_gz(
        tmp_path / "in" / "spot" / "btcusdt_20240808.gz", SPOILED[spoiled](head_lines(CAPTURES[0], 200))
    )
    fast, reference = both(tmp_path, [[path]])
    assert len(fallbacks) == 1, "the compiled parser vouched for a spoiled file"
    assert fast == reference


def test_an_amount_too_large_refuses_the_file_as_before(tmp_path: Path) -> None:
    path = write_gz(
        tmp_path / "in" / "spot" / "btcusdt_20240808.gz",
        SPOILED["amount too large"](head_lines(CAPTURES[0], 200)),
    )
    fast, reference = both(tmp_path, [[path]])
    assert fast == reference
    assert (
        fast[0] is not None and "does not fit a 64-bit integer mantissa" in fast[0] and "line 31" in fast[0]
    )


def test_a_corrupt_gzip_gets_the_python_paths_error(tmp_path: Path, fallbacks: list[str]) -> None:
    data = (HFT / CAPTURES[0]).read_bytes()
    path = tmp_path / "in" / "spot" / "btcusdt_20240808.gz"
    path.parent.mkdir(parents=True)
    path.write_bytes(data[: len(data) // 2])
    fast, reference = both(tmp_path, [[path]])
    assert fast == reference and len(fallbacks) == 1
    assert fast[0] is not None and "truncated or corrupt gzip" in fast[0]


def test_two_symbols_in_one_capture_as_the_python_path(tmp_path: Path, fallbacks: list[str]) -> None:
    # A combined stream of two symbols: two streams from one file, each opened by its definition.
    lines = head_lines(CAPTURES[2], 300)
    other = [line.replace("btcusdt@", "ethusdt@") for line in lines[100:]]
    mixed = [*lines[:100], *(x for pair in zip(lines[100:], other, strict=True) for x in pair)]
    path = write_gz(tmp_path / "in" / "usdm" / "btcusdt_20240808.gz", mixed)
    specs = tmp_path / "eth.toml"
    specs.write_text(ETH_SPEC)
    fast, reference = both(tmp_path, [[path]], instruments=load_catalog([specs]))
    assert fast == reference and fallbacks == []
    assert fast[1][-1][4] == '["md.binance-usdm.BTCUSDT", "md.binance-usdm.ETHUSDT"]'  # the file's streams


ETH_SPEC = """
[[instrument]]
venue = "binance-usdm"
instrument = "ETHUSDT"
base = "ETH"
quote = "USDT"
settlement = "USDT"
kind = "linear"
contract_size = "1"
tick_size = "0.01"
lot_size = "0.001"
min_notional = "20"
maker_fee_bps = "2"
taker_fee_bps = "5"
source = "a test's: the same file read as two symbols"
"""
