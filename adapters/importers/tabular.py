"""Import tabular quotes and trades (CSV or Parquet) through a column mapping.

Presets cover the files we have: `nautilus-quotes` / `nautilus-trades` (Binance spot parquet:
timestamp, symbol, ask_size, ask, bid_size, bid / timestamp, trade_id, price, quantity, buyer_maker) and
`tardis-quotes` / `tardis-trades` (Tardis CSV, µs times). Any other layout: build a `QuoteColumns` /
`TradeColumns`.

Reading streams record batches through pyarrow (CSV: every column read as text, so decimals stay exact);
polars converts the time column of each batch to integer ns. Money columns that arrive as floats (the nautilus
parquet) are converted through `repr(float)`, the shortest text that reads back as the same float, i.e. the
digits the writer most likely had; decimal text is used as is.

Streams: `md.{venue}.{instrument}.quotes` / `.trades` (each file is sorted on its own; `application.merge`
interleaves them). Time: `time` gives event time = ingest time; for Tardis the preset uses `local_timestamp` (when the
recorder saw the message, like the Binance captures), not the exchange `timestamp`.
Instrument: `instrument=` if given, else the `instrument` column with "/" and "-" removed, upper-cased
(`BTC/USDT` -> `BTCUSDT`). Line numbers in refused rows: CSV = physical line (header is line 1),
Parquet = 1-based data row.
Feed (see `common`): the `exchange` column's value where the mapping has one (Tardis files do), so files of
two exchanges never share a stream; a file with rows of two exchanges is refused.
File-level errors (the whole import is refused): an empty file, a missing column, a file that is not CSV
or Parquet, no valid row.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from adapters.importers.common import FileError, ImportLog, ImportReport, ImportSink, RowError
from adapters.instruments.catalog import InstrumentCatalog
from domain.events import Envelope, EventBase, QuoteTick, TradeTick
from domain.values import Side

SOURCE = "import.tabular"
TimeUnit = Literal["s", "ms", "us", "ns"]
_UNIT_NS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
_T = "__time_ns"


@dataclass(frozen=True, slots=True)
class QuoteColumns:
    time: str
    time_unit: TimeUnit
    bid_price: str
    bid_size: str
    ask_price: str
    ask_size: str
    instrument: str | None = None
    exchange: str | None = None
    kind: Literal["quotes"] = "quotes"


@dataclass(frozen=True, slots=True)
class TradeColumns:
    time: str
    time_unit: TimeUnit
    price: str
    size: str
    trade_id: str
    side: str
    side_is: Literal["aggressor", "buyer_maker"]
    """`aggressor`: buy/sell of the taker; `buyer_maker`: true means the aggressor sold."""
    instrument: str | None = None
    exchange: str | None = None
    kind: Literal["trades"] = "trades"


Columns = QuoteColumns | TradeColumns


@dataclass(frozen=True, slots=True)
class Preset:
    columns: Columns
    venue: str


PRESETS: dict[str, Preset] = {
    "nautilus-quotes": Preset(QuoteColumns("timestamp", "ms", "bid", "bid_size", "ask", "ask_size", "symbol"), "binance-spot"),
    "nautilus-trades": Preset(TradeColumns("timestamp", "ms", "price", "quantity", "trade_id", "buyer_maker", "buyer_maker"), "binance-spot"),
    "tardis-quotes": Preset(QuoteColumns("local_timestamp", "us", "bid_price", "bid_amount", "ask_price", "ask_amount", "symbol", "exchange"), "binance-usdm"),
    "tardis-trades": Preset(TradeColumns("local_timestamp", "us", "price", "amount", "id", "side", "aggressor", "symbol", "exchange"), "binance-usdm"),
}  # fmt: skip


def import_table(
    log: ImportLog,
    session_id: str,
    paths: Sequence[Path],
    *,
    columns: Columns,
    venue: str,
    code_version: Callable[[], str],
    instrument: str | None = None,
    batch_size: int = 5_000,
    max_bad_rows_kept: int = 100,
    echo: Callable[[str], None] | None = print,
    instruments: InstrumentCatalog | None = None,
) -> ImportReport:
    config = {"importer": SOURCE, "columns": asdict(columns), "venue": venue, "instrument": instrument}
    sink = ImportSink(
        log, session_id, source=SOURCE, config=config, code_version=code_version,
        batch_size=batch_size, max_bad_rows_kept=max_bad_rows_kept, echo=echo, instruments=instruments,
    )  # fmt: skip
    return sink.run(
        paths,
        lambda s, path: feed_file(
            s, path, columns=columns, venue=venue, instrument=instrument, batch_rows=batch_size
        ),
    )


def import_preset(
    log: ImportLog, session_id: str, paths: Sequence[Path], preset: str, *, code_version: Callable[[], str],
    venue: str | None = None, instrument: str | None = None, echo: Callable[[str], None] | None = print,
    instruments: InstrumentCatalog | None = None,
) -> ImportReport:  # fmt: skip
    p = PRESETS[preset]
    return import_table(
        log, session_id, paths, columns=p.columns, venue=venue or p.venue, instrument=instrument,
        code_version=code_version, echo=echo, instruments=instruments,
    )  # fmt: skip


def feed_file(
    sink: ImportSink, path: Path, *, columns: Columns, venue: str, instrument: str | None = None,
    batch_rows: int = 5_000,
) -> None:  # fmt: skip
    if instrument is None and columns.instrument is None:
        raise FileError(path, "the column mapping has no instrument column; pass --instrument")
    is_csv = path.suffix.lower() != ".parquet"
    names = _needed(columns)
    header = _header(path) if is_csv else pq.ParquetFile(path).schema_arrow.names
    missing = [n for n in names if n not in header]
    if missing:
        raise FileError(path, f"missing column(s) {', '.join(missing)}; the file has {', '.join(header) or 'none'}"
                              " (see docs/import-formats.md)", 1 if is_csv else None)  # fmt: skip
    first_line = 2 if is_csv else 1
    row_index = 0
    exchange: str | None = None
    for batch in _batches(path, header, batch_rows):
        frame = pl.from_arrow(batch)
        assert isinstance(frame, pl.DataFrame)
        frame = frame.with_columns(_time_ns(frame, columns.time, columns.time_unit).alias(_T))
        for row in frame.select([_T, *names]).iter_rows(named=True):
            line = first_line + row_index
            row_index += 1
            if columns.exchange is not None:
                value = str(row[columns.exchange])
                if exchange is None:
                    exchange = value
                    sink.begin_file(value)
                elif value != exchange:
                    raise FileError(path, f"rows of two exchanges ({exchange}, then {value}); import each"
                                          " exchange's rows separately, under its own --venue", line)  # fmt: skip
            time_ns = row[_T]
            if time_ns is None or time_ns < 0:
                sink.refuse(line, "bad time", f"{columns.time}={row[columns.time]!r}")
                continue
            inst = instrument
            if inst is None:
                raw_inst = row[columns.instrument] if columns.instrument else None
                if not raw_inst:
                    sink.refuse(line, "no instrument", "column empty and --instrument not given")
                    continue
                inst = str(raw_inst).replace("/", "").replace("-", "").upper()
            build = (
                _quote(row, columns, venue, inst)
                if isinstance(columns, QuoteColumns)
                else _trade(row, columns, venue, inst)
            )
            sink.add(line=line, venue=venue, instrument=inst, time_ns=time_ns, ingest_ns=time_ns, build=build,
                     part=columns.kind)  # fmt: skip


def _header(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as fh:
        header = next(csv.reader(fh), None)
    if header is None:
        raise FileError(path, "empty file (no header line)")
    return header


def _batches(path: Path, header: list[str], rows: int) -> Iterator[pa.RecordBatch]:
    if path.suffix.lower() == ".parquet":
        yield from pq.ParquetFile(path).iter_batches(batch_size=rows)
        return
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=1 << 20),
        convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in header}),
    )
    yield from reader


def _needed(c: Columns) -> list[str]:
    if isinstance(c, QuoteColumns):
        names = [c.time, c.bid_price, c.bid_size, c.ask_price, c.ask_size]
    else:
        names = [c.time, c.price, c.size, c.trade_id, c.side]
    names += [name for name in (c.instrument, c.exchange) if name]
    return list(dict.fromkeys(names))


def _time_ns(frame: pl.DataFrame, name: str, unit: TimeUnit) -> pl.Expr:
    dtype = frame.schema[name]
    if isinstance(dtype, pl.Datetime):
        return pl.col(name).dt.epoch("ns")
    if dtype.is_float():
        return (pl.col(name) * _UNIT_NS[unit]).cast(pl.Int64, strict=False)
    return pl.col(name).cast(pl.Int64, strict=False) * _UNIT_NS[unit]


def _money(value: Any, name: str) -> Any:
    if value is None or value == "":
        raise RowError("empty field", name)
    if isinstance(value, float):
        return repr(value)
    return value


def _quote(row: dict[str, Any], c: QuoteColumns, venue: str, inst: str) -> Callable[[Envelope], EventBase]:
    return lambda env: QuoteTick(
        envelope=env, venue=venue, instrument=inst,
        bid_price=_money(row[c.bid_price], c.bid_price), bid_size=_money(row[c.bid_size], c.bid_size),
        ask_price=_money(row[c.ask_price], c.ask_price), ask_size=_money(row[c.ask_size], c.ask_size),
    )  # fmt: skip


_TRUE = {"true", "1", "t", "yes"}
_FALSE = {"false", "0", "f", "no"}


def _side(value: Any, c: TradeColumns) -> Side:
    text = str(value).strip().lower()
    if c.side_is == "aggressor":
        if text in ("buy", "b"):
            return Side.BUY
        if text in ("sell", "s"):
            return Side.SELL
        raise RowError("bad side", f"{c.side}={value!r} is not buy/sell")
    if text in _TRUE:
        return Side.SELL  # the buyer was the maker, so the aggressor sold
    if text in _FALSE:
        return Side.BUY
    raise RowError("bad side", f"{c.side}={value!r} is not a boolean")


def _trade(row: dict[str, Any], c: TradeColumns, venue: str, inst: str) -> Callable[[Envelope], EventBase]:
    def build(env: Envelope) -> EventBase:
        trade_id = row[c.trade_id]
        if trade_id is None or trade_id == "":
            raise RowError("empty field", c.trade_id)
        return TradeTick(
            envelope=env, venue=venue, instrument=inst, price=_money(row[c.price], c.price),
            size=_money(row[c.size], c.size), aggressor_side=_side(row[c.side], c), venue_trade_id=str(trade_id),
        )  # fmt: skip

    return build
