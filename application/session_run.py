"""Runs a session's recorded inputs through the kernel: the shared core of backtest and replay.

Inputs are read stream by stream from the log and merged by (event time, stream priority, sequence). When
the run writes into another session (a backtest over an imported session), every input is re-stamped into
that session with an id derived from (session, stream, sequence), so the backtest is a session of its own
whose causation chains resolve inside it, and a replay of it needs nothing else. The merge order the run
used is recorded too (`MergeRecorder`: `InputsMerged` events in the `merge` stream), and a replay reads it
back (`ordered_inputs`) instead of recomputing it: the same code then replays sessions whose order no rule
can recompute, such as live ones, where it is the order in which the streams' events arrived.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from application.engine import Kernel
from application.fast_run import CoreFactory, run_gated
from application.merge import Merged, merge_pairs
from application.operator_commands import COMMANDS_STREAM
from application.ports import EventLog, StoredRecord, Venue
from application.run_config import RunConfig, build_deciders
from domain.events import Envelope, EventBase, InputsMerged, decode, input_event_id

SESSION_STREAM = "session"
DERIVED_STREAM = "derived"
MERGE_STREAM = "merge"
MARKET_DATA_PREFIX = "md."
MERGE_CHUNK = 20_000
"""Inputs per `InputsMerged` record: at worst (the streams alternating) ~150 KB of JSON."""

VenueFactory = Callable[[RunConfig], Mapping[str, Venue]]


@dataclass(frozen=True)
class RunParameters:
    """Everything a run depends on besides code: recorded in SessionStarted.parameters as canonical JSON."""

    input_session: str
    streams: tuple[str, ...]
    config: RunConfig

    def canonical_json(self) -> str:
        body = {"config": self.config.model_dump(mode="json"), "input_session": self.input_session,
                "streams": list(self.streams)}  # fmt: skip
        return json.dumps(body, sort_keys=True, separators=(",", ":"))

    @property
    def config_hash(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]

    @classmethod
    def from_json(cls, text: str) -> RunParameters:
        body: dict[str, Any] = json.loads(text)
        return cls(body["input_session"], tuple(body["streams"]), RunConfig.model_validate(body["config"]))


def market_data_streams(log: EventLog, session_id: str) -> tuple[str, ...]:
    return tuple(s for s in log.streams(session_id) if s.startswith(MARKET_DATA_PREFIX))


def input_streams(log: EventLog, session_id: str) -> tuple[str, ...]:
    """What a run over `session_id` reads: its operator commands (when it has any), then its market data.
    The commands come first so that a command and a tick at the same event time resolve command first: an
    operator's kill switch at T stops what the tick at T would have triggered."""
    commands = (COMMANDS_STREAM,) if log.end_offset(session_id, COMMANDS_STREAM) else ()
    return commands + market_data_streams(log, session_id)


def merged_inputs(log: EventLog, session_id: str, streams: tuple[str, ...]) -> Iterator[Merged[tuple[int, StoredRecord]]]:
    """The session's input records in engine order; `streams` order is the tie-break priority."""
    sources = {name: _timed(log, session_id, name) for name in streams}
    return merge_pairs(sources, streams)


class RecordedOrderError(ValueError):
    """The recorded merge order does not match the streams in the log."""


class MergeRecorder:
    """Records which stream each input of a run came from, run-length encoded, as one `InputsMerged` event
    per `chunk` inputs (ids derived from (session, `merge`, chunk index), so a re-run gives the same)."""

    def __init__(self, session_id: str, streams: tuple[str, ...], chunk: int = MERGE_CHUNK) -> None:
        self._session_id = session_id
        self._streams = streams
        self._index = {name: i for i, name in enumerate(streams)}
        self._chunk = chunk
        self._runs: list[list[int]] = []
        self._first = self._count = self._chunks = self._time_ns = 0

    def add(self, stream: str, time_ns: int) -> InputsMerged | None:
        """Note the next input's stream; returns a full chunk's event when one is complete."""
        index = self._index[stream]
        if self._count == 0:
            self._time_ns = time_ns
        if self._runs and self._runs[-1][0] == index:
            self._runs[-1][1] += 1
        else:
            self._runs.append([index, 1])
        self._count += 1
        return self.flush() if self._count >= self._chunk else None

    def flush(self) -> InputsMerged | None:
        """The event of the inputs noted since the last one (None if none)."""
        if self._count == 0:
            return None
        envelope = Envelope(event_id=input_event_id(self._session_id, MERGE_STREAM, self._chunks),
                            session_id=self._session_id, sequence=self._chunks, event_time_ns=self._time_ns,
                            ingest_time_ns=self._time_ns, source=MERGE_STREAM)  # fmt: skip
        event = InputsMerged(envelope=envelope, streams=self._streams, first_input=self._first,
                             runs=tuple((i, n) for i, n in self._runs))  # fmt: skip
        self._first += self._count
        self._count = 0
        self._runs = []
        self._chunks += 1
        return event


