"""The tail `cse project --follow` reads from Kafka: a stream is served only up to its first gap (derived
events span topics and partitions, so offset 10 may arrive before 9), duplicates keep their first copy, and
trimming forgets only what every projector committed."""

from __future__ import annotations

import pytest

from application.ports import LogRecord, StoredRecord
from streams.follow import _Stream

pytestmark = pytest.mark.unit


def _record(offset: int, payload: bytes = b"{}") -> StoredRecord:
    return StoredRecord(offset, LogRecord("derived", "s", "order.accepted", offset, payload))


def test_a_stream_is_served_up_to_its_first_gap_only() -> None:
    stream = _Stream()
    assert stream.add(_record(0)) and stream.add(_record(2)) and stream.add(_record(3))
    assert [r.offset for r in stream.ready] == [0] and stream.end == 1  # 1 is missing: 2 and 3 wait
    assert stream.add(_record(1))
    assert [r.offset for r in stream.ready] == [0, 1, 2, 3] and stream.end == 4


def test_duplicates_keep_the_first_copy() -> None:
    stream = _Stream()
    stream.add(_record(0, b"first"))
    stream.add(_record(2, b"first"))
    assert not stream.add(_record(0, b"again")) and not stream.add(_record(2, b"again"))
    stream.add(_record(1))
    assert [r.record.payload for r in stream.ready] == [b"first", b"{}", b"first"]


def test_trim_forgets_committed_records_and_keeps_offsets() -> None:
    stream = _Stream()
    for offset in range(5):
        stream.add(_record(offset))
    stream.traces[1] = b"00-trace"
    stream.trim(1)
    assert stream.base == 2 and [r.offset for r in stream.ready] == [2, 3, 4] and stream.end == 5
    assert 1 not in stream.traces
    assert not stream.add(_record(1))  # already projected and trimmed: a redelivery is dropped
    stream.trim(-1)  # nothing committed yet: nothing to forget
    assert stream.base == 2
