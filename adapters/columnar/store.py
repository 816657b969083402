"""The catalog of columnar market-data files: `<root>/<sha256>.arrow`, written once, named by their content.

A file is checked against its name before it is read: a full SHA-256 of its bytes (`verify`, what a replay
does), or, for a backtest, the same check remembered by (inode, size, mtime) so an unchanged file is hashed
once (`CheckCache`). A file whose content no longer matches its name is refused with both hashes.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import numpy as np
import pyarrow as pa

from adapters.columnar import schema as s
from adapters.columnar.arrow import on_system_memory
from adapters.columnar.codec import Materialiser
from domain.events import EventBase


class MarketDataChanged(ValueError):
    """A market-data file's content is not the one its session names."""


class CheckCache(Protocol):
    """Where verified (inode, size, mtime_ns) stamps of catalog files are remembered."""

    def checked(self, sha256: str) -> tuple[int, int, int] | None: ...

    def remember(self, sha256: str, stamp: tuple[int, int, int]) -> None: ...


class MarketDataFile:
    """One opened file, read a record batch at a time: a batch is read and decompressed when its rows are
    read (the last few are kept), so memory follows the index below, not the file's rows. Read, not
    memory-mapped: a mapped file's pages stayed in the process's RSS once touched, so a run's peak RSS grew
    with the file (1.83x for 10x the messages; read: the 3-lap session's backtest 509 -> 448 MB, ~10% slower).

    Index (one pass over the batches at open): per message its first row, stream and kind; per stream its
    messages, whose sequences must run 0..n-1 (what an import stamps)."""

    def __init__(self, path: Path, sha256: str) -> None:
        self.path = path
        self.sha256 = sha256
        # One thread: a run is measured on one core, and the pool's hand-offs cost more than a batch's lz4.
        self._reader = pa.ipc.open_file(pa.OSFile(str(path)), options=pa.ipc.IpcReadOptions(use_threads=False))
        self.schema = self._reader.schema
        self.streams = s.streams_of(self.schema)
        self._batches: dict[int, pa.RecordBatch] = {}
        offsets, starts, streams, kinds, sequences = [0], [], [], [], []
        indexed = ["stream", "sequence", "kind", "msg_end"]  # the index reads these columns only
        index_reader = pa.ipc.open_file(pa.OSFile(str(path)), options=pa.ipc.IpcReadOptions(
            use_threads=False, included_fields=[self.schema.get_field_index(name) for name in indexed]))  # fmt: skip
        for i in range(index_reader.num_record_batches):
            batch = index_reader.get_batch(i)
            ends = np.flatnonzero(batch.column("msg_end").to_numpy(zero_copy_only=False)) + offsets[-1] + 1
            offsets.append(offsets[-1] + batch.num_rows)
            starts.append(ends)  # ends for now: first rows below
            last_rows = ends - offsets[-2] - 1
            streams.append(batch.column("stream").to_numpy()[last_rows])
            kinds.append(batch.column("kind").to_numpy()[last_rows])
            sequences.append(batch.column("sequence").to_numpy()[last_rows])
        self._offsets = np.array(offsets, dtype=np.int64)
        """First row of each batch, and the row count last."""
        ends = np.concatenate(starts) if starts else np.zeros(0, dtype=np.int64)
        index = np.uint32 if offsets[-1] < 1 << 32 else np.int64  # 4 bytes a message where they fit
        self.message_starts = np.concatenate(([0], ends[:-1])).astype(index)
        """First row of each message, in file order."""
        self.message_streams = np.concatenate(streams) if streams else np.zeros(0, dtype=np.int16)
        self.message_kinds = np.concatenate(kinds) if kinds else np.zeros(0, dtype=np.int8)
        self._of_stream: dict[str, np.ndarray] = {}
        all_sequences = np.concatenate(sequences) if sequences else np.zeros(0, dtype=np.int64)
        for name in self.streams:
            if not np.array_equal(all_sequences[self._messages(name)], np.arange(self.count(name))):
                raise ValueError(
                    f"market-data file {path}: stream {name} does not hold sequences 0..n-1 in order"
                )
        self._materialiser = Materialiser(self.streams)

    @property
    def rows(self) -> int:
        return int(self._offsets[-1])

    @property
    def table(self) -> pa.Table:
        """Every row (what an import adds new rows to): the whole file in memory."""
        return self._reader.read_all()

    def _messages(self, stream: str) -> np.ndarray:
        """Indices (into the message arrays) of `stream`'s messages."""
        found = self._of_stream.get(stream)
        if found is None:
            found = self._of_stream[stream] = np.flatnonzero(self.message_streams == self.streams.index(stream))
        return found

    def count(self, stream: str) -> int:
        """Messages of `stream` (its end offset: sequences run 0..count-1)."""
        return 0 if stream not in self.streams else len(self._messages(stream))

    def message_end(self, message: int) -> int:
        """One past the last row of the `message`-th message."""
        starts = self.message_starts
        return int(starts[message + 1]) if message + 1 < len(starts) else self.rows

    def slice(self, start: int, stop: int) -> pa.Table:
        """Rows `start:stop`, from the batches holding them."""
        offsets = self._offsets
        first = int(np.searchsorted(offsets, start, side="right")) - 1
        parts = []
        i = first
        while i < len(offsets) - 1 and offsets[i] < stop:
            lo, hi = max(start, int(offsets[i])), min(stop, int(offsets[i + 1]))
            parts.append(self._batch(i).slice(lo - int(offsets[i]), hi - lo))
            i += 1
        return pa.Table.from_batches(parts, schema=self.schema)

    def take(self, rows: np.ndarray) -> pa.Table:
        """The rows at `rows` (ascending), from the batches holding them."""
        offsets = self._offsets
        batch_of = np.searchsorted(offsets, rows, side="right") - 1
        bounds = np.flatnonzero(np.diff(batch_of)) + 1
        parts = []
        for lo, hi in zip([0, *bounds.tolist()], [*bounds.tolist(), len(rows)], strict=True):
            i = int(batch_of[lo])
            parts.append(self._batch(i).take(pa.array(rows[lo:hi] - offsets[i])))
        return pa.Table.from_batches(parts, schema=self.schema)

    def _batch(self, i: int) -> pa.RecordBatch:
        batch = self._batches.get(i)
        if batch is None:
            if len(self._batches) >= _BATCHES_KEPT:
                del self._batches[next(iter(self._batches))]
            batch = self._batches[i] = self._reader.get_batch(i)
        return batch

    def events(self, session_id: str, stream: str, from_offset: int = 0) -> Iterator[EventBase]:
        """The messages of `stream` from sequence `from_offset`, stamped for `session_id`; rows are taken a
        block of messages at a time, the first blocks small (a run reads only the first message of each stream
        for its instrument definitions), so reading a few messages from anywhere costs a few messages."""
        messages = self._messages(stream) if stream in self.streams else np.zeros(0, dtype=np.int64)
        first, size = from_offset, _FIRST_BLOCK
        while first < len(messages):
            block = messages[first : first + size]
            first, size = first + size, min(size * 8, _BLOCK)
            starts = self.message_starts[block].astype(np.int64)
            following = block + 1
            ends = np.where(following < len(self.message_starts),
                            self.message_starts[np.minimum(following, len(self.message_starts) - 1)], self.rows)  # fmt: skip
            lengths = ends - starts
            # every row of every message: each message's first row plus 0..length-1
            rows = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(int(lengths.sum()))
            for _, event in self._materialiser.events(self.take(rows), session_id):
                yield event


