"""The embedded event log: `application.ports.EventLog` on SQLite (plain `sqlite3`; the engine is synchronous).

Layout: `records` is clustered on (session_id, stream, offset) (WITHOUT ROWID), so reading a stream in offset
order is a range scan; `streams` caches each stream's next offset so an append never scans `records`.

Durability. The database runs in WAL mode. An append is one transaction for the whole batch: either every
record of the batch is in the log or none is, and `append` returns (the acknowledgement) only after COMMIT.
- synchronous=NORMAL (default here): a commit is written to the WAL before `append` returns, so a crash of
  the *process* (SIGKILL, exception, OOM kill) loses nothing acknowledged. The WAL is fsynced only at
  checkpoints, so a *power loss or OS crash* can lose the most recent acknowledged transactions (those
  since the last checkpoint); the database stays consistent (never a partial batch, never corruption).
- synchronous=FULL (`durability="full"`): the WAL is fsynced at every commit, so an acknowledged batch
  also survives power loss, at the cost of one fsync per append (batch your appends).

Several appends can be grouped into one transaction with `transaction()` (an import: all of its files or
nothing): inside it an append is only a savepoint, and the acknowledgement is the COMMIT at the block's end.
A crash or an exception before then leaves the log exactly as it was. The write lock is held for the whole
block, so other writers wait (up to the 10 s busy timeout); readers are never blocked (WAL).

Columnar market data. With a catalog (`catalog`, default the folder `catalog` beside the log file), a
session's market-data streams can live in one content-addressed Arrow file instead of `records`
(`adapters.columnar`): table `market_data` names the file (sha256, codec) and the streams it serves for the
session. Such a stream reads like any other (`read`, `streams`, `end_offset`), its events materialised with
the ids of the reading session, and is never appended to. A backtest attaches its input session's file to
itself instead of copying the rows; `verify_market_data` re-hashes a session's file (a replay), other
readers trust a check remembered by (inode, size, mtime) in `catalog_checks`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from types import TracebackType
from typing import Literal

import pyarrow as pa

from adapters.columnar.codec import RowBuilder
from adapters.columnar.inputs import FileInputs
from adapters.columnar.schema import CODEC
from adapters.columnar.store import Catalog, MarketDataFile
from application.ports import LogRecord, StoredRecord
from domain.events import EventBase, encode

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    session_id    TEXT    NOT NULL,
    stream        TEXT    NOT NULL,
    "offset"      INTEGER NOT NULL,
    key           TEXT    NOT NULL,
    event_type    TEXT    NOT NULL,
    event_time_ns INTEGER NOT NULL,
    payload       BLOB    NOT NULL,
    PRIMARY KEY (session_id, stream, "offset")
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS streams (
    session_id  TEXT    NOT NULL,
    stream      TEXT    NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (session_id, stream)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS market_data (
    session_id TEXT NOT NULL PRIMARY KEY,
    sha256     TEXT NOT NULL,
    codec      TEXT NOT NULL,
    streams    TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS catalog_checks (
    sha256   TEXT    NOT NULL PRIMARY KEY,
    inode    INTEGER NOT NULL,
    size     INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL
) WITHOUT ROWID;
"""

