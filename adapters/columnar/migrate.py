"""`cse migrate`: move a session's market data from SQLite records (the layout before columnar files) into a
columnar file, proven exact before anything is dropped.

Every stored record is decoded and turned into rows; the new file is then read back and every materialised
event must have the stored canonical bytes and offset. Only then, in one transaction, the session names the
file and its SQLite market-data records are deleted. A session whose records cannot be rebuilt from rows
(an envelope with a causation id, an id that is not (session, stream, sequence)'s, an older schema
version) is refused, naming the first such record, and stays as it is: it keeps running on the reference
path, which reads SQLite records exactly as before.
"""

from __future__ import annotations

from dataclasses import dataclass

from adapters.columnar.codec import RowBuilder
from adapters.sqlite_event_log import SqliteEventLog
from domain.events import decode, encode, input_event_id


class NotMigratable(ValueError):
    """The session cannot be moved to a columnar file; the message says which record and why."""


@dataclass(frozen=True)
class Migration:
    session_id: str
    sha256: str
    streams: tuple[str, ...]
    records: int
    rows: int


def migrate_session(log: SqliteEventLog, session_id: str) -> Migration:
    if log.catalog is None:
        raise NotMigratable(f"event log {log.path} has no catalog folder for columnar files")
    streams = tuple(log.sqlite_market_streams(session_id))
    if not streams:
        state = (
            "its market data is already columnar" if log.market_data(session_id) else "it has no market data"
        )
        raise NotMigratable(
            f"session {session_id!r} has no market-data records in SQLite to migrate ({state})"
        )
    if log.market_data(session_id) is not None:
        raise NotMigratable(
            f"session {session_id!r} holds market data both as records and in a file; not migrated"
        )
    rows = RowBuilder()
    stored: dict[str, list[bytes]] = {}
    for stream in streams:
        payloads = stored[stream] = []
        for record in log.read(session_id, stream):
            event = decode(record.record.payload)
            env = event.envelope
            if (env.sequence != record.offset or env.session_id != session_id or env.causation_id is not None
                    or env.correlation_id is not None
                    or env.event_id != input_event_id(session_id, stream, env.sequence)):  # fmt: skip
                raise NotMigratable(f"{stream} offset {record.offset} of session {session_id!r}: its envelope is not"
                                    " the one a recorded input gets from (session, stream, sequence); not migrated")  # fmt: skip
            rows.add(stream, event)
            payloads.append(record.record.payload)
    sha = log.write_market_data(session_id, rows)
    file = log.market_file(sha)
    for stream in streams:
        expected = stored[stream]
        got = 0
        for offset, event in enumerate(file.events(session_id, stream)):
            if offset >= len(expected) or encode(event) != expected[offset]:
                raise NotMigratable(f"{stream} offset {offset} of session {session_id!r} does not materialise to its"
                                    f" stored bytes from {file.path}; not migrated")  # fmt: skip
            got += 1
        if got != len(expected):
            raise NotMigratable(
                f"{stream} of session {session_id!r}: {got} events in {file.path}, {len(expected)} stored"
            )
    with log.transaction():
        log.attach_market_data(session_id, sha, streams)
        log.drop_records(session_id, streams)
    return Migration(session_id, sha, streams, sum(len(p) for p in stored.values()), len(rows))