def recorded_merge(log: EventLog, session_id: str) -> Iterator[InputsMerged] | None:
    """The session's recorded merge order, or None when it has none (sessions of earlier versions)."""
    if log.end_offset(session_id, MERGE_STREAM) == 0:
        return None
    return (_as_merge(decode(stored.record.payload)) for stored in log.read(session_id, MERGE_STREAM))


def _as_merge(event: EventBase) -> InputsMerged:
    if not isinstance(event, InputsMerged):
        raise RecordedOrderError(f"the {MERGE_STREAM} stream holds a {event.type} event")
    return event


def session_inputs(log: EventLog, session_id: str, streams: tuple[str, ...]) -> Iterator[tuple[str, StoredRecord]]:
    """The session's inputs in the order it recorded, or merged by (time, stream priority, sequence) when it
    recorded none (an import, or a session of an earlier version)."""
    order = recorded_merge(log, session_id)
    if order is not None:
        return ordered_inputs(log, session_id, streams, order)
    return ((merged.stream, merged.item[1]) for merged in merged_inputs(log, session_id, streams))


def ordered_inputs(log: EventLog, session_id: str, streams: tuple[str, ...],
                   order: Iterable[InputsMerged]) -> Iterator[tuple[str, StoredRecord]]:  # fmt: skip
    """The inputs of `streams` in the recorded order, checked: the chunks must be contiguous and cover every
    record of every stream exactly once."""
    readers: dict[str, Iterator[StoredRecord]] = {}
    expected = 0
    for chunk in order:
        if chunk.first_input != expected:
            raise RecordedOrderError(f"merge order chunk starts at input {chunk.first_input}, expected {expected}")
        for index, count in chunk.runs:
            stream = chunk.streams[index]
            if stream not in streams:
                raise RecordedOrderError(f"the recorded merge order names {stream!r}, not an input stream")
            reader = readers.get(stream)
            if reader is None:
                reader = readers[stream] = iter(log.read(session_id, stream))
            for _ in range(count):
                stored = next(reader, None)
                if stored is None:
                    raise RecordedOrderError(f"the recorded merge order wants more records of {stream!r} "
                                             f"than the log holds ({expected} inputs in)")  # fmt: skip
                yield stream, stored
                expected += 1
    for stream in streams:  # in the parameters' order: deterministic
        reader = readers.get(stream) or iter(log.read(session_id, stream))
        if next(reader, None) is not None:
            raise RecordedOrderError(f"{stream!r} holds records after input {expected} that the recorded merge "
                                     "order does not cover")  # fmt: skip


def _timed(log: EventLog, session_id: str, stream: str) -> Iterator[tuple[int, StoredRecord]]:
    for stored in log.read(session_id, stream):
        yield stored.record.event_time_ns, stored


def restamp(event: EventBase, session_id: str, stream: str) -> EventBase:
    envelope = event.envelope
    if envelope.session_id == session_id:
        return event
    new_envelope = envelope.model_copy(
        update={"session_id": session_id, "event_id": input_event_id(session_id, stream, envelope.sequence)}
    )
    return event.model_copy(update={"envelope": new_envelope})


def run_inputs(
    log: EventLog,
    parameters: RunParameters,
    target_session: str,
    venue_factory: VenueFactory,
    on_input: Callable[[str, EventBase], None],
    on_derived: Callable[[EventBase], None],
    source_session: str | None = None,
    core: CoreFactory | None = None,
) -> Kernel:
    """Feed the inputs of `source_session` (default: the parameters' input session) through a fresh kernel,
    re-stamped into `target_session`, in the order `session_inputs` gives (recorded, or merged by rule).
    With a market `core` the run is gated (`application.fast_run`): the kernel is called only at rows where
    a decider or venue could act, with the same derived events; without one every input goes through the
    kernel (the reference path). `on_input` sees every input either way. Returns the kernel, drained to the
    last input's time."""
    source = source_session or parameters.input_session
    venues = venue_factory(parameters.config)

    def inputs() -> Iterator[EventBase]:
        for stream, stored in session_inputs(log, source, parameters.streams):
            event = restamp(decode(stored.record.payload), target_session, stream)
            on_input(stream, event)
            yield event

    if core is None:
        kernel = Kernel(build_deciders(parameters.config), venues, on_derived)
        for event in inputs():
            kernel.feed(event)
        kernel.release_due(kernel.clock.now_ns())
        return kernel
    observers = [observe for _, venue in sorted(venues.items()) if (observe := getattr(venue, "observe", None))]
    market_core = core(inputs(), observers)
    kernel = Kernel(build_deciders(parameters.config), venues, on_derived, market=market_core.view)
    run_gated(kernel, market_core)
    return kernel
