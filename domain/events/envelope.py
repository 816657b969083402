"""The envelope every event carries, and how derived events get ids that a replay reproduces."""

from __future__ import annotations

import hashlib
import uuid

from pydantic import BaseModel, ConfigDict, Field

EVENT_ID_NAMESPACE = uuid.UUID("6b1f3c1e-7d0a-5c5e-9a43-1f5c0de5eed5")


class Envelope(BaseModel):
    """`sequence` orders a session's inputs; derived events inherit the sequence of the input that caused
    them, so (sequence, event_id) is a total order that any number of agents agree on.
    Times are integer nanoseconds UTC. `event_time_ns` is the engine's time axis: for recorded market data
    the time our recorder received the message (what a live system could act on, and monotonic per
    connection, unlike exchange stamps across message kinds; the venue's own stamp is kept in the payload
    as `exchange_time_ns`), for derived events the engine time of the decision. `ingest_time_ns` is when
    the event entered the log (equal to event time for derived events, so replays match).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: uuid.UUID
    causation_id: uuid.UUID | None = None
    correlation_id: uuid.UUID | None = None
    session_id: str
    sequence: int = Field(ge=0)
    event_time_ns: int = Field(ge=0)
    ingest_time_ns: int = Field(ge=0)
    source: str


_VARIANT_CLEAR, _VARIANT_RFC4122 = ~(0xC000 << 48), 0x8000 << 48
_VERSION_CLEAR, _VERSION_5 = ~(0xF000 << 64), 5 << 76
_new, _set = object.__new__, object.__setattr__


def uuid5(namespace: uuid.UUID, name: str) -> uuid.UUID:
    """`uuid.uuid5(namespace, name)`, the same UUID, built without `UUID.__init__`'s checks (every derived
    event needs one: ~3x cheaper). RFC 4122: SHA-1 of namespace bytes + name, version 5, RFC variant."""
    value = int.from_bytes(hashlib.sha1(namespace.bytes + name.encode()).digest()[:16])
    value = (value & _VARIANT_CLEAR | _VARIANT_RFC4122) & _VERSION_CLEAR | _VERSION_5
    made: uuid.UUID = _new(uuid.UUID)
    _set(made, "int", value)
    _set(made, "is_safe", uuid.SafeUUID.unknown)
    return made


def input_event_id(session_id: str, stream: str, sequence: int) -> uuid.UUID:
    """Id of a recorded input: the same file imported twice gives the same ids."""
    return uuid5(EVENT_ID_NAMESPACE, f"{session_id}/{stream}/{sequence}")


def derive_envelope(cause: Envelope, source: str, index: int, event_time_ns: int | None = None) -> Envelope:
    """Envelope of the `index`-th event that `source` derives from `cause`: id = uuid5(cause id, source:index)."""
    time_ns = cause.event_time_ns if event_time_ns is None else event_time_ns
    return Envelope(
        event_id=uuid5(cause.event_id, f"{source}:{index}"),
        causation_id=cause.event_id,
        correlation_id=cause.correlation_id or cause.event_id,
        session_id=cause.session_id,
        sequence=cause.sequence,
        event_time_ns=time_ns,
        ingest_time_ns=time_ns,
        source=source,
    )
