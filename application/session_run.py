"""Runs a session's recorded inputs through the kernel: the shared core of backtest and replay.

Inputs are read stream by stream from the log and merged by (event time, stream priority, sequence). When
the run writes into another session (a backtest over an imported session), every input is re-stamped into
that session with an id derived from (session, stream, sequence), so the backtest is a session of its own
whose causation chains resolve inside it, and a replay of it needs nothing else. Columnar market data
(`ColumnarMarketData`) is read as events already stamped for the run's session (no JSON, no copy); a
backtest names its input's file instead of copying the rows. The merge order the run
used is recorded too (`MergeRecorder`: `InputsMerged` events in the `merge` stream), and a replay reads it
back (`ordered_inputs`) instead of recomputing it: the same code then replays sessions whose order no rule
can recompute, such as live ones, where it is the order in which the streams' events arrived.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from application.engine import Kernel
from application.fast_run import CoreFactory, run_gated
from application.merge import Merged, merge_pairs
from application.operator_commands import COMMANDS_STREAM
from application.ports import ColumnarMarketData, EventLog, InputColumns, StoredRecord, Venue
from application.run_config import RunConfig, build_deciders
from domain.events import Envelope, EventBase, InputsMerged, decode, input_event_id

T = TypeVar("T")

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
    market_data: tuple[str, str] | None = None
    """(sha256, codec) of the columnar file holding the input market data, when it is one: the run names
    its data by content instead of copying it (absent in sessions of earlier versions)."""

    def canonical_json(self) -> str:
        return self._json(with_market_data=True)

    @property
    def config_hash(self) -> str:
        """What the run was asked (config, input session, streams): not the data file's name, so a run's
        id (`<input>.bt-<hash>`) and hash stay what they were before files were named."""
        return hashlib.sha256(self._json(with_market_data=False).encode()).hexdigest()[:16]

    def _json(self, *, with_market_data: bool) -> str:
        body: dict[str, Any] = {"config": self.config.model_dump(mode="json"), "input_session": self.input_session,
                                "streams": list(self.streams)}  # fmt: skip
        if with_market_data and self.market_data is not None:
            body["market_data"] = {"sha256": self.market_data[0], "codec": self.market_data[1]}
        return json.dumps(body, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> RunParameters:
        body: dict[str, Any] = json.loads(text)
        named = body.get("market_data")
        market_data = None if named is None else (str(named["sha256"]), str(named["codec"]))
        return cls(body["input_session"], tuple(body["streams"]), RunConfig.model_validate(body["config"]),
                   market_data)  # fmt: skip


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

    def __init__(self, session_id: str, streams: tuple[str, ...], chunk: int = MERGE_CHUNK, *,
                 first_input: int = 0, chunks: int = 0) -> None:  # fmt: skip
        """`first_input`, `chunks`: where a resumed session's recorded order ends (0, 0 for a new run)."""
        self._session_id = session_id
        self._streams = streams
        self._index = {name: i for i, name in enumerate(streams)}
        self._chunk = chunk
        self._runs: list[list[int]] = []
        self._count = self._time_ns = 0
        self._first, self._chunks = first_input, chunks

    def add(self, stream: str, time_ns: int) -> InputsMerged | None:
        """Note the next input's stream; returns a full chunk's event when one is complete."""
        chunks = self.add_runs(((stream, 1),), lambda _: time_ns)
        return chunks[0] if chunks else None

    def add_runs(self, runs: Iterable[tuple[str, int]], time_at: Callable[[int], int]) -> list[InputsMerged]:
        """Note runs of consecutive inputs of one stream, (stream, count) in order; `time_at(i)` is the event
        time of the i-th of these inputs. Returns the chunks completed on the way, in order."""
        done: list[InputsMerged] = []
        position = 0
        for stream, count in runs:
            index = self._index[stream]
            while count:
                if self._count == 0:
                    self._time_ns = time_at(position)
                take = min(count, self._chunk - self._count)
                if self._runs and self._runs[-1][0] == index:
                    self._runs[-1][1] += take
                else:
                    self._runs.append([index, take])
                self._count += take
                position += take
                count -= take
                if self._count >= self._chunk:
                    done.append(self._flush())
        return done

    def flush(self) -> InputsMerged | None:
        """The event of the inputs noted since the last one (None if none)."""
        return self._flush() if self._count else None

    def _flush(self) -> InputsMerged:
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
    return _in_session_order(log, session_id, streams, lambda s: log.read(session_id, s), _record_time)


def session_input_events(log: EventLog, session_id: str, streams: tuple[str, ...],
                         as_session: str) -> Iterator[tuple[str, EventBase]]:  # fmt: skip
    """`session_inputs` as events stamped for `as_session` (the run's session)."""
    return _in_session_order(log, session_id, streams, lambda s: stream_events(log, session_id, s, as_session),
                             _event_time)  # fmt: skip


def stream_events(log: EventLog, session_id: str, stream: str, as_session: str) -> Iterator[EventBase]:
    """One input stream's events with the ids of `as_session`: straight from a columnar file when the
    stream is one, else decoded from the log's records and re-stamped."""
    if isinstance(log, ColumnarMarketData):
        events = log.input_events(session_id, stream, as_session)
        if events is not None:
            return events
    return (restamp(decode(stored.record.payload), as_session, stream) for stored in log.read(session_id, stream))


