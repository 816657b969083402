"""A run's inputs straight from a columnar file (`application.ports.InputColumns`).

A compiled market core reads the file's rows as its input columns (`core_columns`, a slice at a time, so only
one slice is converted at once), and only the messages that reach Python (a wake, a row the market view points
at) become events (`message`), built by the same `Materialiser` every other reader uses: the events are the
ones `MarketDataFile.events` gives, field for field.

The file's row order is the run's order when the run reads the streams in the order the file was written
(`input_columns` in the event log checks that before it hands one out).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from adapters.columnar import schema as s
from adapters.columnar.codec import Materialiser
from adapters.columnar.store import MarketDataFile
from domain.events import EventBase

KeyOf = Callable[[str, str], int]
"""(venue, instrument) -> the core's key."""

_INT64_COLUMNS = ("event_time_ns", "price_m", "size_m", "ask_price_m", "ask_size_m")
_INT8_COLUMNS = ("kind", "side", "price_e", "size_e", "ask_price_e", "ask_size_e", "aggressor")
_IDS = (("first_update_id", None), ("final_update_id", "final_update_id_valid"),
        ("previous_update_id", "previous_update_id_valid"))  # fmt: skip
_EVENT_ROWS = 65_536
"""Rows materialised at a time when every message becomes an event."""
_MESSAGE_CACHE = 4_096
"""Messages kept once built: the market view points at a few rows per key, read again and again."""


