"""Backtest: a what-if run of a strategy over a recorded session, recorded as a session of its own.

The backtest session holds the re-stamped inputs (same stream names), every derived event in the order the
kernel produced it (stream `derived`), and SessionStarted/SessionEnded (stream `session`) with the
parameters and the digest, so `cse replay` can reproduce it from the log alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from application.metrics import BacktestMetrics
from application.ports import EventLog, LogRecord
from application.session_run import (
    DERIVED_STREAM,
    MERGE_STREAM,
    SESSION_STREAM,
    MergeRecorder,
    RunParameters,
    VenueFactory,
    run_inputs,
)
from domain.events import Digest, Envelope, EventBase, SessionEnded, SessionStarted, encode, input_event_id

BATCH_SIZE = 5_000


@dataclass(frozen=True)
class BacktestResult:
    session_id: str
    digest: str
    inputs: int
    derived: int
    summary: dict[str, Any]
    metrics: BacktestMetrics


class _BatchWriter:
    def __init__(self, log: EventLog, session_id: str) -> None:
        self._log = log
        self._session_id = session_id
        self._pending: list[LogRecord] = []

    def add(self, stream: str, key: str, event: EventBase, payload: bytes | None = None) -> None:
        self._pending.append(
            LogRecord(stream, key, event.type, event.envelope.event_time_ns, payload or encode(event))
        )
        if len(self._pending) >= BATCH_SIZE:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self._log.append(self._session_id, self._pending)
            self._pending = []


def session_marker_envelope(session_id: str, index: int, time_ns: int, source: str) -> Envelope:
    return Envelope(
        event_id=input_event_id(session_id, SESSION_STREAM, index),
        session_id=session_id,
        sequence=index,
        event_time_ns=time_ns,
        ingest_time_ns=time_ns,
        source=source,
    )


def run_backtest(
    log: EventLog,
    parameters: RunParameters,
    session_id: str,
    venue_factory: VenueFactory,
    code_version: str,
    progress: Callable[[int], None] | None = None,
) -> BacktestResult:
    if log.end_offset(session_id, SESSION_STREAM) > 0:
        raise ValueError(f"session {session_id!r} already exists; choose another --id or replay it")
    writer = _BatchWriter(log, session_id)
    metrics = BacktestMetrics()
    digest = Digest()
    first_time: list[int] = []
    merge = MergeRecorder(session_id, parameters.streams)

    def on_input(stream: str, event: EventBase) -> None:
        if not first_time:
            first_time.append(event.envelope.event_time_ns)
            started = SessionStarted(
                envelope=session_marker_envelope(session_id, 0, first_time[0], "backtest"),
                mode="backtest",
                config_hash=parameters.config_hash,
                model_hash="",
                code_version=code_version,
                parameters=parameters.canonical_json(),
            )
            writer.add(SESSION_STREAM, session_id, started)
        writer.add(stream, stream, event)
        chunk = merge.add(stream, event.envelope.event_time_ns)
        if chunk is not None:
            writer.add(MERGE_STREAM, session_id, chunk)
        metrics.observe(event)
        if progress is not None:
            progress(1)

    def on_derived(event: EventBase) -> None:
        payload = encode(event)
        digest.add(payload)
        writer.add(DERIVED_STREAM, session_id, event, payload)
        metrics.observe(event)

    kernel = run_inputs(log, parameters, session_id, venue_factory, on_input, on_derived)
    if not first_time:
        raise ValueError(
            f"session {parameters.input_session!r} has no input events in {list(parameters.streams)}"
        )
    last_chunk = merge.flush()
    if last_chunk is not None:
        writer.add(MERGE_STREAM, session_id, last_chunk)
    ended = SessionEnded(
        envelope=session_marker_envelope(session_id, 1, kernel.clock.now_ns(), "backtest"),
        input_events=kernel.inputs,
        derived_events=kernel.derived,
        digest=digest.hexdigest(),
    )
    writer.add(SESSION_STREAM, session_id, ended)
    writer.flush()
    summary = metrics.summary(Decimal(parameters.config.starting_equity))
    summary.update(session_id=session_id, digest=digest.hexdigest(), input_events=kernel.inputs,
                   derived_events=kernel.derived)  # fmt: skip
    # How the simulated venues matched: e.g. orders matched against the exchange's top of book because the
    # L2 book was out of sync or older than the ticker (docs/simulated-venue.md).
    summary["venues"] = kernel.venue_counters()
    return BacktestResult(session_id, digest.hexdigest(), kernel.inputs, kernel.derived, summary, metrics)
