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
from adapters.columnar.arrow import flags_of, numpy_of, on_system_memory
from adapters.columnar.codec import Materialiser
from domain.events import EventBase


class MarketDataChanged(ValueError):
    """A market-data file's content is not the one its session names."""


class CheckCache(Protocol):
    """Where verified (inode, size, mtime_ns) stamps of catalog files are remembered."""

    def checked(self, sha256: str) -> tuple[int, int, int] | None: ...

    def remember(self, sha256: str, stamp: tuple[int, int, int]) -> None: ...


class MarketDataFile:
    """One opened file: its raw columns (`table`, engine order) and its events per stream."""

    def __init__(self, path: Path, sha256: str, table: pa.Table) -> None:
        self.path = path
        self.sha256 = sha256
        self.table = table
        self.streams = s.streams_of(table.schema)
        stream_col = numpy_of(table["stream"])
        ends = flags_of(table["msg_end"])
        sequences = numpy_of(table["sequence"])
        self._rows: dict[str, np.ndarray] = {}
        self._ends: dict[str, np.ndarray] = {}
        for i, name in enumerate(self.streams):
            rows = self._rows[name] = np.flatnonzero(stream_col == i)
            message_ends = self._ends[name] = np.flatnonzero(ends[rows]) + 1  # exclusive, into `rows`
            # Offsets are sequences: message k of a stream has sequence k (what an import stamps).
            if not np.array_equal(sequences[rows[message_ends - 1]], np.arange(len(message_ends))):
                raise ValueError(
                    f"market-data file {path}: stream {name} does not hold sequences 0..n-1 in order"
                )
        self._materialiser = Materialiser(self.streams)

    def count(self, stream: str) -> int:
        """Messages of `stream` (its end offset: sequences run 0..count-1)."""
        ends = self._ends.get(stream)
        return 0 if ends is None else len(ends)

    def events(self, session_id: str, stream: str, from_offset: int = 0) -> Iterator[EventBase]:
        """The messages of `stream` from sequence `from_offset`, stamped for `session_id`; rows are taken a
        block at a time, so reading a few messages from anywhere costs a few messages."""
        count = self.count(stream)
        if from_offset >= count:
            return
        rows, ends = self._rows[stream], self._ends[stream]
        start = 0 if from_offset == 0 else int(ends[from_offset - 1])
        while start < len(rows):
            stop = int(ends[min(int(np.searchsorted(ends, start + _BLOCK)), count - 1)])
            part = self.table.take(pa.array(rows[start:stop]))
            for _, event in self._materialiser.events(part, session_id):
                yield event
            start = stop


_BLOCK = 8_192
"""Rows taken from the file per step of a stream read."""


class Catalog:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._written: tuple[str, pa.Table] | None = None
        """The last table written and its file's name: opening that file next (an import attaches what it
        wrote) checks the file as always, then takes the table instead of decoding it again."""

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
                    writer.write_table(table)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the data from other readers (a container's user)
            sha = file_sha256(Path(tmp))
            os.replace(tmp, self.path(sha))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._written = (sha, table)
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
        written, self._written = self._written, None
        if written is not None and written[0] == sha256:
            return MarketDataFile(path, sha256, written[1])
        with pa.memory_map(str(path)) as source, on_system_memory():
            table = pa.ipc.open_file(source).read_all()
        return MarketDataFile(path, sha256, table)

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
