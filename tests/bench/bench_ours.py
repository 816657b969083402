"""Our pipeline, measured through the `cse` command itself (`adapters.entrypoints.cli.main` called in this
process: the interpreter's start-up and imports are not timed, everything the command does is, report and
digest included). Whatever engine the composition root picks is what gets measured.

Each function runs in its own subprocess (run.py) and returns a dict of numbers; run.py adds the process's
peak RSS and the session's market-data messages (capture lines, `sessions.messages`).
Every session lives in its own `CSE_HOME` under the run's work directory: `pair`, `quotes` (the pair's
bookTicker lines only: what nautilus_trader gets), `lap` (the dense session's first lap: the 1x of the
memory check) and `dense`.
"""

from __future__ import annotations

import contextlib
import cProfile
import gzip
import io
import json
import os
import pstats
import shutil
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import sessions

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "deploy" / "samples" / "spread-demo.toml"
SESSION = "bench"
BACKTEST = "bench.bt"


def files(kind: str, workdir: Path) -> list[Path]:
    if kind == "pair":
        return sessions.PAIR
    if kind == "quotes":
        return _quotes_only(workdir)
    if kind == "lap":
        return sessions.dense(workdir, laps=1)
    return sessions.dense(workdir)


def _quotes_only(workdir: Path) -> list[Path]:
    """The pair's bookTicker lines, as captures of their own (same folders, so the same venues)."""
    out = []
    for src in sessions.PAIR:
        dst = workdir / "quotes-only" / src.parent.name / src.name
        if not dst.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            with gzip.open(src, "rb") as fin, gzip.open(dst, "wb", compresslevel=1) as fout:
                fout.writelines(line for line in fin if b"@bookTicker" in line)
        out.append(dst)
    return out


def has_flag(command: str, flag: str) -> bool:
    """Whether `cse COMMAND` takes FLAG (e.g. `--reference`, added with the compiled core)."""
    from adapters.entrypoints.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return any(flag in action.option_strings for action in sub.choices[command]._actions)  # type: ignore[attr-defined]


def cse(home: Path, *argv: str, profile: cProfile.Profile | None = None) -> tuple[float, str]:
    """Run `cse ARGV` with CSE_HOME=home in this process; (seconds, stdout). A failure raises."""
    from adapters.entrypoints.cli import main

    os.environ["CSE_HOME"] = str(home)
    os.environ.pop("CSE_EVENT_LOG", None)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        started = time.perf_counter()
        code = profile.runcall(main, list(argv)) if profile is not None else main(list(argv))
        seconds = time.perf_counter() - started
    if code != 0:
        raise RuntimeError(f"cse {' '.join(argv[:2])} exited {code}: {out.getvalue()[-500:]}")
    return seconds, out.getvalue()


def import_session(kind: str, workdir: Path, rep: int = 0) -> dict[str, Any]:
    """`cse import` of the session's captures; rep 0 builds the home the other rows read, later reps import
    into a scratch home deleted afterwards."""
    paths = files(kind, workdir)
    home = workdir / (kind if rep == 0 else f"{kind}-import{rep}")
    try:
        seconds, _ = cse(home, "import", *map(str, paths), "--session", SESSION)
    finally:
        if rep:
            shutil.rmtree(home, ignore_errors=True)
    return {"seconds": seconds}


def backtest(kind: str, workdir: Path, rep: int = 0, reference: bool = False) -> dict[str, Any]:
    """`cse backtest` over all the session's message kinds: strategy + risk + venues + digest + log writes."""
    extra = ["--reference"] if reference else []
    run_id = f"{BACKTEST}{'.ref' if reference else ''}{rep}"
    seconds, out = cse(workdir / kind, "backtest", "--session", SESSION, "--config", str(CONFIG), "--id", run_id,
                       "--out", str(workdir / "reports" / f"{kind}-{run_id}"), *extra)  # fmt: skip
    summary = json.loads(out)
    return {"seconds": seconds, "digest": summary.get("digest"), "inputs": summary.get("input_events"),
            "derived": summary.get("derived_events"), "trades": summary.get("trades")}  # fmt: skip


def replay(kind: str, workdir: Path, rep: int = 0, reference: bool = False) -> dict[str, Any]:
    """`cse replay --verify` of the first backtest: inputs re-run, every derived event compared."""
    extra = ["--reference"] if reference else []
    seconds, out = cse(workdir / kind, "replay", f"{BACKTEST}0", "--verify", *extra)
    return {"seconds": seconds, "verdict": out.splitlines()[0] if out else ""}


def profile_pair(workdir: Path, rep: int = 0) -> dict[str, Any]:
    """cProfile of `cse backtest` of the pair (slower than unprofiled; shares matter, not times)."""
    profiler = cProfile.Profile()
    cse(workdir / "pair", "backtest", "--session", SESSION, "--config", str(CONFIG), "--id", f"profiled{rep}",
        "--out", str(workdir / "reports" / f"profiled{rep}"), profile=profiler)  # fmt: skip
    stats = pstats.Stats(profiler, stream=io.StringIO()).stats  # type: ignore[attr-defined]
    total = max(v[3] for v in stats.values())

    def top(column: int) -> list[dict[str, Any]]:
        ranked = sorted(stats.items(), key=lambda kv: -kv[1][column])[:12]
        return [{"function": f"{_short(file)}:{line}({func})", "calls": v[1], "own_s": round(v[2], 2),
                 "cumulative_s": round(v[3], 2), "share": round(v[column] / total, 3)}
                for (file, line, func), v in ranked]  # fmt: skip

    return {"total_s": total, "by_cumulative": top(3), "by_own": top(2)}


def baseline(workdir: Path, rep: int = 0) -> dict[str, Any]:
    """Peak RSS of a process that has imported the command and its engine, and runs nothing."""
    import adapters.entrypoints.commands  # noqa: F401
    from adapters.entrypoints.cli import build_parser

    build_parser()
    return {}


def _short(file: str) -> str:
    for marker in ("site-packages/", str(REPO) + "/"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file.rsplit("/", 1)[-1] if "/" in file else file


KINDS = ("pair", "quotes", "lap", "dense")
WORKERS: dict[str, Callable[[Path, int], dict[str, Any]]] = {
    "baseline": baseline,
    "profile_pair": profile_pair,
    **{f"import_{k}": partial(import_session, k) for k in KINDS},
    **{f"backtest_{k}": partial(backtest, k) for k in KINDS},
    **{f"reference_{k}": partial(backtest, k, reference=True) for k in ("pair", "dense")},
    **{f"replay_{k}": partial(replay, k) for k in ("pair", "dense")},
    **{f"replay_reference_{k}": partial(replay, k, reference=True) for k in ("pair", "dense")},
}
