"""Import QuantConnect Lean crypto quote bars (header-less CSV inside a zip) as QuoteTicks.

Path layout: `<market>/<exchange>/<resolution>/<symbol>/<YYYYMMDD>_quote.zip` (second, minute) or
`<market>/<exchange>/<resolution>/<symbol>_quote.zip` (hour, daily). Venue is `{exchange}-{market}`
(e.g. `binance-cryptofuture`, `bybit-crypto`), instrument the symbol upper-cased (`BTCUSD`).

Decisions:
- One QuoteTick per bar, stamped at the bar END (open time + bar length, e.g. +60 s for minute bars): the
  close prices are only known then, so stamping at the open would leak the future into a backtest. Prices are
  bid_close / ask_close, sizes last_bid_size / last_ask_size; event time = ingest time = bar end.
- Trade bars (`*_trade.zip`) are NOT imported: an OHLCV bar is not a trade (no aggressor side, no trade id),
  and a made-up TradeTick would feed fake prints to the simulated venue. `import_lean_quotes` refuses them.
- Time column: ms of day of the file's date (second/minute), or `YYYYMMDD HH:mm` (hour/daily).
- Feed (see `common`): `lean:{market}/{exchange}`, so two exchanges never share a stream.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from adapters.importers.common import FileError, ImportLog, ImportReport, ImportSink, RowError
from adapters.instruments.catalog import InstrumentCatalog
from domain.events import Envelope, EventBase, QuoteTick

SOURCE = "import.lean"
BAR_NS = {
    "second": 1_000_000_000,
    "minute": 60_000_000_000,
    "hour": 3_600_000_000_000,
    "daily": 86_400_000_000_000,
}
QUOTE_FIELDS = 11


@dataclass(frozen=True, slots=True)
class LeanFile:
    market: str
    exchange: str
    resolution: str
    symbol: str
    day_ns: int | None
    """Midnight UTC of the file's date (second/minute files), None when rows carry their own date."""
    kind: str

    @property
    def venue(self) -> str:
        return f"{self.exchange}-{self.market}"

    @property
    def instrument(self) -> str:
        return self.symbol.upper()


def parse_path(path: Path) -> LeanFile:
    stem = path.name.removesuffix(".zip")
    head, _, kind = stem.rpartition("_")
    parts = path.parts
    if (
        len(parts) >= 4 and parts[-2] in BAR_NS
    ):  # hour/daily: <market>/<exchange>/<resolution>/<symbol>_<kind>.zip
        market, exchange, resolution = parts[-4], parts[-3], parts[-2]
        return LeanFile(market, exchange, resolution, head, None, kind)
    if (
        len(parts) >= 5 and parts[-3] in BAR_NS
    ):  # second/minute: .../<resolution>/<symbol>/<YYYYMMDD>_<kind>.zip
        market, exchange, resolution, symbol = parts[-5], parts[-4], parts[-3], parts[-2]
        try:
            day = datetime.strptime(head, "%Y%m%d").replace(tzinfo=UTC)
        except ValueError:
            raise FileError(path, f"{head!r} is not a YYYYMMDD date (Lean <date>_<kind>.zip)") from None
        return LeanFile(market, exchange, resolution, symbol, int(day.timestamp()) * 1_000_000_000, kind)
    raise FileError(path, "not a Lean <market>/<exchange>/<resolution>/... data path")


def import_lean_quotes(
    log: ImportLog,
    session_id: str,
    paths: Sequence[Path],
    *,
    code_version: Callable[[], str],
    batch_size: int = 5_000,
    max_bad_rows_kept: int = 100,
    echo: Callable[[str], None] | None = print,
    instruments: InstrumentCatalog | None = None,
) -> ImportReport:
    """Import quote-bar zips (in the order given) into one session."""
    for path in paths:
        if parse_path(path).kind != "quote":
            raise FileError(path, f"only quote bars are imported ({parse_path(path).kind} bars are not ticks:"
                                  " no side, no trade id; see docs/import-formats.md)")  # fmt: skip
    config = {"importer": SOURCE}
    sink = ImportSink(
        log, session_id, source=SOURCE, config=config, code_version=code_version,
        batch_size=batch_size, max_bad_rows_kept=max_bad_rows_kept, echo=echo, instruments=instruments,
    )  # fmt: skip
    return sink.run(paths, feed_file)


def feed_file(sink: ImportSink, path: Path) -> None:
    info = parse_path(path)
    bar_ns = BAR_NS[info.resolution]
    sink.begin_file(f"lean:{info.market}/{info.exchange}")
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise FileError(path, f"not a zip file ({exc})") from exc
    with archive:
        members = [m for m in archive.namelist() if not m.endswith("/")]
        if len(members) != 1:
            raise FileError(path, f"expected one CSV in the zip, found {members}")
        with archive.open(members[0]) as raw:
            for line_no, line in enumerate(io.TextIOWrapper(raw, encoding="utf-8", errors="replace"), 1):
                fields = line.strip().split(",")
                if fields == [""]:
                    sink.refuse(line_no, "empty line")
                    continue
                if len(fields) != QUOTE_FIELDS:
                    sink.refuse(
                        line_no, "wrong field count", f"expected {QUOTE_FIELDS} fields, got {len(fields)}"
                    )
                    continue
                try:
                    bar_end = _open_time_ns(fields[0], info.day_ns) + bar_ns
                except ValueError as exc:
                    sink.refuse(line_no, "bad bar time", f"{fields[0]!r}: {exc}")
                    continue
                sink.add(line=line_no, venue=info.venue, instrument=info.instrument, time_ns=bar_end,
                         ingest_ns=bar_end, build=_quote(fields, info))  # fmt: skip


def _open_time_ns(value: str, day_ns: int | None) -> int:
    if day_ns is not None:
        ms = int(value)
        if not 0 <= ms < 86_400_000:
            raise ValueError("ms of day out of range")
        return day_ns + ms * 1_000_000
    opened = datetime.strptime(value, "%Y%m%d %H:%M").replace(tzinfo=UTC)
    return int(opened.timestamp()) * 1_000_000_000


def _quote(f: list[str], info: LeanFile) -> Callable[[Envelope], EventBase]:
    def build(env: Envelope) -> EventBase:
        for index, name in ((4, "bid_close"), (5, "last_bid_size"), (9, "ask_close"), (10, "last_ask_size")):
            if not f[index]:
                raise RowError("one-sided bar", f"{name} is empty")
        return QuoteTick(
            envelope=env, venue=info.venue, instrument=info.instrument,
            bid_price=f[4], bid_size=f[5], ask_price=f[9], ask_size=f[10],
        )  # fmt: skip

    return build