_INSERT = (
    'INSERT INTO records (session_id, stream, "offset", key, event_type, event_time_ns, payload)'
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_UPSERT_STREAM = (
    "INSERT INTO streams (session_id, stream, next_offset) VALUES (?, ?, ?)"
    " ON CONFLICT (session_id, stream) DO UPDATE SET next_offset = excluded.next_offset"
)
_READ_CHUNK = (
    'SELECT "offset", key, event_type, event_time_ns, payload FROM records'
    ' WHERE session_id = ? AND stream = ? AND "offset" >= ? ORDER BY "offset" LIMIT ?'
)


@dataclass(frozen=True)
class MarketDataRef:
    """What a session's market data is: the catalog file (by content) and the streams it serves."""

    sha256: str
    codec: str
    streams: tuple[str, ...]


_OPEN_FILES = 4
"""Market-data files kept open (decoded in memory) per log, least recently used dropped first."""


class SqliteEventLog:
    """`EventLog` on one SQLite file (or ":memory:"). One connection; use from one thread.

    `catalog`: the folder of columnar market-data files; default `catalog` beside the log file, none for
    ":memory:" or `False` (every record in SQLite: the reference layout)."""

    def __init__(
        self,
        path: str | Path,
        *,
        durability: Literal["normal", "full"] = "normal",
        read_chunk: int = 2_000,
        page_size: int = 16_384,
        catalog: Path | Literal[False] | None = None,
    ) -> None:
        self.path = str(path)
        self.read_chunk = read_chunk
        if catalog is None and self.path != ":memory:" and not self.path.startswith("file:"):
            catalog = Path(self.path).parent / "catalog"
        self.catalog = Catalog(catalog) if catalog else None
        self._files: dict[str, MarketDataFile] = {}  # by content: never stale
        # isolation_level=None: no implicit transactions; append() opens and commits its own.
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute(f"PRAGMA page_size = {int(page_size)}")  # only takes effect on a new file
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute(f"PRAGMA synchronous = {'FULL' if durability == 'full' else 'NORMAL'}")
        self._db.execute("PRAGMA busy_timeout = 10000")
        self._db.executescript(_SCHEMA)
        self._in_transaction = False

    # -- EventLog ------------------------------------------------------------------------------------------

    def append(self, session_id: str, records: Sequence[LogRecord]) -> list[int]:
        """Append a batch in one transaction (all or nothing); returns the offsets given, in order."""
        if not records:
            return []
        ref = self.market_data(session_id)
        if ref is not None and any(r.stream in ref.streams for r in records):
            stream = next(r.stream for r in records if r.stream in ref.streams)
            raise ValueError(f"stream {stream} of session {session_id!r} is columnar market data (file "
                             f"{ref.sha256[:12]}...): only an import adds to it")  # fmt: skip
        db = self._db
        # Take the write lock first, so next offsets cannot race; inside `transaction()` it is already held.
        db.execute("SAVEPOINT append" if self._in_transaction else "BEGIN IMMEDIATE")
        try:
            next_offset: dict[str, int] = {}
            offsets: list[int] = []
            rows: list[tuple[str, str, int, str, str, int, bytes]] = []
            for r in records:
                offset = next_offset.get(r.stream)
                if offset is None:
                    offset = self._end_offset(session_id, r.stream)
                next_offset[r.stream] = offset + 1
                offsets.append(offset)
                rows.append((session_id, r.stream, offset, r.key, r.event_type, r.event_time_ns, r.payload))
            db.executemany(_INSERT, rows)
            db.executemany(_UPSERT_STREAM, [(session_id, s, n) for s, n in next_offset.items()])
            db.execute("RELEASE append" if self._in_transaction else "COMMIT")
        except BaseException:
            if self._in_transaction:
                db.execute("ROLLBACK TO append")
                db.execute("RELEASE append")
            else:
                db.execute("ROLLBACK")
            raise
        return offsets

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Make every append of the block one transaction: committed when the block ends normally, rolled
        back (nothing of it stored) when it raises. Reads inside the block see its own appends."""
        if self._in_transaction:
            raise RuntimeError("transactions do not nest")
        self._db.execute("BEGIN IMMEDIATE")
        self._in_transaction = True
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        finally:
            self._in_transaction = False

    def read(self, session_id: str, stream: str, from_offset: int = 0) -> Iterator[StoredRecord]:
        """Stream one stream in offset order, `read_chunk` rows per query (keyset paging: no long read
        transaction is held while the caller works, and a session is never loaded whole); a columnar
        stream from its file, each event encoded as it would have been stored."""
        columnar = self.input_events(session_id, stream, session_id, from_offset)
        if columnar is not None:
            for event in columnar:
                key = f"{getattr(event, 'venue', '')}.{getattr(event, 'instrument', '')}"
                record = LogRecord(stream, key, event.type, event.envelope.event_time_ns, encode(event))
                yield StoredRecord(event.envelope.sequence, record)
            return
        offset = from_offset
        while True:
            rows = self._db.execute(_READ_CHUNK, (session_id, stream, offset, self.read_chunk)).fetchall()
            for off, key, event_type, time_ns, payload in rows:
                yield StoredRecord(off, LogRecord(stream, key, event_type, time_ns, bytes(payload)))
            if len(rows) < self.read_chunk:
                return
            offset = rows[-1][0] + 1

    def streams(self, session_id: str) -> list[str]:
        cur = self._db.execute(
            "SELECT stream FROM streams WHERE session_id = ? ORDER BY stream", (session_id,)
        )
        ref = self.market_data(session_id)
        return sorted({row[0] for row in cur} | set(ref.streams if ref is not None else ()))

    def sessions(self) -> list[str]:
        cur = self._db.execute(
            "SELECT session_id FROM streams UNION SELECT session_id FROM market_data ORDER BY session_id"
        )
        return [row[0] for row in cur]

    def end_offset(self, session_id: str, stream: str) -> int:
        ref = self.market_data(session_id)
        if ref is not None and stream in ref.streams:
            return self._open(ref).count(stream)
        return self._end_offset(session_id, stream)

    # -- columnar market data ------------------------------------------------------------------------------

    def market_data(self, session_id: str) -> MarketDataRef | None:
        """The session's columnar market data, None when it has none (every record in SQLite). Read each
        time, not cached: another process's import may have named a new file since."""
        row = self._db.execute(
            "SELECT sha256, codec, streams FROM market_data WHERE session_id = ?", (session_id,)
        ).fetchone()
        return None if row is None else MarketDataRef(row[0], row[1], tuple(json.loads(row[2])))

    def input_events(
        self, session_id: str, stream: str, as_session: str, from_offset: int = 0
    ) -> Iterator[EventBase] | None:
        """A columnar stream's events with the ids of `as_session`; None when the stream is not columnar."""
        ref = self.market_data(session_id)
        if ref is None or stream not in ref.streams:
            return None
        return self._open(ref).events(as_session, stream, from_offset)

    def input_columns(self, session_id: str, streams: Sequence[str], as_session: str) -> FileInputs | None:
        ref = self.market_data(session_id)
        if ref is None or not streams:
            return None
        file = self._open(ref)
        return FileInputs(file, as_session) if sorted(streams) == sorted(file.streams) else None

    def market_columns(self, session_id: str) -> tuple[pa.Table, list[str]] | None:
        """Raw columns of the session's market data (layout `adapters.columnar.schema`, engine order) and
        the stream names its `stream` column indexes; None when it has no columnar market data. Rows of
        streams a backtest did not select are in the table too: filter on `stream`."""
        ref = self.market_data(session_id)
        if ref is None:
            return None
        opened = self._open(ref)
        return opened.table, opened.streams

    def market_data_path(self, session_id: str) -> Path | None:
        ref = self.market_data(session_id)
        return None if ref is None or self.catalog is None else self.catalog.path(ref.sha256)

    def verify_market_data(self, session_id: str) -> None:
        """Re-hash the session's market-data file in full (a replay: never trust a remembered check).
        Raises `MarketDataChanged` naming the file and both hashes."""
        ref = self.market_data(session_id)
        if ref is not None:
            self._require_catalog().verify(ref.sha256)

    def attach_market_data(self, session_id: str, sha256: str, streams: Sequence[str], codec: str = CODEC) -> None:
        """Make `streams` of the catalog file `sha256` the session's market data (an import's new file, or a
        backtest naming its input's). Part of the current transaction when inside `transaction()`."""
        file = self.market_file(sha256)
        unknown = sorted(set(streams) - set(file.streams))
        if unknown:
            raise ValueError(f"market-data file {file.path} has no stream {', '.join(unknown)}")
        self._db.execute(
            "INSERT INTO market_data (session_id, sha256, codec, streams) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (session_id) DO UPDATE SET sha256 = excluded.sha256, codec = excluded.codec,"
            " streams = excluded.streams",
            (session_id, sha256, codec, json.dumps(sorted(streams))),
        )

    def store_market_data(self, session_id: str, rows: RowBuilder) -> str:
        """Write the session's market data with `rows` added and attach it; returns its sha256."""
        sha = self.write_market_data(session_id, rows)
        self.attach_market_data(session_id, sha, self.market_file(sha).streams)
        return sha

    def write_market_data(self, session_id: str, rows: RowBuilder) -> str:
        """Write a file of the session's market data with `rows` added (old and new rows in engine order),
        not yet attached; returns its sha256. The file is written before the caller's transaction commits:
        a rollback leaves an unnamed file in the catalog, never a session naming a missing one."""
        ref = self.market_data(session_id)
        existing = self._open(ref).table if ref is not None else None
        return self._require_catalog().write(rows.table(existing))

    def market_file(self, sha256: str) -> MarketDataFile:
        """The catalog file `sha256`, opened (checked against its name)."""
        return self._open(MarketDataRef(sha256, CODEC, ()))

    def sqlite_market_streams(self, session_id: str, prefix: str = "md.") -> list[str]:
        """Streams of the session with records in SQLite whose name starts with `prefix`."""
        cur = self._db.execute(
            "SELECT stream FROM streams WHERE session_id = ? AND next_offset > 0 ORDER BY stream", (session_id,)
        )
        return [row[0] for row in cur if row[0].startswith(prefix)]

    def drop_records(self, session_id: str, streams: Sequence[str]) -> None:
        """Delete the SQLite records of `streams` (after `cse migrate` moved them to a checked file)."""
        for stream in streams:
            self._db.execute("DELETE FROM records WHERE session_id = ? AND stream = ?", (session_id, stream))
            self._db.execute("DELETE FROM streams WHERE session_id = ? AND stream = ?", (session_id, stream))

    # CheckCache of the catalog: verified (inode, size, mtime_ns) per file.
    def checked(self, sha256: str) -> tuple[int, int, int] | None:
        row = self._db.execute(
            "SELECT inode, size, mtime_ns FROM catalog_checks WHERE sha256 = ?", (sha256,)
        ).fetchone()
        return None if row is None else (int(row[0]), int(row[1]), int(row[2]))

    def remember(self, sha256: str, stamp: tuple[int, int, int]) -> None:
        self._db.execute(
            "INSERT INTO catalog_checks (sha256, inode, size, mtime_ns) VALUES (?, ?, ?, ?) ON CONFLICT"
            " (sha256) DO UPDATE SET inode = excluded.inode, size = excluded.size, mtime_ns = excluded.mtime_ns",
            (sha256, *stamp),
        )

    def _open(self, ref: MarketDataRef) -> MarketDataFile:
        opened = self._files.pop(ref.sha256, None)
        if opened is None:
            opened = self._require_catalog().open(ref.sha256, self)
            while len(self._files) >= _OPEN_FILES:  # a long-lived reader (the API) visits many sessions
                del self._files[next(iter(self._files))]
        self._files[ref.sha256] = opened  # most recently used last
        return opened

    def _require_catalog(self) -> Catalog:
        if self.catalog is None:
            raise ValueError(f"event log {self.path} has sessions with columnar market data but no catalog folder")
        return self.catalog

    # -- extras --------------------------------------------------------------------------------------------

    def append_many(self, session_id: str, records: Iterable[LogRecord], batch_size: int = 5_000) -> int:
        """Bulk path for imports: consumes any iterable, committing every `batch_size` records (each chunk is
        atomic and acknowledged on its own). Returns how many records were appended."""
        it = iter(records)
        total = 0
        while chunk := list(islice(it, batch_size)):
            total += len(self.append(session_id, chunk))
        return total

    def count(self, session_id: str, stream: str | None = None) -> int:
        if stream is None:
            return sum(self.end_offset(session_id, s) for s in self.streams(session_id))
        return self.end_offset(session_id, stream)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SqliteEventLog:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _end_offset(self, session_id: str, stream: str) -> int:
        row = self._db.execute(
            "SELECT next_offset FROM streams WHERE session_id = ? AND stream = ?", (session_id, stream)
        ).fetchone()
        return 0 if row is None else int(row[0])
