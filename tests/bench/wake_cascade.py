"""The Python side of a wake, measured: what one input that derives events costs in the kernel, by what it
derives (an equity sample alone; a spread signal with its two orders, risk and the venue's answer; a venue
answer; a book resync), with the canonical encoding and SHA-256 of its derived events as a backtest does them.

    python tests/bench/wake_cascade.py [--tree DIR ...] [--rounds N]

Each tree (default: this checkout) is measured in its own subprocess, the trees interleaved round by round in
one run, so that a before/after comparison shares the machine's load; the best round's medians are printed
as JSON lines. Every input of the demo pair is fed through `Kernel.feed` (the reference path); only the inputs
that derive something are counted (quiet inputs are what the market core skips).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CAPTURES = [REPO / "deploy" / "samples" / "hftbacktest" / "spot" / "btcusdt_20240808.gz",
            REPO / "deploy" / "samples" / "hftbacktest" / "usdm" / "btcusdt_20240808.gz"]  # fmt: skip
CONFIG = REPO / "deploy" / "samples" / "spread-demo.toml"


def _category(types: set[str]) -> str:
    if "signal.spread_opportunity" in types:
        return "signal cascade"
    if types & {
        "order.filled",
        "order.partially_filled",
        "order.accepted",
        "order.canceled",
        "order.rejected",
    }:
        return "venue answer"
    if "market.book_resync_needed" in types:
        return "book resync"
    if types == {"portfolio.equity_sampled"}:
        return "equity sample"
    return "other"


def measure() -> dict[str, object]:
    """In the tree on sys.path: the per-category medians (µs) of `Kernel.feed` on the inputs that derive."""
    import hashlib

    from adapters.entrypoints.commands import code_version, load_run_config, simulated_venues
    from adapters.importers.binance_ws import import_binance_ws
    from adapters.sqlite_event_log import SqliteEventLog
    from application.engine import Kernel
    from application.run_config import build_deciders
    from application.session_run import RunParameters, market_data_streams, restamp, session_inputs
    from domain.events import decode, encode

    config = load_run_config(CONFIG)
    with tempfile.TemporaryDirectory() as tmp, SqliteEventLog(Path(tmp) / "e.sqlite") as log:
        import_binance_ws(log, "pair", CAPTURES, code_version=code_version, echo=None)
        parameters = RunParameters("pair", market_data_streams(log, "pair"), config)
        inputs = [restamp(decode(s.record.payload), "bt", stream)
                  for stream, s in session_inputs(log, "pair", parameters.streams)]  # fmt: skip
    digest = hashlib.sha256()
    derived: list[str] = []

    def on_derived(event: object) -> None:
        payload = encode(event)  # type: ignore[arg-type]
        digest.update(payload + b"\n")
        derived.append(event.type)  # type: ignore[attr-defined]

    kernel = Kernel(build_deciders(config), simulated_venues(config), on_derived)
    times: dict[str, list[float]] = {}
    quiet: list[float] = []
    clock = time.thread_time_ns  # CPU time of this thread: a shared machine's preemptions are not counted
    for event in inputs:
        before = len(derived)
        start = clock()
        kernel.feed(event)
        spent = (clock() - start) / 1000
        if len(derived) == before:
            quiet.append(spent)
        else:
            times.setdefault(_category(set(derived[before:])), []).append(spent)
    kernel.release_due(kernel.clock.now_ns())
    result: dict[str, object] = {name: {"median_us": round(statistics.median(v), 1), "count": len(v),
                                        "sum_ms": round(sum(v) / 1000, 1)} for name, v in sorted(times.items())}  # fmt: skip
    result["quiet input"] = {"median_us": round(statistics.median(quiet), 2), "count": len(quiet)}
    result["digest"] = digest.hexdigest()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tree", action="append", type=Path, help="a checkout to measure (repeatable)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure()))
        return
    trees = args.tree or [REPO]
    best: dict[Path, dict[str, dict[str, float]]] = {}
    for _ in range(args.rounds):
        for tree in trees:
            env = {**os.environ, "PYTHONPATH": str(tree)}
            out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--measure"], env=env, cwd=tree,
                                 capture_output=True, text=True, check=True).stdout  # fmt: skip
            result = json.loads(out.splitlines()[-1])
            kept = best.setdefault(tree, result)
            for name, figures in result.items():
                if isinstance(figures, dict) and figures["median_us"] < kept[name]["median_us"]:
                    kept[name] = figures
    for tree, result in best.items():
        print(json.dumps({"tree": str(tree), **result}))


if __name__ == "__main__":
    main()
