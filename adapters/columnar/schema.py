"""The columnar market-data file: one Arrow IPC file (lz4 frames, memory-mappable) per session's market data,
named by its content, `<catalog>/<sha256>.arrow` (`Settings.catalog_path`, default `var/catalog/`).

Rows. One row per book level (a depth update's or snapshot's levels: bids first, then asks, each in the
order the venue sent them), per quote, per trade, in engine order: sorted by (event_time_ns, stream index,
sequence), i.e. the order `application.merge` gives the session's market-data streams (their names sorted),
so a reader scans the file front to back. The rows of one message are contiguous; `msg_end` marks the last.
A message without levels (a depth update with empty `b` and `a`) is one row with `side` 0. Anything else a
market-data stream holds (the `InstrumentDefined` opening each stream, a recorder's `BookResyncNeeded`) is
one row of kind `KIND_EVENT` carrying its canonical JSON in `payload`.

Amounts. Every price and size is an exact decimal as (int64 mantissa `*_m`, int8 exponent `*_e`):
value = mantissa * 10**exponent, built as `Decimal(f"{m}E{e}")`, which keeps the exponent. The pair is the
amount's canonical form (`domain.values.canonical_amount`: no trailing zeros after the point, zero is (0, 0)),
exactly the Decimal that decoding the event's canonical JSON gives, so materialising a row gives the stored
event field for field. An amount whose mantissa does not fit int64 or exponent int8 is refused at import.

Columns (name, Arrow type, meaning; "null" = the event field is None, the buffer holds 0 there):

- `stream` int16: index into the schema metadata `cse.streams` (JSON list of stream names, sorted).
- `sequence` int64: the message's sequence in its stream (= `envelope.sequence`, the stream offset); the
  event id is `input_event_id(session, stream, sequence)` of the session reading the file.
- `kind` int8: `KIND_QUOTE` 1 (QuoteTick), `KIND_TRADE` 2 (TradeTick), `KIND_DELTA` 3 (BookDelta level),
  `KIND_SNAPSHOT` 4 (BookSnapshot level), `KIND_EVENT` 9 (any other event, see `payload`).
- `msg_end` bool: true on the last row of a message (nautilus `F_LAST`); a quote/trade row is its own end.
- `event_time_ns` int64: `envelope.event_time_ns` (our receive clock, the engine's time axis).
- `ingest_time_ns` int64: `envelope.ingest_time_ns`.
- `exchange_time_ns` int64, null: the venue's own stamp (`exchange_time_ns`; Binance `E`).
- `source` dictionary<int16, utf8>: `envelope.source` (the importer, e.g. `import.binance_ws`).
- `venue`, `instrument` dictionary<int16, utf8>: the event's venue and instrument.
- `side` int8: level rows: `SIDE_BID` 1 (in `bids`), `SIDE_ASK` 2 (in `asks`); 0 on other rows and on
  the single row of a message without levels.
- `price_m` int64, `price_e` int8: level price; trade price; quote bid price.
- `size_m` int64, `size_e` int8: level quantity (0 removes the level in a delta); trade size; quote bid size.
- `ask_price_m` int64, `ask_price_e` int8, `ask_size_m` int64, `ask_size_e` int8: quote ask (0 elsewhere).
- `first_update_id` int64, null: delta `first_update_id` (Binance `U`).
- `final_update_id` int64, null: delta `final_update_id` (`u`); snapshot `last_update_id`; quote
  `venue_update_id` (bookTicker `u`, null when the venue sends none).
- `previous_update_id` int64, null: delta `previous_final_update_id` (USD-M/COIN-M `pu`; null on spot).
- `trade_id` utf8, null: trade `venue_trade_id` (a string: venues do not all use integers).
- `aggressor` int8: trade `aggressor_side`, `AGGRESSOR_BUY` 1 / `AGGRESSOR_SELL` 2; 0 on other rows.
- `payload` binary, null: `KIND_EVENT` rows only: the event's canonical JSON; its envelope is rebuilt from
  the columns like every other row's (ids of the session reading the file).

Schema metadata: `cse.format_version` (`FORMAT_VERSION`, a reader refuses others), `cse.streams`.
Every message's envelope has no causation/correlation id (recorded inputs have none) and the event's current
schema version; a session whose stored events differ from that stays on the SQLite path (`cse migrate`
refuses it, naming the first differing event).
"""

from __future__ import annotations

import json

import pyarrow as pa

FORMAT_VERSION = 1
"""Bumped on any change of columns or their meaning; recorded by a backtest next to the file's hash."""
CODEC = f"arrow-ipc-lz4/v{FORMAT_VERSION}"
"""What a session names its market data with, next to the sha256."""
COMPRESSION = "lz4"

KIND_QUOTE = 1
KIND_TRADE = 2
KIND_DELTA = 3
KIND_SNAPSHOT = 4
KIND_EVENT = 9

SIDE_NONE = 0
SIDE_BID = 1
SIDE_ASK = 2

AGGRESSOR_NONE = 0
AGGRESSOR_BUY = 1
AGGRESSOR_SELL = 2

META_VERSION = b"cse.format_version"
META_STREAMS = b"cse.streams"

_TEXT = pa.dictionary(pa.int16(), pa.utf8())

FIELDS: tuple[pa.Field, ...] = (
    pa.field("stream", pa.int16(), nullable=False),
    pa.field("sequence", pa.int64(), nullable=False),
    pa.field("kind", pa.int8(), nullable=False),
    pa.field("msg_end", pa.bool_(), nullable=False),
    pa.field("event_time_ns", pa.int64(), nullable=False),
    pa.field("ingest_time_ns", pa.int64(), nullable=False),
    pa.field("exchange_time_ns", pa.int64()),
    pa.field("source", _TEXT, nullable=False),
    pa.field("venue", _TEXT, nullable=False),
    pa.field("instrument", _TEXT, nullable=False),
    pa.field("side", pa.int8(), nullable=False),
    pa.field("price_m", pa.int64(), nullable=False),
    pa.field("price_e", pa.int8(), nullable=False),
    pa.field("size_m", pa.int64(), nullable=False),
    pa.field("size_e", pa.int8(), nullable=False),
    pa.field("ask_price_m", pa.int64(), nullable=False),
    pa.field("ask_price_e", pa.int8(), nullable=False),
    pa.field("ask_size_m", pa.int64(), nullable=False),
    pa.field("ask_size_e", pa.int8(), nullable=False),
    pa.field("first_update_id", pa.int64()),
    pa.field("final_update_id", pa.int64()),
    pa.field("previous_update_id", pa.int64()),
    pa.field("trade_id", pa.utf8()),
    pa.field("aggressor", pa.int8(), nullable=False),
    pa.field("payload", pa.binary()),
)
COLUMNS: tuple[str, ...] = tuple(f.name for f in FIELDS)


def schema(streams: list[str]) -> pa.Schema:
    """The file's schema for these stream names (sorted: their index is the `stream` column)."""
    return pa.schema(FIELDS, metadata={META_VERSION: str(FORMAT_VERSION).encode(),
                                       META_STREAMS: json.dumps(streams).encode()})  # fmt: skip


def streams_of(file_schema: pa.Schema) -> list[str]:
    """The stream names of a file, refusing a file of another format version."""
    meta = file_schema.metadata or {}
    version = meta.get(META_VERSION, b"?").decode()
    if version != str(FORMAT_VERSION):
        raise ValueError(f"columnar format version {version}, this code reads {FORMAT_VERSION}")
    names: list[str] = json.loads(meta[META_STREAMS])
    return names
