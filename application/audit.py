"""The raw events of a session by type, for audit: straight from the log, so every event type, present or
future, is listed without a read model (streams in name order, each in offset order)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from application.ports import EventLog, StoredRecord


class LogPosition(NamedTuple):
    stream: str
    offset: int


class AuditPage(NamedTuple):
    records: list[tuple[str, StoredRecord]]
    """(stream, record) pairs."""
    has_next: bool


def events_by_type(log: EventLog, session_id: str, types: Iterable[str] | None, first: int,
                   after: LogPosition | None = None) -> AuditPage:  # fmt: skip
    """Up to `first` records whose type is in `types` (a trailing `*` matches a prefix: `order.*`)."""
    exact = {t for t in types or () if not t.endswith("*")}
    prefixes = tuple(t[:-1] for t in types or () if t.endswith("*"))
    wanted = bool(exact or prefixes)
    out: list[tuple[str, StoredRecord]] = []
    for stream in log.streams(session_id):
        if after is not None and stream < after.stream:
            continue
        start = after.offset + 1 if after is not None and stream == after.stream else 0
        for stored in log.read(session_id, stream, start):
            kind = stored.record.event_type
            if wanted and kind not in exact and not kind.startswith(prefixes):
                continue
            if len(out) == first:
                return AuditPage(out, True)
            out.append((stream, stored))
    return AuditPage(out, False)
