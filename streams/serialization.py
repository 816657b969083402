"""Kafka messages of CryptoSpreadEdge: value = the event's canonical JSON (`domain.events.encode`), unchanged.

Headers (all ASCII bytes):
- `cse-type`, `cse-schema-version`: the event type and its schema version (routing without parsing JSON);
- `traceparent`: W3C trace context. Without an incoming context it is derived deterministically from the
  event: trace id = correlation id (or the event id for a root input), parent/span id = first 16 hex digits
  of the event id; flags 01. So one causal chain is one trace, and a replay yields the same headers. With
  tracing on (`CSE_OTLP_ENDPOINT`), a hop that publishes writes its own span instead (`with_traceparent`), so
  the next hop's span is its child (same trace id; `adapters/observability/tracing.py`);
- `cse-session`, `cse-stream`, `cse-offset`, `cse-log-key`, `cse-time-ns`, `cse-event-id`: the event-log
  position of the record (session, log stream, offset within that stream, the log's key, event time), which
  lets `KafkaEventLog.read` return exactly what the SQLite log would, and lets consumers drop duplicates.

A message that does not decode goes to the dead-letter topic: value = the original bytes, key = the original
key, the original headers plus `cse-dlq-reason`, `cse-dlq-topic`, `cse-dlq-partition`, `cse-dlq-offset`.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, replace
from typing import Any

from application.ports import LogRecord, StoredRecord
from domain.events import EventBase, EventDecodeError, decode

H_TYPE, H_VERSION, H_TRACE = "cse-type", "cse-schema-version", "traceparent"
H_SESSION, H_STREAM, H_OFFSET, H_LOG_KEY, H_TIME, H_EVENT_ID = (
    "cse-session", "cse-stream", "cse-offset", "cse-log-key", "cse-time-ns", "cse-event-id",
)  # fmt: skip
H_CONTROL = "cse-control"  # control records (end of session) carry no event
H_DLQ_REASON, H_DLQ_TOPIC, H_DLQ_PARTITION, H_DLQ_OFFSET = (
    "cse-dlq-reason", "cse-dlq-topic", "cse-dlq-partition", "cse-dlq-offset",
)  # fmt: skip
CONTROL_END_OF_SESSION = b"end-of-session"

Headers = list[tuple[str, bytes]]


def traceparent(event_id: uuid.UUID | str, correlation_id: uuid.UUID | str | None = None) -> str:
    event_hex = uuid.UUID(str(event_id)).hex
    trace_hex = uuid.UUID(str(correlation_id)).hex if correlation_id else event_hex
    return f"00-{trace_hex}-{event_hex[:16]}-01"


@dataclass(frozen=True, slots=True)
class OutMessage:
    topic_suffix: str
    key: bytes
    value: bytes
    headers: Headers


def headers_for(
    session_id: str, stored: StoredRecord, payload: dict[str, Any], trace: str | None = None
) -> Headers:
    record = stored.record
    envelope = payload.get("envelope") or {}
    event_id = envelope.get("event_id", "")
    if trace is None:
        trace = traceparent(event_id, envelope.get("correlation_id")) if event_id else ""
    return [
        (H_TYPE, record.event_type.encode()),
        (H_VERSION, str(payload.get("schema_version", 1)).encode()),
        (H_TRACE, trace.encode()),
        (H_SESSION, session_id.encode()),
        (H_STREAM, record.stream.encode()),
        (H_OFFSET, str(stored.offset).encode()),
        (H_LOG_KEY, record.key.encode()),
        (H_TIME, str(record.event_time_ns).encode()),
        (H_EVENT_ID, str(event_id).encode()),
    ]


def to_message(session_id: str, stored: StoredRecord, account: str = "default") -> OutMessage:
    from streams.topics import route

    payload = json.loads(stored.record.payload)
    suffix, key = route(stored.record.stream, stored.record.event_type, payload, session_id, account)
    return OutMessage(suffix, key.encode(), stored.record.payload, headers_for(session_id, stored, payload))


def event_message(session_id: str, stream: str, offset: int, event: EventBase, payload: bytes,
                  account: str = "default") -> OutMessage:  # fmt: skip
    """A derived event as the worker publishes it (log key = session id, like the embedded backtest)."""
    record = LogRecord(stream, session_id, event.type, event.envelope.event_time_ns, payload)
    return to_message(session_id, StoredRecord(offset, record), account)


def with_traceparent(msg: OutMessage, trace: str | None) -> OutMessage:
    """The message with its `traceparent` replaced (a hop's own span); unchanged for None."""
    if trace is None:
        return msg
    return replace(msg, headers=[(k, trace.encode() if k == H_TRACE else v) for k, v in msg.headers])


def header_map(headers: Headers | None) -> dict[str, bytes]:
    return {k: v for k, v in (headers or [])}


class UndecodableMessage(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def is_control(headers: dict[str, bytes]) -> bool:
    return H_CONTROL in headers


def from_message(value: bytes | None, headers: dict[str, bytes]) -> tuple[StoredRecord, EventBase]:
    """Decode a message into its log record and event; raises UndecodableMessage with the reason."""
    if value is None:
        raise UndecodableMessage("empty value (tombstone)")
    try:
        event = decode(value)
    except EventDecodeError as exc:
        raise UndecodableMessage(exc.reason) from exc
    except ValueError as exc:  # pragma: no cover - decode maps validation errors already
        raise UndecodableMessage(str(exc)) from exc
    declared = headers.get(H_TYPE)
    if declared is not None and declared.decode(errors="replace") != event.type:
        raise UndecodableMessage(f"header {H_TYPE}={declared!r} but the value is a {event.type}")
    try:
        stream = headers[H_STREAM].decode()
        offset = int(headers[H_OFFSET])
        log_key = headers.get(H_LOG_KEY, b"").decode()
    except (KeyError, ValueError, UnicodeDecodeError) as exc:
        raise UndecodableMessage(f"missing or bad event-log headers: {exc!r}") from exc
    record = LogRecord(stream, log_key, event.type, event.envelope.event_time_ns, value)
    return StoredRecord(offset, record), event


def dead_letter(value: bytes | None, key: bytes | None, headers: Headers | None, reason: str, topic: str,
                partition: int, offset: int) -> tuple[bytes | None, bytes, Headers]:  # fmt: skip
    """(key, value, headers) of the dead-letter message for an undecodable one."""
    extra: Headers = [
        (H_DLQ_REASON, reason.encode()[:4000]),
        (H_DLQ_TOPIC, topic.encode()),
        (H_DLQ_PARTITION, str(partition).encode()),
        (H_DLQ_OFFSET, str(offset).encode()),
    ]
    return key, value if value is not None else b"", [*(headers or []), *extra]