def _in_session_order(log: EventLog, session_id: str, streams: tuple[str, ...], read: Callable[[str], Iterable[T]],
                      time_of: Callable[[T], int]) -> Iterator[tuple[str, T]]:  # fmt: skip
    order = recorded_merge(log, session_id)
    if order is not None:
        return _in_recorded_order(read, streams, order)
    sources = {name: ((time_of(item), item) for item in read(name)) for name in streams}
    return ((merged.stream, merged.item[1]) for merged in merge_pairs(sources, streams))


def ordered_inputs(log: EventLog, session_id: str, streams: tuple[str, ...],
                   order: Iterable[InputsMerged]) -> Iterator[tuple[str, StoredRecord]]:  # fmt: skip
    """The inputs of `streams` in the recorded order, checked: the chunks must be contiguous and cover every
    record of every stream exactly once. Streams of the recorded order that `streams` leaves out are passed
    over (a backtest of a live session reads its market data in the order it arrived, not its venue answers)."""
    return _in_recorded_order(lambda s: log.read(session_id, s), streams, order)


def _in_recorded_order(read: Callable[[str], Iterable[T]], streams: tuple[str, ...],
                       order: Iterable[InputsMerged]) -> Iterator[tuple[str, T]]:  # fmt: skip
    readers: dict[str, Iterator[T]] = {}
    expected = 0
    for chunk in order:
        if chunk.first_input != expected:
            raise RecordedOrderError(f"merge order chunk starts at input {chunk.first_input}, expected {expected}")
        for index, count in chunk.runs:
            stream = chunk.streams[index]
            if stream not in streams:  # not read by this run: a live run's venue answers, when it is backtested
                expected += count
                continue
            reader = readers.get(stream)
            if reader is None:
                reader = readers[stream] = iter(read(stream))
            for _ in range(count):
                item = next(reader, None)
                if item is None:
                    raise RecordedOrderError(f"the recorded merge order wants more records of {stream!r} "
                                             f"than the log holds ({expected} inputs in)")  # fmt: skip
                yield stream, item
                expected += 1
    for stream in streams:  # in the parameters' order: deterministic
        reader = readers.get(stream) or iter(read(stream))
        if next(reader, None) is not None:
            raise RecordedOrderError(f"{stream!r} holds records after input {expected} that the recorded merge "
                                     "order does not cover")  # fmt: skip


def _timed(log: EventLog, session_id: str, stream: str) -> Iterator[tuple[int, StoredRecord]]:
    for stored in log.read(session_id, stream):
        yield stored.record.event_time_ns, stored


def _record_time(stored: StoredRecord) -> int:
    return stored.record.event_time_ns


def _event_time(event: EventBase) -> int:
    return event.envelope.event_time_ns


def file_order_is_run_order(log: EventLog, session_id: str, streams: tuple[str, ...], columns: InputColumns) -> bool:
    """Whether the file's rows are in the order the run reads `streams`: the session's recorded merge order
    (restricted to `streams`), or, with none recorded, the merge rule, whose stream priority is `streams`'
    order and the file's is name order."""
    order = recorded_merge(log, session_id)
    if order is None:
        return list(streams) == sorted(streams)
    recorded: list[list[Any]] = []
    expected = 0
    for chunk in order:
        if chunk.first_input != expected:
            return False  # the run reads the order itself and says what is wrong with it
        for index, count in chunk.runs:
            expected += count
            stream = chunk.streams[index]
            if stream not in streams:
                continue
            if recorded and recorded[-1][0] == stream:
                recorded[-1][1] += count
            else:
                recorded.append([stream, count])
    return [(stream, count) for stream, count in recorded] == list(columns.runs())


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
    on_kernel: Callable[[Kernel], None] | None = None,
    on_columns: Callable[[InputColumns], None] | None = None,
) -> Kernel:
    """Feed the inputs of `source_session` (default: the parameters' input session) through a fresh kernel,
    re-stamped into `target_session`, in the order `session_inputs` gives (recorded, or merged by rule).
    With a market `core` the run is gated (`application.fast_run`): the kernel is called only at rows where
    a decider or venue could act, with the same derived events; without one every input goes through the
    kernel (the reference path). `on_input` sees every input either way; `on_kernel` gets the kernel before
    the first input (to read its market view). Returns the kernel, drained to the last input's time.

    Inputs held in a columnar file go to a core as its columns (`InputColumns`: no event per input) when the
    caller takes them that way (`on_columns`, called once, before the run, instead of `on_input`) and the
    file's row order is the run's order (`file_order_is_run_order`)."""
    source = source_session or parameters.input_session
    venues = venue_factory(parameters.config)

    def inputs() -> Iterator[EventBase]:
        for stream, event in session_input_events(log, source, parameters.streams, target_session):
            on_input(stream, event)
            yield event

    if core is None:
        kernel = Kernel(build_deciders(parameters.config), venues, on_derived)
        if on_kernel is not None:
            on_kernel(kernel)
        for event in inputs():
            kernel.feed(event)
        kernel.release_due(kernel.clock.now_ns())
        return kernel
    columns = None
    if on_columns is not None and isinstance(log, ColumnarMarketData):
        columns = log.input_columns(source, parameters.streams, target_session)
        if columns is not None and not file_order_is_run_order(log, source, parameters.streams, columns):
            columns = None
    if columns is not None:
        assert on_columns is not None
        on_columns(columns)
    market_core = core(inputs() if columns is None else columns, [venue for _, venue in sorted(venues.items())])
    kernel = Kernel(build_deciders(parameters.config), venues, on_derived, market=market_core.view)
    if on_kernel is not None:
        on_kernel(kernel)
    run_gated(kernel, market_core)
    return kernel