class FileInputs:
    """The selected streams of one columnar file, as a run reads them (module docstring)."""

    def __init__(self, file: MarketDataFile, as_session: str) -> None:
        """Every stream of `file` (a run over some of them reads events instead)."""
        self.as_session = as_session
        self.file = file
        self._names = file.streams
        self._starts = file.message_starts
        self._materialiser = Materialiser(file.streams)
        self._cache: dict[int, EventBase] = {}
        head = file.slice(0, min(file.rows, 1))
        self._venues = _dictionary(head, "venue")
        self._instruments = _dictionary(head, "instrument")
        self._recent: _Slice | None = None

    def __len__(self) -> int:
        return len(self._starts)

    @property
    def rows(self) -> int:
        return self.file.rows

    def runs(self) -> Iterator[tuple[str, int]]:
        """(stream, count) of consecutive messages of one stream, in run order."""
        streams = self.file.message_streams
        if not len(streams):
            return
        change = np.flatnonzero(np.diff(streams)) + 1
        bounds = np.concatenate(([0], change, [len(streams)]))
        names = self._names
        for start, stop in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            yield names[int(streams[start])], stop - start

    def time_at(self, index: int) -> int:
        row = int(self._starts[index])
        return int(self.file.slice(row, row + 1)["event_time_ns"][0].as_py())

    def non_market_events(self) -> Iterator[tuple[str, EventBase]]:
        """The messages that are not market rows (a stream's `InstrumentDefined`, a recorded resync), in order."""
        file = self.file
        for index in np.flatnonzero(file.message_kinds == s.KIND_EVENT).tolist():
            yield self._names[int(file.message_streams[index])], self.message(int(self._starts[index]))

    def events(self) -> Iterator[tuple[str, EventBase]]:
        """Every message as (stream, event), in run order."""
        start = 0
        while start < self.rows:
            stop = self.slice_stop(start, _EVENT_ROWS)
            yield from self._materialiser.events(self.file.slice(start, stop), self.as_session)
            start = stop

    def message(self, row: int) -> EventBase:
        """The event of the message whose first row is `row`: from the slice last converted for the core
        when it holds the row (a woken row always is), else read from the table."""
        event = self._cache.get(row)
        if event is None:
            stop = self.file.message_end(self._message_at(row))
            recent = self._recent
            if recent is not None and recent.start <= row and stop <= recent.stop and recent.kind(row) != s.KIND_EVENT:
                _, event = self._materialiser.message(recent.values(row, stop), self.as_session)
            else:
                _, event = next(self._materialiser.events(self.file.slice(row, stop), self.as_session))
            if len(self._cache) >= _MESSAGE_CACHE:
                self._cache.clear()
            self._cache[row] = event
        return event

    def slice_stop(self, start: int, rows: int) -> int:
        """The first row of the first message starting at or after `start + rows` (the file's end if none):
        a slice never splits a message."""
        at = self._message_at(start + rows)
        return self.rows if at >= len(self._starts) else int(self._starts[at])

    def _message_at(self, row: int) -> int:
        """Index of the first message starting at or after `row`. The row is given in the index's own dtype
        (uint32 where it fits): numpy would otherwise convert the whole index for each search, O(messages),
        which made a 10x longer session's backtest ~3x slower per message."""
        return int(np.searchsorted(self._starts, self._starts.dtype.type(row)))

    def core_columns(self, start: int, stop: int, key_of: KeyOf) -> dict[str, np.ndarray]:
        """Rows `start:stop` as the compiled core's input columns (`cse_core._core.pyi`)."""
        part = self.file.slice(start, stop)
        out: dict[str, np.ndarray] = {name: _ints(part, name, np.int64) for name in _INT64_COLUMNS}
        out.update((name, _ints(part, name, np.int8)) for name in _INT8_COLUMNS)
        out["msg_end"] = part["msg_end"].to_numpy(zero_copy_only=False).astype(np.uint8)
        for name, valid in _IDS:
            column = part[name]
            out[name] = _stored_values(column)
            if valid is not None:
                out[valid] = column.is_valid().to_numpy(zero_copy_only=False).astype(np.uint8)
        venue, instrument = _indices(part, "venue"), _indices(part, "instrument")
        out["key"] = self._keys(venue, instrument, key_of)
        self._recent = _Slice(start, stop, part, out, venue, instrument, self)
        return out

    def _keys(self, venue: np.ndarray, instrument: np.ndarray, key_of: KeyOf) -> np.ndarray:
        width = max(len(self._instruments), 1)
        pairs, inverse = np.unique(venue * width + instrument, return_inverse=True)
        keys = np.array([key_of(self._venues[p // width], self._instruments[p % width]) for p in pairs.tolist()],
                        dtype=np.uint32)  # fmt: skip
        return keys[inverse.reshape(-1)]


class _Slice:
    """The rows last converted for the core, kept as arrays: a message in them is built from Python lists
    of its rows (`Materialiser.message`), without a table lookup per column."""

    def __init__(self, start: int, stop: int, part: pa.Table, core: dict[str, np.ndarray], venue: np.ndarray,
                 instrument: np.ndarray, inputs: FileInputs) -> None:  # fmt: skip
        self.start, self.stop = start, stop
        self._part = part
        self._core = core
        self._names = {"source": _dictionary(part, "source"), "venue": inputs._venues,
                       "instrument": inputs._instruments}  # fmt: skip
        self._indices = {"source": _indices(part, "source"), "venue": venue, "instrument": instrument}
        self._plain = {name: part[name].to_numpy() for name in ("stream", "sequence", "ingest_time_ns")}
        self._nullable = {name: (_stored_values(part[name]), part[name].is_valid().to_numpy(zero_copy_only=False))
                          for name in ("exchange_time_ns", "first_update_id", "final_update_id",
                                       "previous_update_id")}  # fmt: skip

    def kind(self, row: int) -> int:
        return int(self._core["kind"][row - self.start])

    def values(self, row: int, stop: int) -> dict[str, list[Any]]:
        """Rows `row:stop` (one message) as the Python values `Materialiser.message` takes."""
        i, j = row - self.start, stop - self.start
        c: dict[str, list[Any]] = {name: self._core[name][i:j].tolist() for name in _FROM_CORE}
        c.update((name, values[i:j].tolist()) for name, values in self._plain.items())
        for name, (values, valid) in self._nullable.items():
            c[name] = [v if ok else None for v, ok in zip(values[i:j].tolist(), valid[i:j].tolist(), strict=True)]
        for name, names in self._names.items():
            c[name] = [names[k] for k in self._indices[name][i:j].tolist()]
        c["trade_id"] = self._part["trade_id"].slice(i, j - i).to_pylist()
        c["payload"] = [None] * (j - i)
        return c


_FROM_CORE = ("kind", "event_time_ns", "side", "price_m", "price_e", "size_m", "size_e", "ask_price_m", "ask_price_e",
              "ask_size_m", "ask_size_e", "aggressor")  # fmt: skip


def _stored_values(column: pa.ChunkedArray) -> np.ndarray:
    """A nullable int64 column's values buffer as it is stored: 0 where null (the file's layout, `schema`).
    Read from the buffers: pyarrow's `fill_null` costs ~1 us a row."""
    parts = [np.frombuffer(chunk.buffers()[1], dtype=np.int64)[chunk.offset : chunk.offset + len(chunk)]
             for chunk in column.chunks]  # fmt: skip
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _ints(part: pa.Table, name: str, dtype: type[np.generic]) -> np.ndarray:
    return part[name].to_numpy().astype(dtype, copy=False)


def _dictionary(table: pa.Table, name: str) -> list[str]:
    chunks = table[name].chunks
    return [] if not chunks else chunks[0].dictionary.to_pylist()


def _indices(part: pa.Table, name: str) -> np.ndarray:
    """A dictionary column's indices (every chunk of a file shares the file's one dictionary)."""
    chunks = part[name].chunks
    if not chunks:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([c.indices.to_numpy(zero_copy_only=False) for c in chunks]).astype(np.int64)
