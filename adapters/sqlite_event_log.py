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
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from types import TracebackType
from typing import Literal

from application.ports import LogRecord, StoredRecord

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


class SqliteEventLog:
    """`EventLog` on one SQLite file (or ":memory:"). One connection; use from one thread."""

    def __init__(
        self,
        path: str | Path,
        *,
        durability: Literal["normal", "full"] = "normal",
        read_chunk: int = 2_000,
        page_size: int = 16_384,
    ) -> None:
        self.path = str(path)
        self.read_chunk = read_chunk
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
        transaction is held while the caller works, and a session is never loaded whole)."""
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
        return [row[0] for row in cur]

    def sessions(self) -> list[str]:
        cur = self._db.execute("SELECT DISTINCT session_id FROM streams ORDER BY session_id")
        return [row[0] for row in cur]

    def end_offset(self, session_id: str, stream: str) -> int:
        return self._end_offset(session_id, stream)

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
            cur = self._db.execute("SELECT COALESCE(SUM(next_offset), 0) FROM streams WHERE session_id = ?",
                                   (session_id,))  # fmt: skip
        else:
            cur = self._db.execute(
                "SELECT COALESCE(MAX(next_offset), 0) FROM streams WHERE session_id = ? AND stream = ?",
                (session_id, stream),
            )
        return int(cur.fetchone()[0])

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
