"""Import throughput into the two layouts, and reading a columnar session back, in market-data messages per
second (a depth update with all its levels is one message). Functions for `run.py` (same signature as
`bench_ours`: run in a subprocess, return a dict of numbers; `events` = messages).

- `import_pair_sqlite`: the two captures into SQLite records (the layout before columnar files);
- `import_pair_columnar`: the same into a columnar file (what `cse import` does now);
- `read_pair_sqlite` / `read_pair_columnar`: every message read back as the event a backtest gets (decoded and
  re-stamped from SQLite records / materialised from the file with the run's ids).

`python tests/bench/bench_columnar.py` runs the three once and prints the figures.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from adapters.entrypoints.commands import code_version
from adapters.importers.binance_ws import import_binance_ws
from adapters.sqlite_event_log import SqliteEventLog
from application.session_run import stream_events

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("CSE_SHARED_DATA") or (REPO / ".." / "shared" / "data").resolve()) / "hftbacktest"
PAIR = [DATA / "spot" / "btcusdt_20240808.gz", DATA / "usdm" / "btcusdt_20240808.gz"]
SESSION = "bench"


def _import(workdir: Path, name: str, columnar: bool) -> dict[str, Any]:
    path = workdir / name / "events.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    with SqliteEventLog(path, catalog=None if columnar else False) as log:
        started = time.perf_counter()
        report = import_binance_ws(log, SESSION, PAIR, code_version=code_version, echo=None)
        seconds = time.perf_counter() - started
    return {"events": report.records, "seconds": seconds}


def import_pair_sqlite(workdir: Path, rep: int = 0) -> dict[str, Any]:
    return _import(workdir, f"sqlite-{rep}", columnar=False)


def import_pair_columnar(workdir: Path, rep: int = 0) -> dict[str, Any]:
    return _import(workdir, f"columnar-{rep}", columnar=True)


def read_pair_sqlite(workdir: Path, rep: int = 0) -> dict[str, Any]:
    """The reference read path: every message of the SQLite pair (`import_pair_sqlite`, rep 0) decoded and
    re-stamped, as a backtest over that layout does."""
    with SqliteEventLog(workdir / "sqlite-0" / "events.sqlite", catalog=False) as log:
        started = time.perf_counter()
        messages = sum(
            sum(1 for _ in stream_events(log, SESSION, s, "bench.read"))
            for s in log.streams(SESSION)
            if s.startswith("md.")
        )
        seconds = time.perf_counter() - started
    return {"events": messages, "seconds": seconds}


def read_pair_columnar(workdir: Path, rep: int = 0) -> dict[str, Any]:
    """Materialise every message of the columnar pair (imported by `import_pair_columnar`, rep 0)."""
    with SqliteEventLog(workdir / "columnar-0" / "events.sqlite") as log:
        started = time.perf_counter()
        messages = sum(
            sum(1 for _ in stream_events(log, SESSION, s, "bench.read"))
            for s in log.streams(SESSION)
            if s.startswith("md.")
        )
        seconds = time.perf_counter() - started
    return {"events": messages, "seconds": seconds}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for rep, function in enumerate(
            (
                import_pair_sqlite,
                import_pair_columnar,
                read_pair_columnar,
                import_pair_sqlite,
                import_pair_columnar,
            )
        ):  # interleaved: a busy machine
            result = function(workdir, rep // 3)
            rate = result["events"] / result["seconds"]
            print(
                f"{function.__name__:22} {result['events']:>8,} messages {result['seconds']:7.2f} s {rate:>10,.0f} /s"
            )


if __name__ == "__main__":
    main()
