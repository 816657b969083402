"""A live or paper session: inputs recorded as they arrive, fed through the one kernel, replayable exactly.

Inputs are what the outside world said: market data, and in live mode what the exchange answered (the live
venue's order events and breaker changes, stream `orders.<venue>`). Each batch the caller feeds is written
in one append, with the `InputsMerged` record of the order it was consumed in and every event the kernel
derived from it, before the caller lets any request go out (a live venue only starts its requests when the
caller next awaits): nothing the exchange is asked to do is missing from the log after a crash.

A replay (`replay_session`) re-runs the recorded inputs in the recorded order: paper sessions with the
simulated venues (deterministic, like a backtest), live sessions with `RecordedVenue`s (the exchange's
answers are already inputs), and compares the derived events byte for byte.

After a restart `resume` re-runs the recorded inputs through a fresh kernel without writing anything, so the
deciders and the live venues know what the session knows; the caller then reconciles with the exchange.

Operator commands reach a running session the way they reach any session: `append_operator_command` stores
them in its `commands` stream; the loop runs them (`operator_commands`) before its next batch, and records
their place in the order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from application.backtest import session_marker_envelope
from application.engine import Kernel
from application.operator_commands import COMMANDS_STREAM
from application.ports import EventLog, LogRecord, Venue
from application.run_config import RunConfig, build_deciders
from application.session_run import (
    DERIVED_STREAM,
    MERGE_STREAM,
    SESSION_STREAM,
    MergeRecorder,
    RecordedOrderError,
    RunParameters,
    session_inputs,
)
from domain.events import Digest, EventBase, SessionEnded, SessionStarted, decode, encode

LiveMode = Literal["live", "paper"]
ORDERS_PREFIX = "orders."


class RecordedVenue:
    """A live venue in a replay: what the exchange answered is in the session's inputs, so it acts on
    nothing and reports nothing."""

    def __init__(self, name: str) -> None:
        self.name = name

    def submit(self, command: EventBase) -> list[EventBase]:
        return []

    def on_market(self, event: EventBase) -> list[EventBase]:
        return []

    def drain(self, until_ns: int) -> list[EventBase]:
        return []

    def counters(self) -> Mapping[str, Any]:
        return {}


def recorded_venues(config: RunConfig) -> Mapping[str, Venue]:
    return {name: RecordedVenue(name) for name in sorted(config.venues)}


class LiveSessionError(ValueError):
    """The session cannot be started or resumed as asked (it ended, or was recorded otherwise)."""


class LiveRun:
    def __init__(self, log: EventLog, session_id: str, parameters: RunParameters, mode: LiveMode,
                 venues: Mapping[str, Venue], code_version: str,
                 observe: Callable[[EventBase], None] | None = None) -> None:  # fmt: skip
        self.log = log
        self.observe = observe or (lambda event: None)
        """Sees every input run and every event derived (metrics of a live service); changes nothing."""
        self.session_id = session_id
        self.parameters = parameters
        self.mode = mode
        self.code_version = code_version
        self.kernel = Kernel(build_deciders(parameters.config), venues, self._on_derived)
        self.digest = Digest()
        self._pending: list[LogRecord] = []
        self._writing = True
        self._merge = MergeRecorder(session_id, parameters.streams)
        self.started = log.end_offset(session_id, SESSION_STREAM) > 0
        self.consumed = dict.fromkeys(parameters.streams, 0)
        """Inputs run per stream; for the `commands` stream, where the next operator command starts."""

    def start(self, time_ns: int) -> None:
        """Write SessionStarted (a new session) with what the run depends on."""
        if self.started:
            raise LiveSessionError(f"session {self.session_id!r} already exists; resume it or choose another")
        started = SessionStarted(envelope=session_marker_envelope(self.session_id, 0, time_ns, self.mode),
                                 mode=self.mode, config_hash=self.parameters.config_hash, model_hash="",
                                 code_version=self.code_version, parameters=self.parameters.canonical_json())  # fmt: skip
        self._pending.append(_record(SESSION_STREAM, self.session_id, started))
        self._flush()
        self.started = True

    def resume(self) -> int:
        """Re-run the recorded inputs (nothing written); returns how many there were."""
        recorded = self._recorded_start()
        if recorded.mode != self.mode or recorded.parameters != self.parameters.canonical_json():
            raise LiveSessionError(f"session {self.session_id!r} was recorded as {recorded.mode} with other "
                                   "parameters; resume it with the same configuration")  # fmt: skip
        self._writing = False
        try:
            for stream, stored in session_inputs(self.log, self.session_id, self.parameters.streams):
                event = decode(stored.record.payload)
                self.observe(event)
                self.kernel.feed(event)
                self.consumed[stream] += 1
        except RecordedOrderError:
            # Operator commands appended after the last batch (the process died before running them) are
            # not in the recorded order yet: they run next, as new inputs. Any other gap is an error.
            if any(self.consumed[s] != self.log.end_offset(self.session_id, s)
                   for s in self.parameters.streams if s != COMMANDS_STREAM):  # fmt: skip
                raise
        inputs = sum(self.consumed.values())
        self._writing = True
        self._merge = MergeRecorder(self.session_id, self.parameters.streams, first_input=inputs,
                                    chunks=self.log.end_offset(self.session_id, MERGE_STREAM))  # fmt: skip
        return inputs

    def operator_commands(self) -> list[tuple[str, EventBase]]:
        """Operator commands appended to the session (`cse command ...`, GraphQL, Kafka) and not run yet:
        the loop feeds them before its next batch (they are stored already; `feed` does not store them)."""
        if COMMANDS_STREAM not in self.consumed:
            return []
        stored = self.log.read(self.session_id, COMMANDS_STREAM, self.consumed[COMMANDS_STREAM])
        return [(COMMANDS_STREAM, decode(record.record.payload)) for record in stored]

    def feed(self, inputs: Sequence[tuple[str, EventBase]]) -> None:
        """Record and run a batch of inputs (stream, event), in arrival order; durable when this returns.
        Operator commands (stream `commands`) are stored by whoever sent them: only their order is recorded."""
        for stream, event in inputs:
            if stream != COMMANDS_STREAM:
                self._pending.append(_record(stream, stream, event))
            self.consumed[stream] += 1
            self._merge.add(stream, event.envelope.event_time_ns)
            self.observe(event)
            self.kernel.feed(event)
        chunk = self._merge.flush()
        if chunk is not None:
            self._pending.append(_record(MERGE_STREAM, self.session_id, chunk))
        self._flush()

    def end(self, time_ns: int) -> SessionEnded:
        ended = SessionEnded(envelope=session_marker_envelope(self.session_id, 1, time_ns, self.mode),
                             input_events=self.kernel.inputs, derived_events=self.kernel.derived,
                             digest=self.digest.hexdigest())  # fmt: skip
        self._pending.append(_record(SESSION_STREAM, self.session_id, ended))
        self._flush()
        return ended

    def _recorded_start(self) -> SessionStarted:
        markers = [decode(s.record.payload) for s in self.log.read(self.session_id, SESSION_STREAM)]
        if not markers or not isinstance(markers[0], SessionStarted):
            raise LiveSessionError(f"no session {self.session_id!r} to resume")
        if any(isinstance(m, SessionEnded) for m in markers):
            raise LiveSessionError(f"session {self.session_id!r} has ended; start a new one")
        return markers[0]

    def _on_derived(self, event: EventBase) -> None:
        self.observe(event)
        payload = encode(event)
        self.digest.add(payload)
        if self._writing:
            self._pending.append(_record(DERIVED_STREAM, self.session_id, event, payload))

    def _flush(self) -> None:
        if self._pending:
            self.log.append(self.session_id, self._pending)
            self._pending = []


def _record(stream: str, key: str, event: EventBase, payload: bytes | None = None) -> LogRecord:
    return LogRecord(stream, key, event.type, event.envelope.event_time_ns, payload or encode(event))
