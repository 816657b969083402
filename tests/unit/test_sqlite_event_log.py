"""The SQLite event log: offsets, ordering, listing, chunked reads and all-or-nothing batches."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from adapters.sqlite_event_log import SqliteEventLog
from application.ports import EventLog, LogRecord

pytestmark = pytest.mark.unit


def rec(stream: str, i: int, payload: bytes | None = None) -> LogRecord:
    return LogRecord(
        stream, "k", "test.event", 1_000 + i, payload if payload is not None else f'{{"i":{i}}}'.encode()
    )


@pytest.fixture
def log(tmp_path: Path) -> SqliteEventLog:
    return SqliteEventLog(tmp_path / "events.sqlite", read_chunk=3)


def test_is_an_event_log(log: SqliteEventLog) -> None:
    port: EventLog = log
    assert port.sessions() == []


def test_offsets_are_per_stream_and_continue_across_batches(log: SqliteEventLog) -> None:
    assert log.append("s", [rec("a", 0), rec("b", 0), rec("a", 1)]) == [0, 0, 1]
    assert log.append("s", [rec("a", 2)]) == [2]
    assert log.end_offset("s", "a") == 3
    assert log.end_offset("s", "b") == 1
    assert log.end_offset("s", "missing") == 0
    assert log.end_offset("other", "a") == 0
    assert log.append("s", []) == []


def test_read_streams_in_offset_order_in_chunks(log: SqliteEventLog) -> None:
    log.append("s", [rec("a", i) for i in range(10)])  # read_chunk=3: four pages, the last one short
    got = list(log.read("s", "a"))
    assert [r.offset for r in got] == list(range(10))
    assert [r.record for r in got] == [rec("a", i) for i in range(10)]
    assert [r.offset for r in log.read("s", "a", from_offset=7)] == [7, 8, 9]
    assert list(log.read("s", "a", from_offset=10)) == []
    assert list(log.read("s", "nope")) == []


def test_read_is_lazy_and_sees_appends_made_while_reading(log: SqliteEventLog) -> None:
    log.append("s", [rec("a", i) for i in range(4)])
    it = log.read("s", "a")
    assert next(it).offset == 0
    log.append("s", [rec("a", 4)])
    assert [r.offset for r in it] == [1, 2, 3, 4]


def test_streams_and_sessions_are_sorted(log: SqliteEventLog) -> None:
    log.append("s2", [rec("zeta", 0), rec("alpha", 0)])
    log.append("s1", [rec("m", 0)])
    assert log.streams("s2") == ["alpha", "zeta"]
    assert log.sessions() == ["s1", "s2"]


def test_a_batch_with_a_failing_record_appends_nothing(log: SqliteEventLog) -> None:
    log.append("s", [rec("a", 0)])
    bad = LogRecord("b", "k", "test.event", 5, None)  # type: ignore[arg-type]  # NOT NULL payload
    with pytest.raises(sqlite3.IntegrityError):
        log.append("s", [rec("a", 1), rec("b", 0), bad, rec("a", 2)])
    assert log.end_offset("s", "a") == 1
    assert log.end_offset("s", "b") == 0
    assert log.streams("s") == ["a"]
    assert [r.offset for r in log.read("s", "a")] == [0]
    assert log.append("s", [rec("a", 1)]) == [1]  # the log is still usable


def test_reopen_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "e.sqlite"
    with SqliteEventLog(path, durability="full") as first:
        first.append("s", [rec("a", i) for i in range(5)])
    with SqliteEventLog(path) as again:
        assert again.end_offset("s", "a") == 5
        assert [r.record for r in again.read("s", "a")] == [rec("a", i) for i in range(5)]
        assert again.append("s", [rec("a", 5)]) == [5]
        mode = again._db.execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"


def test_append_many_chunks_into_transactions(log: SqliteEventLog) -> None:
    n = log.append_many("s", (rec("a" if i % 2 else "b", i) for i in range(25)), batch_size=4)
    assert n == 25
    assert log.end_offset("s", "a") == 12 and log.end_offset("s", "b") == 13
    assert log.count("s") == 25 and log.count("s", "a") == 12
