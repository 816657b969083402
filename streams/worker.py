"""The per-partition kernels behind the Faust agent (`streams.app`), free of Faust so it is testable alone.

One `application.engine.Kernel` (deciders from `build_deciders(config)`, venues from the venue factory) per
(input session, md partition). Every market-data record is re-stamped into the target session (default
`{session}.kafka-{config_hash}`), fed, and every derived event is returned as a message for its topic,
with the stream `derived` and offset = its index in that kernel's derived sequence, i.e. exactly what the
embedded backtest writes. Derived ids are deterministic (`derive_envelope`), so re-processing an input
re-publishes byte-identical messages and downstream consumers drop them by event id.

State: in memory. When a partition's next offset is not the one expected (first message after assignment
or after a rebalance, or a restart from a committed offset), the partition's kernels are rebuilt by
replaying the partition from offset 0 (`rebuild`), and their outputs are published again (duplicates,
dropped downstream). Acceptable for sessions of ~10^5-10^6 events; a snapshot of kernel state in the
compacted checkpoints topic is the next step.

Limit: parity with the embedded engine needs all instruments of a session in one partition (the sample has
one instrument); instruments on different partitions run in separate kernels with separate portfolios.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from application.engine import Kernel
from application.run_config import RunConfig, build_deciders
from application.session_run import DERIVED_STREAM, RunParameters, VenueFactory, restamp
from domain.events import EventBase, encode
from streams.serialization import (
    CONTROL_END_OF_SESSION,
    H_CONTROL,
    H_SESSION,
    OutMessage,
    UndecodableMessage,
    dead_letter,
    event_message,
    from_message,
    header_map,
)
from streams.topics import DLQ

log = logging.getLogger(__name__)


def default_target(config: RunConfig) -> Callable[[str], str]:
    config_hash = RunParameters("", (), config).config_hash
    return lambda session: f"{session}.kafka-{config_hash}"


@dataclass
class _Run:
    kernel: Kernel
    target: str
    derived: int = 0
    pending: list[EventBase] = field(default_factory=list)


@dataclass(frozen=True)
class InMessage:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]


def in_message(topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None,
               headers: Any) -> InMessage:  # fmt: skip
    if isinstance(headers, dict):
        hmap = {k: (v if isinstance(v, bytes) else str(v).encode()) for k, v in headers.items()}
    else:
        hmap = header_map(list(headers or []))
    return InMessage(topic, partition, offset, key, value, hmap)


class PartitionKernels:
    def __init__(self, config: RunConfig, venue_factory: VenueFactory,
                 target_session: Callable[[str], str] | None = None) -> None:  # fmt: skip
        self.config = config
        self.venue_factory = venue_factory
        self.target_session = target_session or default_target(config)
        self._runs: dict[tuple[str, int], _Run] = {}
        self._next_offset: dict[int, int] = {}
        self.inputs = 0
        self.dead_letters = 0
        self.rebuilds = 0

    def expects(self, partition: int, offset: int) -> bool:
        """False when this message does not follow the last one processed: rebuild the partition first."""
        return self._next_offset.get(partition, 0) == offset

    def reset(self, partition: int) -> None:
        for key in [k for k in self._runs if k[1] == partition]:
            del self._runs[key]
        self._next_offset.pop(partition, None)
        self.rebuilds += 1

    def _run(self, session: str, partition: int) -> _Run:
        run = self._runs.get((session, partition))
        if run is None:
            holder: list[_Run] = []
            kernel = Kernel(build_deciders(self.config), self.venue_factory(self.config),
                            lambda event: holder[0].pending.append(event))  # fmt: skip
            run = _Run(kernel, self.target_session(session))
            holder.append(run)
            self._runs[(session, partition)] = run
        return run

    def process(self, msg: InMessage) -> list[OutMessage]:
        """Feed one md message; returns the messages to publish (derived events, or a dead letter)."""
        self._next_offset[msg.partition] = msg.offset + 1
        if msg.headers.get(H_CONTROL) == CONTROL_END_OF_SESSION:
            session = msg.headers.get(H_SESSION, b"").decode()
            run = self._runs.get((session, msg.partition))
            if run is None:
                return []
            run.kernel.release_due(run.kernel.clock.now_ns())
            return self._drain(run)
        try:
            stored, event = from_message(msg.value, msg.headers)
            session = msg.headers[H_SESSION].decode()
        except (UndecodableMessage, KeyError, UnicodeDecodeError) as exc:
            reason = exc.reason if isinstance(exc, UndecodableMessage) else f"missing header: {exc!r}"
            self.dead_letters += 1
            key, value, headers = dead_letter(msg.value, msg.key, list(msg.headers.items()), reason, msg.topic,
                                              msg.partition, msg.offset)  # fmt: skip
            return [OutMessage(DLQ, key or b"", value, headers)]
        run = self._run(session, msg.partition)
        run.kernel.feed(restamp(event, run.target, stored.record.stream))
        self.inputs += 1
        return self._drain(run)

    def process_all(self, messages: Iterable[InMessage]) -> list[OutMessage]:
        out: list[OutMessage] = []
        for msg in messages:
            out.extend(self.process(msg))
        return out

    def _drain(self, run: _Run) -> list[OutMessage]:
        out: list[OutMessage] = []
        for event in run.pending:
            out.append(event_message(run.target, DERIVED_STREAM, run.derived, event, encode(event),
                                     self.config.account))  # fmt: skip
            run.derived += 1
        run.pending.clear()
        return out
