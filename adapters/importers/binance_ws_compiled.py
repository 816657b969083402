"""The fast path of `import_binance_ws`: each capture parsed by the compiled core (`cse_core`, Rust,
core/crates/market/src/capture.rs) straight into columnar rows, handed to the sink as one block per file.

`binance_ws` stays the one definition of what a line means, of every refusal and its wording: the compiled
parser vouches only for files it proves that path would store unchanged (every line a well-formed message of
a known kind with the field types Binance sends, amounts that fit, no row `validation.refusal` refuses,
receive times in order per stream). On the first file it cannot vouch for, `feed_capture` raises `Unproven`
and `import_binance_ws` runs the whole import again on the Python path (nothing of the first attempt is
stored), so a bad input gets exactly the errors, bad-row reports and exit code it always got.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from adapters.columnar import schema as s
from adapters.columnar.arrow import on_system_memory
from adapters.columnar.codec import EVENT_TYPES
from adapters.importers.binance_ws import FEED_PROBE_LINES, message_feed, snapshot_instrument, venue_for
from adapters.importers.common import ImportSink, MessageBlock

try:
    from cse_core._core import read_binance_capture
except ImportError as exc:  # never a silent fall back to the slow path: the build is part of the install
    raise ImportError(
        f"the compiled core cse_core is not built or predates the capture parser ({exc}): run `make install`"
        " (needs cargo)"
    ) from exc


class Unproven(Exception):
    """The compiled parser does not vouch for a file (or the session keeps market data as SQLite records):
    the import takes the Python path."""


def feed_capture(sink: ImportSink, path: Path, *, venue: str | None = None) -> None:
    """`binance_ws.feed_file` for a file the compiled parser proves clean; raises `Unproven` otherwise."""
    with on_system_memory():
        _feed_capture(sink, path, venue)


def _feed_capture(sink: ImportSink, path: Path, venue: str | None) -> None:
    if not sink.columnar:
        raise Unproven(f"{path}: the session keeps its market data as SQLite records")
    capture = read_binance_capture(path, FEED_PROBE_LINES)
    if isinstance(capture, tuple):
        line, what = capture
        raise Unproven(f"{path}, line {line}: {what}")
    # The same decisions as `feed_file`, in its order (its errors are the same), from what the parser saw.
    probe = capture["probe"]
    feed = None if probe is None else message_feed(probe.decode())
    if feed is not None:
        sink.begin_file(feed)
    venue = venue or venue_for(path, feed)
    symbols: list[bytes | None] = capture["symbols"]
    probed = np.frombuffer(capture["probe_symbols"], np.uint32).tolist()
    file_instrument = snapshot_instrument({_upper(symbols[i]) for i in probed}, path)
    of_symbol = [file_instrument if symbol is None else _upper(symbol) for symbol in symbols]
    instruments = list(dict.fromkeys(of_symbol))
    stream = np.array([instruments.index(i) for i in of_symbol], np.int64)[
        np.frombuffer(capture["msg_symbol"], np.uint32)
    ]
    time_ns = np.frombuffer(capture["msg_time_ns"], np.int64)
    for k in range(len(instruments)):
        times = time_ns[stream == k]
        if np.any(times[1:] < times[:-1]):
            raise Unproven(f"{path}: receive time goes backwards in {instruments[k]}")
    if len(time_ns) == 0:
        return  # the sink refuses the empty file as it always has
    kinds = np.frombuffer(capture["msg_kind"], np.int8)
    sink.add_block(MessageBlock(
        venue=venue, instruments=instruments, stream=stream, time_ns=time_ns, ingest_ns=time_ns,
        line=np.arange(1, len(time_ns) + 1), event_type=kinds, types=EVENT_TYPES,
        rows=np.frombuffer(capture["msg_rows"], np.uint32), columns=_columns(capture),
    ))  # fmt: skip


def _upper(symbol: bytes | None) -> str:
    assert symbol is not None  # a stream message always names its symbol
    return symbol.decode().upper()


def _columns(c: Mapping[str, Any]) -> dict[str, pa.Array]:
    """The parser's columns (buffers of its memory) as the schema's Arrow arrays: no copy but the bitmaps."""
    kind = np.frombuffer(c["kind"], np.int8)
    n = len(kind)

    def ints(name: str, dtype: pa.DataType) -> pa.Array:
        return pa.Array.from_buffers(dtype, n, [None, pa.py_buffer(c[name])])

    def bitmap(name: str) -> pa.Buffer:
        return pa.py_buffer(np.packbits(np.frombuffer(c[name], np.bool_), bitorder="little"))

    def nullable(name: str, valid: str) -> pa.Array:
        return pa.Array.from_buffers(pa.int64(), n, [bitmap(valid), pa.py_buffer(c[name])])

    time_ns = ints("time_ns", pa.int64())
    columns = {
        "kind": ints("kind", pa.int8()),
        "msg_end": pa.Array.from_buffers(pa.bool_(), n, [None, bitmap("msg_end")]),
        "event_time_ns": time_ns,
        "ingest_time_ns": time_ns,
        "exchange_time_ns": nullable("exchange_time_ns", "exchange_time_valid"),
        "trade_id": pa.Array.from_buffers(
            pa.utf8(),
            n,
            [bitmap("trade_id_valid"), pa.py_buffer(c["trade_id_offsets"]), pa.py_buffer(c["trade_id_data"])],
        ),  # fmt: skip
        "payload": pa.nulls(n, pa.binary()),
    }
    for name in ("first_update_id", "final_update_id", "previous_update_id"):
        columns[name] = nullable(name, f"{name}_valid")
    for name in ("side", "price_e", "size_e", "ask_price_e", "ask_size_e", "aggressor"):
        columns[name] = ints(name, pa.int8())
    for name in ("price_m", "size_m", "ask_price_m", "ask_size_m"):
        columns[name] = ints(name, pa.int64())
    assert set(columns) | {"stream", "sequence", "source", "venue", "instrument"} == set(s.COLUMNS)
    return columns
