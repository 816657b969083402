"""A run's inputs straight from a columnar file (`application.ports.InputColumns`).

A compiled market core reads the file's rows as its input columns (`core_columns`, a slice at a time, so only
one slice is converted at once), and only the messages that reach Python (a wake, a row the market view points
at) become events (`message`), built by the same `Materialiser` every other reader uses: the events are the
ones `MarketDataFile.events` gives, field for field.

The file's row order is the run's order when the run reads the streams in the order the file was written
(`input_columns` in the event log checks that before it hands one out).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

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
_MESSAGE_CACHE = 4_096
"""Messages kept once built: the market view points at a few rows per key, read again and again."""


class FileInputs:
    """The selected streams of one columnar file, as a run reads them (module docstring)."""

    def __init__(self, file: MarketDataFile, streams: Sequence[str], as_session: str) -> None:
        self.as_session = as_session
        self._names = file.streams
        table = file.table.unify_dictionaries()
        selected = [file.streams.index(name) for name in streams]
        if len(selected) != len(file.streams):
            table = table.filter(pa.array(np.isin(table["stream"].to_numpy(), selected)))
        self.table = table
        self._ends = np.flatnonzero(table["msg_end"].to_numpy(zero_copy_only=False)) + 1
        """One past each message's last row."""
        self._starts = np.concatenate(([0], self._ends[:-1])).astype(np.int64)
        self._stream_of = table["stream"].to_numpy()[self._starts]
        self._time_of = table["event_time_ns"].to_numpy()[self._starts]
        self._materialiser = Materialiser(file.streams)
        self._cache: dict[int, EventBase] = {}
        self._venues = _dictionary(table, "venue")
        self._instruments = _dictionary(table, "instrument")

    def __len__(self) -> int:
        return len(self._starts)

    @property
    def rows(self) -> int:
        return self.table.num_rows

    def runs(self) -> Iterator[tuple[str, int]]:
        """(stream, count) of consecutive messages of one stream, in run order."""
        streams = self._stream_of
        if not len(streams):
            return
        change = np.flatnonzero(np.diff(streams)) + 1
        bounds = np.concatenate(([0], change, [len(streams)]))
        names = self._names
        for start, stop in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            yield names[int(streams[start])], stop - start

    def time_at(self, index: int) -> int:
        return int(self._time_of[index])

    def non_market_events(self) -> Iterator[tuple[str, EventBase]]:
        """The messages that are not market rows (a stream's `InstrumentDefined`, a recorded resync), in order."""
        kinds = self.table["kind"].to_numpy()[self._starts]
        for row in self._starts[kinds == s.KIND_EVENT].tolist():
            yield self._names[int(self.table["stream"][row].as_py())], self.message(row)

    def events(self) -> Iterator[tuple[str, EventBase]]:
        """Every message as (stream, event), in run order."""
        return self._materialiser.events(self.table, self.as_session)

    def message(self, row: int) -> EventBase:
        """The event of the message whose first row is `row`."""
        event = self._cache.get(row)
        if event is None:
            stop = int(self._ends[np.searchsorted(self._starts, row)])
            _, event = next(self._materialiser.events(self.table.slice(row, stop - row), self.as_session))
            if len(self._cache) >= _MESSAGE_CACHE:
                self._cache.clear()
            self._cache[row] = event
        return event

    def slice_stop(self, start: int, rows: int) -> int:
        """The end of the message that ends at or after `start + rows` (a slice never splits a message)."""
        at = min(int(np.searchsorted(self._ends, start + rows)), len(self._ends) - 1)
        return int(self._ends[at])

    def core_columns(self, start: int, stop: int, key_of: KeyOf) -> dict[str, np.ndarray]:
        """Rows `start:stop` as the compiled core's input columns (`cse_core._core.pyi`)."""
        part = self.table.slice(start, stop - start)
        out: dict[str, np.ndarray] = {name: _ints(part, name, np.int64) for name in _INT64_COLUMNS}
        out.update((name, _ints(part, name, np.int8)) for name in _INT8_COLUMNS)
        out["msg_end"] = part["msg_end"].to_numpy(zero_copy_only=False).astype(np.uint8)
        for name, valid in _IDS:
            column = part[name]
            out[name] = column.fill_null(0).to_numpy().astype(np.int64, copy=False)
            if valid is not None:
                out[valid] = column.is_valid().to_numpy(zero_copy_only=False).astype(np.uint8)
        out["key"] = self._keys(part, key_of)
        return out

    def _keys(self, part: pa.Table, key_of: KeyOf) -> np.ndarray:
        venue = _indices(part, "venue")
        instrument = _indices(part, "instrument")
        width = max(len(self._instruments), 1)
        pairs, inverse = np.unique(venue * width + instrument, return_inverse=True)
        keys = np.array([key_of(self._venues[p // width], self._instruments[p % width]) for p in pairs.tolist()],
                        dtype=np.uint32)  # fmt: skip
        return keys[inverse.reshape(-1)]


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
