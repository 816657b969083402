"""`make bench`: every measurement in its own subprocess (so its peak RSS is its own), ours and the other
engines interleaved in rounds within one run, on the two-capture session and the dense session
(`sessions.py`); prints the tables and rewrites the results section of docs/benchmarks.md.

    python tests/bench/run.py [--repeat N] [--no-docs] [--no-dense]     # N rounds (default 2); best round

Every figure is in market-data messages per second: one capture line (a depth update with all its levels, a
trade, a bookTicker, a snapshot) is one message, whatever the engine stores (hftbacktest: one row per level).
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
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path[:0] = [str(REPO), str(HERE)]

import sessions  # noqa: E402
from docs_section import write_section  # noqa: E402

DOCS = REPO / "docs" / "benchmarks.md"
START, END = "<!-- bench:results:start -->", "<!-- bench:results:end -->"
TARGET_RUN = 1_000_000  # messages/s, backtest and replay, one core
TARGET_IMPORT = 500_000
TARGET_VS_NAUTILUS = 5.0
TARGET_MEMORY = 1.2  # peak RSS ratio for 10x the messages
PEERS = ("nautilus_trader", "hftbacktest", "numba")


def rows(reference: bool, replay_reference: bool, dense: bool) -> list[tuple[str, str, str]]:
    """(worker, session kind, label) of one round, in the order they run."""
    today = "" if reference else " (today's engine: the reference path; no `--reference` flag yet)"
    out = []
    for kind, name in (("pair", "2 captures"), ("dense", "dense session")) if dense else (("pair", "2 captures"),):
        out += [(f"import_{kind}", kind, f"`cse import`, {name}"),
                (f"backtest_{kind}", kind, f"`cse backtest`, {name}, all kinds{today}")]  # fmt: skip
        if reference:
            out.append((f"reference_{kind}", kind, f"`cse backtest --reference`, {name}, all kinds"))
        out.append((f"replay_{kind}", kind, f"`cse replay --verify`, {name}"))
        if replay_reference:
            out.append((f"replay_reference_{kind}", kind, f"`cse replay --verify --reference`, {name}"))
        if kind == "pair":
            out.append(("backtest_quotes", "quotes", "`cse backtest`, 2 captures, bookTicker quotes only"))
        out += [(f"nautilus_{kind}", kind, f"nautilus_trader BacktestEngine.run, {name}, quotes only"),
                (f"hftbacktest_{kind}", kind, f"hftbacktest + numba strategy, {name}, all kinds")]  # fmt: skip
    return out


ONCE = [("backtest_lap", "lap", "`cse backtest`, dense session's first lap (memory 1x)"),
        ("profile_pair", "pair", "cProfile of `cse backtest`, 2 captures")]  # fmt: skip


def worker(name: str, workdir: Path, rep: int) -> None:
    warnings.simplefilter("ignore")
    if name.startswith("prepare_hftbacktest_"):  # untimed: capture lines -> hftbacktest rows
        import bench_hftbacktest

        kind = name.rsplit("_", 1)[1]
        if kind == "pair":
            bench_hftbacktest.prepare_warm_up(sessions.PAIR, workdir / "hbt" / "warm")
        paths = sessions.PAIR if kind == "pair" else sessions.dense(workdir)
        result: dict[str, Any] = bench_hftbacktest.prepare(paths, workdir / "hbt" / kind)
    elif name.startswith("hftbacktest_"):
        import bench_hftbacktest

        result = bench_hftbacktest.run(workdir / "hbt" / name.split("_", 1)[1], workdir / "hbt" / "warm")
    elif name.startswith("nautilus_"):
        import bench_engines

        kind = name.split("_", 1)[1]
        result = bench_engines.nautilus(sessions.PAIR if kind == "pair" else sessions.dense(workdir))
    else:
        import bench_ours

        result = bench_ours.WORKERS[name](workdir, rep)
    result["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def measure(name: str, workdir: Path, rep: int, messages: int = 0) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, __file__, "--worker", name, "--rep", str(rep), "--workdir", str(workdir)],
                          cwd=REPO, capture_output=True, text=True)  # fmt: skip
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        print(f"  {name}: FAILED: {' | '.join(tail)}", file=sys.stderr)
        return {"error": tail[-1] if tail else f"exit {proc.returncode}"}
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    if name.startswith("nautilus_"):
        messages = result["quotes"]  # it gets the quotes only
    if messages and result.get("seconds", 0) > 0:
        result["messages"] = messages
        result["rate"] = messages / result["seconds"]
    print(f"  {name} #{rep}: " + ", ".join(f"{k}={_fmt(v)}" for k, v in result.items() if not isinstance(v, list)),
          file=sys.stderr)  # fmt: skip
    return result


def _fmt(v: Any) -> str:
    return f"{v:,.2f}" if isinstance(v, float) else str(v)


def run_all(repeat: int, dense: bool, plan: list[tuple[str, str, str]]) -> tuple[dict[str, dict[str, Any]], float]:
    started = time.perf_counter()
    best: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="cse-bench-") as tmp:
        workdir = Path(tmp)
        import bench_ours

        lap = sessions.messages(sessions.LAP)  # the dense session's laps have the first lap's lines
        counts = {"pair": sessions.messages(sessions.PAIR), "lap": lap, "dense": lap * sessions.LAPS,
                  "quotes": sessions.messages(bench_ours.files("quotes", workdir))}  # fmt: skip
        if dense:
            sessions.dense(workdir)
        best["baseline"] = measure("baseline", workdir, 0)
        for kind in ("pair", "dense") if dense else ("pair",):  # untimed set-up
            best[f"prepare_hftbacktest_{kind}"] = measure(f"prepare_hftbacktest_{kind}", workdir, 0)
        for name in ("import_quotes", "import_lap") if dense else ("import_quotes",):
            measure(name, workdir, 0)
        for rep in range(repeat):
            for name, kind, _ in plan:
                result = measure(name, workdir, rep, counts[kind])
                old = best.get(name)
                if old is None or "error" in old or result.get("rate", 0) > old.get("rate", 0):
                    best[name] = {**result, "rss_mb": max(result.get("rss_mb", 0), (old or {}).get("rss_mb", 0))}
        for name, kind, _ in ONCE if dense else ONCE[1:]:
            best[name] = measure(name, workdir, 0, counts[kind])
    return best, time.perf_counter() - started


def _rate(r: dict[str, Any]) -> float:
    return float(r.get("rate", 0.0))


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())  # fmt: skip
    return (f"{cpu}, {os.cpu_count()} cores visible (shared, noisy), Linux {platform.release()}, "
            f"Python {platform.python_version()}, load average at start {os.getloadavg()[0]:.2f}")  # fmt: skip


def _verdict(met: bool | None) -> str:
    return "not measured" if met is None else "**met**" if met else "**missed**"


def report(best: dict[str, dict[str, Any]], plan: list[tuple[str, str, str]], repeat: int, seconds: float,
           where: str) -> str:  # fmt: skip
    laps = "" if sessions.LAPS == 10 else " (fewer than the 10 laps of record: a trial of the harness)"
    lines = [f"Run of {time.strftime('%Y-%m-%d %H:%M %Z')}: {repeat} round(s), best round per row, "
             f"{seconds:.0f} s in all (set-up included); dense session of {sessions.LAPS} laps{laps}. "
             f"Machine: {where}.", "",
             "| measurement | messages | seconds | messages/s | peak RSS MB |", "|---|---:|---:|---:|---:|"]  # fmt: skip
    for name, _, label in plan + ONCE:
        r = best.get(name, {})
        if "error" in r:
            lines.append(f"| {label} | failed: {r['error']} | | | |")
        elif "rate" in r:
            lines.append(f"| {label} | {r['messages']:,} | {r['seconds']:.2f} | {_rate(r):,.0f} | {r['rss_mb']:.0f} |")
    lines.append(f"| (baseline: interpreter + `cse` imported, no work) | | | | {best['baseline'].get('rss_mb', 0):.0f} |")

    notes = ["", "Messages: capture lines of the session (a depth update with all its levels is one message). Ours "
             "and hftbacktest get every line; nautilus_trader gets the bookTicker quotes only (its count is the "
             "quotes its strategy received)."]  # fmt: skip
    for kind in ("pair", "dense"):
        hbt, rows_ = best.get(f"hftbacktest_{kind}", {}), best.get(f"prepare_hftbacktest_{kind}", {})
        if "rate" in hbt and rows_:
            per = rows_["rows"] / rows_["messages"]
            notes.append(f"hftbacktest, {kind}: {rows_['rows']:,} rows for {rows_['messages']:,} messages "
                         f"({per:.2f} rows per message): {rows_['rows'] / hbt['seconds']:,.0f} rows/s = "
                         f"{_rate(hbt):,.0f} messages/s; {hbt['wakes']:,} strategy wakes, {hbt['signals']} signals.")  # fmt: skip
    for kind in ("pair", "dense"):
        ours = best.get(f"backtest_{kind}", {})
        if "digest" in ours:
            # The runs have their own session ids (ids, hence digests, depend on them): the reference path is
            # compared by replaying the core's backtest through it, event by event.
            notes.append(f"`cse backtest`, {kind}: {ours['inputs']} inputs, {ours['derived']} derived events, "
                         f"{ours.get('trades')} trades, digest {ours['digest'][:16]}...; replay: "
                         f"{best.get(f'replay_{kind}', {}).get('verdict', '')}; replay --reference (every input "
                         f"through the kernel): {best.get(f'replay_reference_{kind}', {}).get('verdict', '')}")  # fmt: skip
    lines += notes

    lines += ["", "**Targets** (issue 12; ratios between engines of the same run)", "",
              "| target | session | figure | met? |", "|---|---|---|---|"]  # fmt: skip
    for kind in ("pair", "dense"):
        ours = _rate(best.get(f"backtest_{kind}", {}))
        if not ours:
            continue
        name = "2 captures" if kind == "pair" else "dense"
        replay = _rate(best.get(f"replay_{kind}", {}))
        imported = _rate(best.get(f"import_{kind}", {}))
        naut, hbt = _rate(best.get(f"nautilus_{kind}", {})), _rate(best.get(f"hftbacktest_{kind}", {}))
        lines += [
            f"| backtest >= 1,000,000 msg/s | {name} | {ours:,.0f} | {_verdict(ours >= TARGET_RUN)} |",
            f"| replay --verify >= 1,000,000 msg/s | {name} | {replay:,.0f} | {_verdict(replay >= TARGET_RUN if replay else None)} |",
            f"| backtest >= 5x nautilus_trader | {name} | {ours / naut:.3f}x" if naut else f"| backtest >= 5x nautilus_trader | {name} | n/a",
            f"| backtest ahead of hftbacktest | {name} | {ours / hbt:.3f}x" if hbt else f"| backtest ahead of hftbacktest | {name} | n/a",
            f"| import >= 500,000 msg/s | {name} | {imported:,.0f} | {_verdict(imported >= TARGET_IMPORT if imported else None)} |",
        ]  # fmt: skip
        lines[-3] += f" | {_verdict(ours / naut >= TARGET_VS_NAUTILUS if naut else None)} |"
        lines[-2] += f" | {_verdict(ours / hbt > 1 if hbt else None)} |"
    small, large = best.get("backtest_lap", {}), best.get("backtest_dense", {})
    if "rss_mb" in small and "rss_mb" in large and "messages" in small and "messages" in large:
        ratio = large["rss_mb"] / small["rss_mb"]
        lines.append(f"| peak RSS for 10x the messages <= 1.2x | first lap -> dense ({large['messages'] / small['messages']:.0f}x"
                     f" messages) | {small['rss_mb']:.0f} -> {large['rss_mb']:.0f} MB = {ratio:.2f}x |"
                     f" {_verdict(ratio <= TARGET_MEMORY)} |")  # fmt: skip

    prof = best.get("profile_pair", {})
    for key, title in (("by_cumulative", "cumulative"), ("by_own", "own (tottime)")):
        if key in prof:
            lines += ["", f"**cProfile of `cse backtest`, 2 captures, top by {title} time** (profiled total "
                      f"{prof['total_s']:.1f} s):", "", "| function | calls | own s | cumulative s | share |",
                      "|---|---:|---:|---:|---:|"]  # fmt: skip
            for row in prof[key]:
                lines.append(f"| `{row['function']}` | {row['calls']:,} | {row['own_s']} | {row['cumulative_s']} |"
                             f" {row['share']:.0%} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def _versions() -> str:
    out = []
    for package in (*PEERS, "pydantic"):
        try:
            out.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            out.append(f"{package} missing")
    return ", ".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--no-docs", action="store_true", help="print only; leave docs/benchmarks.md alone")
    parser.add_argument("--no-dense", action="store_true", help="the two-capture session only (a quick look)")
    parser.add_argument("--laps", type=int, default=10,
                        help="laps of the dense session (default 10; fewer only to try the harness)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--rep", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.workdir, args.rep)
        return
    os.environ["CSE_BENCH_LAPS"] = str(args.laps)  # before `sessions` is read by any measuring subprocess
    sessions.LAPS = args.laps
    import bench_ours

    plan = rows(bench_ours.has_flag("backtest", "--reference"), bench_ours.has_flag("replay", "--reference"),
                not args.no_dense)  # fmt: skip
    where, versions = machine(), _versions()
    print(f"benchmarks ({versions}); progress on stderr", file=sys.stderr)
    best, seconds = run_all(args.repeat, not args.no_dense, plan)
    text = report(best, plan, args.repeat, seconds, f"{where}; {versions}")
    print(text)
    if not args.no_docs:
        write_section(DOCS, f"{START}\n{text}{END}", START, END, "Results")
        print(f"results written to {DOCS.relative_to(REPO)}", file=sys.stderr)


if __name__ == "__main__":
    main()
    if "--worker" not in sys.argv:  # the GraphQL API's benchmark: its own script, flags and docs section
        api = subprocess.run([sys.executable, str(HERE / "bench_api.py"), *[a for a in sys.argv[1:] if a == "--no-docs"]],
                             cwd=REPO)  # fmt: skip
        sys.exit(api.returncode and f"the GraphQL API benchmark failed (exit {api.returncode}; its output above)")
