"""Our pipeline, measured through the same entry points the `cse` commands use (composition root included).

Each function runs inside its own subprocess (see run.py) and returns a dict of numbers; run.py adds the
process's peak RSS. "events" = inputs + derived events, as `cse backtest` counts them.
"""

from __future__ import annotations

import cProfile
import gc
import io
import pstats
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from adapters.entrypoints.commands import code_version, load_run_config, simulated_venues
from adapters.importers.binance_ws import import_binance_ws
from adapters.sqlite_event_log import SqliteEventLog
from application.backtest import run_backtest
from application.engine import Kernel
from application.replay import replay_session
from application.run_config import build_deciders
from application.session_run import RunParameters, market_data_streams, merged_inputs, restamp
from domain.events import EventBase, decode

REPO = Path(__file__).resolve().parents[2]
DATA = (REPO / ".." / "shared" / "data" / "hftbacktest").resolve()
CONFIG = REPO / "deploy" / "samples" / "spread-demo.toml"
PAIR = [DATA / "spot" / "btcusdt_20240808.gz", DATA / "usdm" / "btcusdt_20240808.gz"]
ALL_FIVE = [DATA / "spot" / "btcusdt_20240808.gz", DATA / "spot" / "btcusdt_20240809.gz",
            DATA / "usdm" / "btcusdt_20240808.gz",
            DATA / "cm" / "btcusd_perp_20240808.gz", DATA / "cm" / "btcusd_perp_20240809.gz"]  # fmt: skip
SESSION = "bench"
QUOTES = "bench-quotes"  # the quotes only (the data the other engines get)
BACKTEST = "bench.bt"


def _log(workdir: Path, name: str) -> SqliteEventLog:
    return SqliteEventLog(workdir / f"{name}.sqlite")


def _parameters(log: SqliteEventLog, session: str) -> RunParameters:
    return RunParameters(session, market_data_streams(log, session), load_run_config(CONFIG))


def import_pair(workdir: Path, rep: int = 0) -> dict[str, Any]:
    """Import the two captures; then (untimed) copy their quotes into a quotes-only session."""
    with _log(workdir, "pair" if rep == 0 else f"import{rep}") as log:
        started = time.perf_counter()
        report = import_binance_ws(log, SESSION, PAIR, code_version=code_version, echo=None)
        seconds = time.perf_counter() - started
        for stream in market_data_streams(log, SESSION) if rep == 0 else ():
            quotes = (s.record for s in log.read(SESSION, stream) if s.record.event_type == "market.quote")
            log.append_many(QUOTES, quotes)
    return {"events": report.records, "seconds": seconds}


def import_large(workdir: Path, rep: int = 0) -> dict[str, Any]:
    """Untimed set-up: all five captures, plus the same five under other venue names (copied in from
    side sessions), in one session of ~4x the pair's events (~585k)."""
    with _log(workdir, "large") as log:
        events = import_binance_ws(log, SESSION, ALL_FIVE, code_version=code_version, echo=None).records
        for folder in ("spot", "usdm", "cm"):
            side = f"copy-{folder}"
            paths = [p for p in ALL_FIVE if p.parent.name == folder]
            events += import_binance_ws(log, side, paths, code_version=code_version, venue=side,
                                        echo=None).records  # fmt: skip
            for stream in market_data_streams(log, side):
                log.append_many(SESSION, (s.record for s in log.read(side, stream)))
    return {"events": events}


def _backtest(workdir: Path, db: str, session: str, run_id: str) -> dict[str, Any]:
    with _log(workdir, db) as log:
        started = time.perf_counter()
        result = run_backtest(log, _parameters(log, session), run_id, simulated_venues, code_version())
        seconds = time.perf_counter() - started
    return {"events": result.inputs + result.derived, "inputs": result.inputs, "derived": result.derived,
            "seconds": seconds, "trades": result.summary.get("trades")}  # fmt: skip


def backtest_pair(workdir: Path, rep: int = 0) -> dict[str, Any]:
    return _backtest(workdir, "pair", SESSION, BACKTEST if rep == 0 else f"{BACKTEST}{rep}")


def backtest_quotes(workdir: Path, rep: int = 0) -> dict[str, Any]:
    return _backtest(workdir, "pair", QUOTES, f"{QUOTES}.bt{rep}")


def backtest_large(workdir: Path, rep: int = 0) -> dict[str, Any]:
    return _backtest(workdir, "large", SESSION, f"{BACKTEST}{rep}")


