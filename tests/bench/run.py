"""`make bench`: every measurement in its own subprocess (so its peak RSS is its own), ours and the other
engines interleaved in rounds within one run; prints a table and rewrites the results of docs/benchmarks.md.

    python tests/bench/run.py [--repeat N] [--no-docs]      # N rounds (default 3); best round reported
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from importlib.metadata import version
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DOCS = REPO / "docs" / "benchmarks.md"
START, END = "<!-- bench:results:start -->", "<!-- bench:results:end -->"
TARGET = 1_000_000

# (name, label); the label is what the table shows.
ROUND = [
    ("import_pair", "import (2 captures -> SQLite log)"),
    ("backtest_pair", "backtest, 2 captures (all kinds), from the log"),
    ("replay_pair", "replay --verify of that backtest"),
    ("backtest_quotes", "backtest, quotes only, from the log"),
    ("kernel_pair", "kernel only, 2 captures, pre-decoded"),
    ("kernel_quotes", "kernel only, quotes only, pre-decoded"),
    ("nautilus", "nautilus_trader 1.221 BacktestEngine.run, quotes"),
]
ONCE = [
    ("backtrader", "backtrader Cerebro.run, quotes"),
    ("backtest_large", "backtest, 5 captures x2 venues (memory)"),
    ("profile_pair", "cProfile of backtest, 2 captures"),
]


def worker(name: str, workdir: Path, rep: int) -> None:
    sys.path[:0] = [str(REPO), str(HERE)]
    warnings.simplefilter("ignore")
    import bench_engines
    import bench_ours

    if name in bench_engines.WORKERS:
        result = bench_engines.WORKERS[name]()
    else:
        result = bench_ours.WORKERS[name](workdir, rep)
    result["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def measure(name: str, workdir: Path, rep: int) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, __file__, "--worker", name, "--rep", str(rep), "--workdir", str(workdir)],
                          cwd=REPO, capture_output=True, text=True)  # fmt: skip
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        print(f"  {name}: FAILED: {' | '.join(tail)}", file=sys.stderr)
        return {"error": tail[-1] if tail else f"exit {proc.returncode}"}
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    if "seconds" in result and result["seconds"] > 0:
        result["rate"] = result["events"] / result["seconds"]
    print(f"  {name} #{rep}: " + ", ".join(f"{k}={_fmt(v)}" for k, v in result.items() if not isinstance(v, list)),
          file=sys.stderr)  # fmt: skip
    return result


def _fmt(v: Any) -> str:
    return f"{v:,.2f}" if isinstance(v, float) else str(v)


def run_all(repeat: int) -> tuple[dict[str, dict[str, Any]], float]:
    started = time.perf_counter()
    best: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="cse-bench-") as tmp:
        workdir = Path(tmp)
        best["baseline"] = measure("baseline", workdir, 0)  # creates pair.sqlite (empty) as a side effect
        measure("import_large", workdir, 0)  # untimed set-up of the memory check
        for rep in range(repeat):
            for name, _ in ROUND:
                result = measure(name, workdir, rep)
                old = best.get(name)
                if old is None or "error" in old or result.get("rate", 0) > old.get("rate", 0):
                    best[name] = {**result, "rss_mb": max(result.get("rss_mb", 0), (old or {}).get("rss_mb", 0))}
        for name, _ in ONCE:
            best[name] = measure(name, workdir, 0)
    return best, time.perf_counter() - started


def _rate(r: dict[str, Any]) -> float:
    return float(r.get("rate", 0.0))


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())  # fmt: skip
    return (f"{cpu}, {os.cpu_count()} cores visible (shared, noisy), Linux {platform.release()}, "
            f"Python {platform.python_version()}, load average at start {os.getloadavg()[0]:.2f}")  # fmt: skip


def report(best: dict[str, dict[str, Any]], repeat: int, seconds: float, where: str) -> str:
    labels = dict(ROUND + ONCE)
    lines = [f"Run of {time.strftime('%Y-%m-%d %H:%M %Z')}: {repeat} round(s), best round per row, "
             f"{seconds:.0f} s in all. Machine: {where}.", "",
             "| measurement | events | seconds | events/s | peak RSS MB |", "|---|---:|---:|---:|---:|"]  # fmt: skip
    for name, label in ROUND + ONCE:
        r = best.get(name, {})
        if "error" in r:
            lines.append(f"| {label} | failed: {r['error']} | | | |")
        elif name != "profile_pair" and r:
            lines.append(f"| {label} | {r['events']:,} | {r['seconds']:.2f} | {_rate(r):,.0f} | {r['rss_mb']:.0f} |")
    lines.append(f"| (baseline: interpreter + imports, no work) | | | | {best['baseline'].get('rss_mb', 0):.0f} |")
    lines += ["", "Events: ours count inputs + derived events (what `cse backtest` reports); replay counts inputs +"
              " derived events compared; the other engines count quotes delivered to the strategy.", ""]

    naut, btr = best.get("nautilus", {}), best.get("backtrader", {})
    lines += ["**Ratios, ours / theirs (same run)**", "", "| ours | vs nautilus_trader | vs backtrader |", "|---|---:|---:|"]
    for name in ("backtest_pair", "backtest_quotes", "kernel_quotes", "replay_pair"):
        ours = _rate(best.get(name, {}))
        vs = [f"{ours / _rate(o):.3f}" if _rate(o) else "n/a" for o in (naut, btr)]
        lines.append(f"| {labels[name]} | {vs[0]} | {vs[1]} |")

    small, large, base = best.get("backtest_pair", {}), best.get("backtest_large", {}), best["baseline"]
    if "rss_mb" in small and "events" in large:
        ev = large["events"] / small["events"]
        rss = large["rss_mb"] / small["rss_mb"]
        above = (large["rss_mb"] - base["rss_mb"]) / max(small["rss_mb"] - base["rss_mb"], 1e-9)
        lines += ["", f"**Memory**: {ev:.2f}x the events -> {rss:.2f}x the peak RSS "
                  f"({small['rss_mb']:.0f} -> {large['rss_mb']:.0f} MB; above the {base['rss_mb']:.0f} MB baseline:"
                  f" {above:.2f}x)."]  # fmt: skip

    kp = best.get("kernel_pair", {})
    if "decode_s" in kp:
        total = kp["read_merge_s"] + kp["decode_s"] + kp["restamp_s"] + kp["kernel_s"]
        parts = [("read + merge from SQLite", kp["read_merge_s"]), ("decode (pydantic validate_json)", kp["decode_s"]),
                 ("re-stamp (model_copy)", kp["restamp_s"]), ("kernel: venues + 5 deciders + cascade", kp["kernel_s"])]  # fmt: skip
        lines += ["", f"**Where the time goes** (2 captures, {kp['events']:,} events, each stage timed per event in "
                  "one streaming pass; a full backtest adds encoding + digest + writing the derived events and "
                  "re-stamped inputs to the log):", "",
                  "| stage | seconds | share | events/s of the stage alone |", "|---|---:|---:|---:|"]  # fmt: skip
        for label, s in parts:
            lines.append(f"| {label} | {s:.2f} | {s / total:.0%} | {kp['events'] / s:,.0f} |")

    prof = best.get("profile_pair", {})
    for key, title in (("by_cumulative", "cumulative"), ("by_own", "own (tottime)")):
        if key in prof:
            lines += ["", f"**cProfile, backtest of the 2 captures, top 10 by {title} time** (profiled total "
                      f"{prof['total_s']:.1f} s):", "", "| function | calls | own s | cumulative s | share |",
                      "|---|---:|---:|---:|---:|"]  # fmt: skip
            for row in prof[key]:
                lines.append(f"| `{row['function']}` | {row['calls']:,} | {row['own_s']} | {row['cumulative_s']} |"
                             f" {row['share']:.0%} |")  # fmt: skip

    lines += ["", "**Targets**", ""]
    for name in ("replay_pair", "backtest_pair"):
        rate = _rate(best.get(name, {}))
        verdict = "met" if rate >= TARGET else f"NOT met ({TARGET / rate:.0f}x short)" if rate else "not measured"
        lines.append(f"- >= 1,000,000 events/s, {labels[name]}: {rate:,.0f}/s, {verdict}.")
    if _rate(naut):
        ahead = _rate(best.get("backtest_quotes", {})) / _rate(naut)
        lines.append(f"- ahead of nautilus_trader on the same quotes: {'met' if ahead >= 1 else 'NOT met'} "
                     f"(ours/theirs {ahead:.3f}; kernel alone, pre-decoded: "
                     f"{_rate(best.get('kernel_quotes', {})) / _rate(naut):.3f}).")  # fmt: skip
    if "rss_mb" in small and "rss_mb" in large:
        flat = large["rss_mb"] / small["rss_mb"] < 1.25
        lines.append(f"- memory flat in the number of events: {'met' if flat else 'NOT met'} "
                     f"({rss:.2f}x RSS for {ev:.2f}x events).")
    return "\n".join(lines) + "\n"


def write_docs(text: str) -> None:
    doc = DOCS.read_text() if DOCS.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    head, _, rest = doc.partition(START)
    _, _, tail = rest.partition(END)
    DOCS.write_text(f"{head}{START}\n{text}{END}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-docs", action="store_true", help="print only; leave docs/benchmarks.md alone")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--rep", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.workdir, args.rep)
        return
    where = machine()
    versions = ", ".join(f"{p} {version(p)}" for p in ("nautilus_trader", "backtrader", "pydantic"))
    print(f"benchmarks ({versions}); progress on stderr", file=sys.stderr)
    best, seconds = run_all(args.repeat)
    text = report(best, args.repeat, seconds, f"{where}; {versions}")
    print(text)
    if not args.no_docs:
        write_docs(text)
        print(f"results written to {DOCS.relative_to(REPO)}", file=sys.stderr)


if __name__ == "__main__":
    main()
