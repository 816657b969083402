"""Runs a session's recorded inputs through the kernel: the shared core of backtest and replay.

Inputs are read stream by stream from the log and merged by (event time, stream priority, sequence). When
the run writes into another session (a backtest over an imported session), every input is re-stamped into
that session with an id derived from (session, stream, sequence), so the backtest is a session of its own
whose causation chains resolve inside it, and a replay of it needs nothing else.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from application.engine import Kernel
from application.merge import Merged, merge_pairs
from application.ports import EventLog, StoredRecord, Venue
from application.run_config import RunConfig, build_deciders
from domain.events import EventBase, decode, input_event_id

SESSION_STREAM = "session"
DERIVED_STREAM = "derived"
MARKET_DATA_PREFIX = "md."

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


def merged_inputs(log: EventLog, session_id: str, streams: tuple[str, ...]) -> Iterator[Merged[tuple[int, StoredRecord]]]:
    """The session's input records in engine order; `streams` order is the tie-break priority."""
    sources = {name: _timed(log, session_id, name) for name in streams}
    return merge_pairs(sources, streams)


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
) -> Kernel:
    """Feed the merged inputs of `source_session` (default: the parameters' input session) through a fresh
    kernel, re-stamped into `target_session`. Returns the kernel, drained to the last input's time."""
    kernel = Kernel(build_deciders(parameters.config), venue_factory(parameters.config), on_derived)
    source = source_session or parameters.input_session
    for merged in merged_inputs(log, source, parameters.streams):
        stored = merged.item[1]
        event = restamp(decode(stored.record.payload), target_session, merged.stream)
        on_input(merged.stream, event)
        kernel.feed(event)
    kernel.release_due(kernel.clock.now_ns())
    return kernel
