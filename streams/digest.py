"""The downstream consumer that builds a session's digest from the derived topics.

At-least-once upstream means duplicates; every derived message carries its event id and its position
(`cse-offset` in stream `derived`). This consumer keeps the first copy per event id, orders by position,
and digests the canonical bytes exactly like the embedded backtest (`domain.events.Digest`).
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.events import Digest
from streams.kafka_io import scan
from streams.serialization import H_EVENT_ID, H_OFFSET, H_SESSION, H_STREAM, header_map
from streams.topics import Topics


@dataclass
class DerivedDigest:
    session_id: str
    digest: str
    events: int
    duplicates_dropped: int
    gaps: int
    conflicts: int = 0  # distinct event ids at an already-taken position: diverged kernels, never expected


def derived_digest(bootstrap: str, topics: Topics, session_id: str, stream: str = "derived") -> DerivedDigest:
    wanted_session, wanted_stream = session_id.encode(), stream.encode()
    seen: set[bytes] = set()
    by_offset: dict[int, bytes] = {}
    duplicates = conflicts = 0
    for msg in scan(bootstrap, topics.derived()):
        headers = header_map(msg.headers())
        if headers.get(H_SESSION) != wanted_session or headers.get(H_STREAM) != wanted_stream:
            continue
        event_id = headers.get(H_EVENT_ID, b"")
        if event_id in seen:
            duplicates += 1
            continue
        seen.add(event_id)
        offset = int(headers[H_OFFSET])
        if offset in by_offset:
            conflicts += 1
            continue
        by_offset[offset] = msg.value()
    digest = Digest()
    for offset in sorted(by_offset):
        digest.add(by_offset[offset])
    gaps = (max(by_offset) + 1 - len(by_offset)) if by_offset else 0
    return DerivedDigest(session_id, digest.hexdigest(), len(by_offset), duplicates, gaps, conflicts)