def replay_pair(workdir: Path, rep: int = 0) -> dict[str, Any]:
    """`cse replay --verify` of the pair's backtest: inputs re-run + every derived event compared."""
    with _log(workdir, "pair") as log:
        started = time.perf_counter()
        report = replay_session(log, BACKTEST, simulated_venues, code_version())
        seconds = time.perf_counter() - started
        inputs = sum(log.end_offset(BACKTEST, s) for s in market_data_streams(log, BACKTEST))
    assert report.ok, report
    return {"events": inputs + report.events_checked, "seconds": seconds}


def _split(log: SqliteEventLog, session: str, target: str) -> dict[str, Any]:
    """Pass 1 (streaming, like run_inputs): time each stage per event: read+merge, decode, re-stamp, kernel.
    Pass 2: the kernel alone over a list of decoded, re-stamped events (frozen out of the cyclic GC, which
    would otherwise rescan the whole list on every collection: an artefact of pre-decoding, not of the kernel)."""
    parameters = _parameters(log, session)
    clock = time.perf_counter
    stages = [0.0, 0.0, 0.0, 0.0]
    kernel = Kernel(build_deciders(parameters.config), simulated_venues(parameters.config), lambda e: None)
    merged = merged_inputs(log, session, parameters.streams)
    while True:
        t0 = clock()
        item = next(merged, None)
        t1 = clock()
        if item is None:
            break
        event = decode(item.item[1].record.payload)
        t2 = clock()
        event = restamp(event, target, item.stream)
        t3 = clock()
        kernel.feed(event)
        t4 = clock()
        stages[0] += t1 - t0
        stages[1] += t2 - t1
        stages[2] += t3 - t2
        stages[3] += t4 - t3
    kernel.release_due(kernel.clock.now_ns())

    events = [restamp(decode(m.item[1].record.payload), target + "-2", m.stream)
              for m in merged_inputs(log, session, parameters.streams)]  # fmt: skip
    gc.collect()
    gc.freeze()
    derived: list[EventBase] = []
    kernel = Kernel(build_deciders(parameters.config), simulated_venues(parameters.config), derived.append)
    started = clock()
    kernel.feed_all(events)
    kernel.release_due(kernel.clock.now_ns())
    seconds = clock() - started
    return {"events": kernel.inputs + kernel.derived, "seconds": seconds, "read_merge_s": stages[0],
            "decode_s": stages[1], "restamp_s": stages[2], "kernel_s": stages[3]}  # fmt: skip


def kernel_pair(workdir: Path, rep: int = 0) -> dict[str, Any]:
    with _log(workdir, "pair") as log:
        return _split(log, SESSION, f"kernel-split{rep}")


def kernel_quotes(workdir: Path, rep: int = 0) -> dict[str, Any]:
    with _log(workdir, "pair") as log:
        return _split(log, QUOTES, f"kernel-split-q{rep}")


def profile_pair(workdir: Path, rep: int = 0) -> dict[str, Any]:
    """cProfile of a whole backtest of the pair (slower than unprofiled; shares matter, not times)."""
    profiler = cProfile.Profile()
    with _log(workdir, "pair") as log:
        parameters = _parameters(log, SESSION)
        profiler.runcall(run_backtest, log, parameters, f"profiled.bt{rep}", simulated_venues, code_version())
    stats = pstats.Stats(profiler, stream=io.StringIO()).stats  # type: ignore[attr-defined]
    total = max(v[3] for v in stats.values())

    def top(column: int) -> list[dict[str, Any]]:
        ranked = sorted(stats.items(), key=lambda kv: -kv[1][column])[:10]
        return [{"function": f"{_short(file)}:{line}({func})", "calls": v[1], "own_s": round(v[2], 2),
                 "cumulative_s": round(v[3], 2), "share": round(v[column] / total, 3)}
                for (file, line, func), v in ranked]  # fmt: skip

    return {"total_s": total, "by_cumulative": top(3), "by_own": top(2)}


def baseline(workdir: Path, rep: int = 0) -> dict[str, Any]:
    """Peak RSS of a process that imports everything and loads the config, but runs nothing."""
    with _log(workdir, "pair") as log:
        _parameters(log, SESSION)
    return {}


def _short(file: str) -> str:
    for marker in ("site-packages/", str(REPO) + "/"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file.rsplit("/", 1)[-1] if "/" in file else file


WORKERS: dict[str, Callable[[Path, int], dict[str, Any]]] = {
    "baseline": baseline,
    "import_pair": import_pair, "import_large": import_large, "backtest_pair": backtest_pair,
    "backtest_quotes": backtest_quotes, "backtest_large": backtest_large, "replay_pair": replay_pair,
    "kernel_pair": kernel_pair, "kernel_quotes": kernel_quotes, "profile_pair": profile_pair,
}  # fmt: skip
