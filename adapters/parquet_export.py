"""Export a session of the event log to Parquet: one row per event, for analysis in polars/pandas/DuckDB.

Columns: stream, offset, type, event_time_ns, ingest_time_ns, sequence, event_id, venue, instrument, the
common money fields as decimal strings (exact: no float ever touches a price), side, and the full canonical
payload JSON. Streaming: rows are written in chunks with a pyarrow ParquetWriter, streams in sorted order.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from application.ports import EventLog

MONEY_FIELDS = (
    "bid_price", "bid_size", "ask_price", "ask_size", "price", "size", "quantity", "limit_price", "fee",
)  # fmt: skip
SCHEMA = pa.schema(
    [
        ("stream", pa.string()),
        ("offset", pa.int64()),
        ("type", pa.string()),
        ("event_time_ns", pa.int64()),
        ("ingest_time_ns", pa.int64()),
        ("sequence", pa.int64()),
        ("event_id", pa.string()),
        ("venue", pa.string()),
        ("instrument", pa.string()),
        *[(name, pa.string()) for name in MONEY_FIELDS],
        ("side", pa.string()),
        ("payload", pa.string()),
    ]
)


def export_session(
    log: EventLog,
    session_id: str,
    out: Path,
    *,
    streams: Sequence[str] | None = None,
    chunk_rows: int = 10_000,
    compression: str = "zstd",
) -> int:
    """Write the session (all its streams, or `streams`) to `out`; returns the number of rows written."""
    chosen = log.streams(session_id) if streams is None else sorted(streams)
    columns: dict[str, list[Any]] = {f.name: [] for f in SCHEMA}
    total = 0
    out.parent.mkdir(parents=True, exist_ok=True)
    with pq.ParquetWriter(out, SCHEMA, compression=compression) as writer:
        for stream in chosen:
            for stored in log.read(session_id, stream):
                rec = stored.record
                text = rec.payload.decode()
                event = json.loads(text)
                envelope = event.get("envelope") or {}
                columns["stream"].append(stream)
                columns["offset"].append(stored.offset)
                columns["type"].append(rec.event_type)
                columns["event_time_ns"].append(rec.event_time_ns)
                columns["ingest_time_ns"].append(envelope.get("ingest_time_ns"))
                columns["sequence"].append(envelope.get("sequence"))
                columns["event_id"].append(envelope.get("event_id"))
                columns["venue"].append(event.get("venue"))
                columns["instrument"].append(event.get("instrument"))
                for name in MONEY_FIELDS:
                    value = event.get(name)
                    columns[name].append(None if value is None else str(value))
                side = event.get("side", event.get("aggressor_side"))
                columns["side"].append(None if side is None else str(side))
                columns["payload"].append(text)
                if len(columns["stream"]) >= chunk_rows:
                    total += _flush(writer, columns)
        total += _flush(writer, columns)
    return total


def _flush(writer: pq.ParquetWriter, columns: dict[str, list[Any]]) -> int:
    n = len(columns["stream"])
    if n:
        writer.write_table(pa.Table.from_pydict(columns, schema=SCHEMA))
        for values in columns.values():
            values.clear()
    return n