_BLOCK = 2_048
"""Messages of a stream taken from the file per step of a stream read (at most)."""
_FIRST_BLOCK = 4
"""Messages of the first step: a stream read's steps grow 8x each up to `_BLOCK`."""
_BATCHES_KEPT = 4
"""Decompressed record batches kept by an opened file."""
ROWS_PER_BATCH = 65_536
"""Rows per record batch a file is written with: what a reader decompresses at once."""


class Catalog:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        return self.root / f"{sha256}.arrow"

    def write(self, table: pa.Table) -> str:
        """Store `table` (schema `schema.schema`), returning its sha256; a file of equal content is kept."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh, on_system_memory():
                options = pa.ipc.IpcWriteOptions(compression=s.COMPRESSION)
                with pa.ipc.new_file(fh, table.schema, options=options) as writer:
                    writer.write_table(table, max_chunksize=ROWS_PER_BATCH)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the data from other readers (a container's user)
            sha = file_sha256(Path(tmp))
            os.replace(tmp, self.path(sha))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return sha

    def open(self, sha256: str, cache: CheckCache | None = None) -> MarketDataFile:
        """The file named `sha256`, checked: by its full hash, or by its remembered stamp when `cache` has one
        for an unchanged file. Raises `MarketDataChanged` naming the file and both hashes."""
        path = self.path(sha256)
        try:
            stat = path.stat()
        except FileNotFoundError:
            self.verify(sha256)  # raises: missing
            raise
        stamp = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if cache is None or cache.checked(sha256) != stamp:
            self.verify(sha256)
            if cache is not None:
                cache.remember(sha256, stamp)
        return MarketDataFile(path, sha256)

    def verify(self, sha256: str) -> None:
        path = self.path(sha256)
        try:
            actual = file_sha256(path)
        except FileNotFoundError:
            raise MarketDataChanged(
                f"market-data file {path} is missing (the session names sha256 {sha256})"
            ) from None
        if actual != sha256:
            raise MarketDataChanged(
                f"market-data file {path} has changed: its sha256 is {actual}, the session names {sha256};"
                " refusing to run on data other than the recorded one (restore the file or import again)"
            )


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
