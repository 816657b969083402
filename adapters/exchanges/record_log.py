"""Where a recording goes: one session of an event log (embedded SQLite or Kafka), written like an import.

- stream `session` opens with `SessionStarted(mode="record")`; a session of another mode is refused, and
  recording again into a recording session continues every stream where it ends;
- one stream per (venue, instrument), `md.{venue}.{instrument}` (the importers' convention), opened by the
  instrument's `InstrumentDefined` (from the exchange's market metadata as ccxt loads it at session start);
- `envelope.sequence` is the record's offset in its stream, the event id `input_event_id(session, stream,
  sequence)`; event time and ingest time are the receive time (monotonic per stream: a clock step back is
  clamped to the stream's last time), the exchange's own time stays in the payload;
- records are appended in batches (`flush_every` records, or `flush()`: the recorder flushes at least every
  `FLUSH_INTERVAL_S` and on stop), each batch one transaction: what a stop leaves is whole batches.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from adapters.importers.common import ROW_ERRORS, SESSION_STREAM, config_hash, describe_error, market_stream
from adapters.importers.validation import refusal
from application.ports import EventLog, LogRecord
from domain.events import (
    Envelope,
    EventBase,
    InstrumentDefined,
    SessionStarted,
    decode,
    encode,
    input_event_id,
)

log = logging.getLogger(__name__)

SOURCE = "record.ccxt"
FLUSH_INTERVAL_S = 0.2
Builder = Callable[[Envelope], EventBase]


class RecordRefused(Exception):
    """The recording cannot go into this session; the message says why."""


@dataclass
class _Stream:
    next_seq: int
    last_time_ns: int


class RecordLog:
    def __init__(self, log_: EventLog, session_id: str, *, code_version: str, config: Mapping[str, object],
                 flush_every: int = 2_000) -> None:  # fmt: skip
        self.log = log_
        self.session_id = session_id
        self.flush_every = flush_every
        self.records = 0
        """Records appended (durable) so far, session markers included."""
        self.refused = 0
        self._streams: dict[str, _Stream] = {}
        self._batch: list[LogRecord] = []
        self._code_version = code_version
        self._config = dict(config)

    def start(self, time_ns: int) -> None:
        """Open the session (SessionStarted), or continue a recording session."""
        for stored in self.log.read(self.session_id, SESSION_STREAM):
            event = decode(stored.record.payload)
            if isinstance(event, SessionStarted) and event.mode != "record":
                raise RecordRefused(f"session {self.session_id!r} is a {event.mode} session; record into a new "
                                    "session id (or into a session recorded before)")  # fmt: skip
        if self.log.end_offset(self.session_id, SESSION_STREAM) > 0:
            return
        self._add_record(SESSION_STREAM, self.session_id, lambda env: SessionStarted(
            envelope=env, mode="record", config_hash=config_hash(self._config), model_hash="",
            code_version=self._code_version), time_ns)  # fmt: skip

    def define(self, venue: str, instrument: str, definition: Callable[[Envelope], InstrumentDefined],
               time_ns: int) -> bool:  # fmt: skip
        """Open a market-data stream with its instrument's definition; False if the stream exists already
        (a recording continued: the definition it opened with stays)."""
        stream = market_stream(venue, instrument)
        if self._stream(stream).next_seq > 0:
            return False
        self._add_record(stream, f"{venue}.{instrument}", definition, time_ns)
        return True

    def add(self, venue: str, instrument: str, time_ns: int, build: Builder) -> EventBase | None:
        """Stamp and buffer one market-data event; None (counted, logged) when the message is malformed."""
        stream = market_stream(venue, instrument)
        if self._stream(stream).next_seq == 0:
            raise RuntimeError(f"{stream} was not opened with its instrument's definition")
        return self._add_record(stream, f"{venue}.{instrument}", build, time_ns)

    def _stream(self, stream: str) -> _Stream:
        state = self._streams.get(stream)
        if state is None:
            seq = self.log.end_offset(self.session_id, stream)
            last = 0
            if seq > 0:
                for stored in self.log.read(self.session_id, stream, seq - 1):
                    last = stored.record.event_time_ns
            state = self._streams[stream] = _Stream(seq, last)
        return state

    def _add_record(self, stream: str, key: str, build: Builder, time_ns: int) -> EventBase | None:
        state = self._stream(stream)
        time_ns = max(time_ns, state.last_time_ns)
        seq = state.next_seq
        envelope = Envelope(event_id=input_event_id(self.session_id, stream, seq), session_id=self.session_id,
                            sequence=seq, event_time_ns=time_ns, ingest_time_ns=time_ns, source=SOURCE)  # fmt: skip
        try:
            event = build(envelope)
        except ROW_ERRORS as exc:
            self._refuse(stream, *describe_error(exc))
            return None
        refused = refusal(event)
        if refused is not None:
            self._refuse(stream, *refused)
            return None
        state.next_seq += 1
        state.last_time_ns = time_ns
        self._batch.append(LogRecord(stream, key, event.type, time_ns, encode(event)))
        if len(self._batch) >= self.flush_every:
            self.flush()
        return event

    def _refuse(self, stream: str, reason: str, detail: str) -> None:
        self.refused += 1
        log.warning("record: message refused in %s: %s: %s", stream, reason, detail)

    def flush(self) -> None:
        """Append what is buffered, in one transaction."""
        if not self._batch:
            return
        batch, self._batch = self._batch, []
        self.log.append(self.session_id, batch)
        self.records += len(batch)
