"""The benchmark's market data: the two-capture session and the dense session, as lists of capture files that
every engine reads (ours through `cse import`, nautilus_trader and hftbacktest through their loaders).

- **pair**: Binance spot + USD-M BTCUSDT of 2024-08-08 (the two captures of the spread demo).
- **dense**: every shared Binance capture (spot 08+09, USD-M 08, COIN-M 08+09: 291,914 messages over 650.6 s of
  market time, three venues at once) played `LAPS` times back to back. Lap k is the same five files with every
  clock moved k x `LAP_SHIFT_S` later (the receive time that prefixes each line, and the exchange's `E`/`T`
  ms stamps) and every exchange sequence number moved k x `ID_SHIFT` up (depth `U`/`u`/`pu`, snapshot
  `lastUpdateId`, bookTicker `u`, trade `t`), so each lap is a valid continuation: times increase, a lap's first
  depth updates do not bridge to the previous lap (a real gap) and its REST snapshot resyncs the book, as
  after a reconnect. Lap 0 is the captures byte for byte. The files are written once per run (deterministic:
  the same bytes on every machine) and a venue's files are listed in time order, as `cse import` wants.
  `LAPS` = 10 gives 2,919,140 messages; lap 0 alone is the memory check's 1x (10x the messages, same state).

Messages: one line of a capture is one message (a depth update with all its levels, a trade, a bookTicker, a
REST snapshot), the unit of every figure. hftbacktest stores one row per level (counted separately).
"""

from __future__ import annotations

import gzip
import os
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("CSE_SHARED_DATA", REPO.parent / "shared" / "data")) / "hftbacktest"
PAIR = [DATA / "spot" / "btcusdt_20240808.gz", DATA / "usdm" / "btcusdt_20240808.gz"]
LAP = [DATA / "spot" / "btcusdt_20240808.gz", DATA / "spot" / "btcusdt_20240809.gz",
       DATA / "usdm" / "btcusdt_20240808.gz",
       DATA / "cm" / "btcusd_perp_20240808.gz", DATA / "cm" / "btcusd_perp_20240809.gz"]  # fmt: skip
LAPS = int(os.environ.get("CSE_BENCH_LAPS", "10"))  # run.py --laps sets it for its measuring subprocesses
LAP_SHIFT_S = 660  # > the 650.6 s from the first to the last line of the five captures
ID_SHIFT = 10**10  # > the span of any sequence number within one lap (update ids move ~10^7 in a lap)

_STAMPS = re.compile(rb'"(E|T|U|u|pu|lastUpdateId|t)":(\d+)')
_TIMES = {b"E", b"T"}


def dense(workdir: Path, laps: int | None = None) -> list[Path]:
    """The dense session's files (written under `workdir/dense` if missing), venue by venue in time order."""
    laps = LAPS if laps is None else laps
    files = []
    for folder in dict.fromkeys(src.parent.name for src in LAP):
        for lap in range(laps):
            for src in (s for s in LAP if s.parent.name == folder):
                dst = src if lap == 0 else workdir / "dense" / f"lap{lap:02d}" / folder / src.name
                if not dst.exists():
                    _write_lap(src, dst, lap)
                files.append(dst)
    return files


def _write_lap(src: Path, dst: Path, lap: int) -> None:
    shift_ns, shift_ms, shift_id = lap * LAP_SHIFT_S * 10**9, lap * LAP_SHIFT_S * 1000, lap * ID_SHIFT

    def stamp(m: re.Match[bytes]) -> bytes:
        key = m.group(1)
        return b'"%s":%d' % (key, int(m.group(2)) + (shift_ms if key in _TIMES else shift_id))

    dst.parent.mkdir(parents=True, exist_ok=True)
    part = dst.with_suffix(".part")
    with gzip.open(src, "rb") as fin, gzip.open(part, "wb", compresslevel=1) as fout:
        for line in fin:
            head, _, body = line.partition(b" ")
            fout.write(b"%d " % (int(head) + shift_ns) + _STAMPS.sub(stamp, body))
    part.rename(dst)


def messages(files: list[Path]) -> int:
    """Market-data messages in the files: one per line."""
    total = 0
    for path in files:
        with gzip.open(path, "rb") as fh:
            total += sum(1 for _ in fh)
    return total
