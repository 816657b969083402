"""The per-partition kernels behind the Faust agent (`streams.app`), free of Faust so it is testable alone.

One run per (input session, md partition): an `application.engine.Kernel` (deciders from
`build_deciders(config)`, venues from the venue factory) behind a market core (`core`, the composition root's
`market_core`: the compiled one by default), as the embedded backtest runs. Every market-data record is
re-stamped into the target session (default `{session}.kafka-{config_hash}`) and put in its run's
`RowInbox`; `process_batch` then lets the core run a session's consecutive inputs at once and call the
kernel in only at wakes (`application.fast_run.run_queued`), and every derived event is returned as a
message for its topic, with the stream `derived` and offset = its index in that kernel's derived sequence,
i.e. exactly what the embedded backtest writes, for any batch size. Derived ids are deterministic
(`derive_envelope`), so re-processing an input re-publishes byte-identical messages and downstream consumers
drop them by event id. With instruments, each input the kernel is called for runs in a span continuing its
message's trace; inputs the core runs alone derive nothing and get none.

State: in memory, plus `snapshot(partition)`: the partition's kernels, their market cores (the Rust core
pickles through its own byte snapshot) and its next input offset as one blob, which the Faust app keeps in a
table whose changelog is the compacted checkpoints topic. When a
partition's next offset is not the one expected (first message after assignment or a rebalance, or a
restart from a committed offset), the app restores the latest snapshot and re-runs only the inputs after
it, or, with no usable snapshot (none yet, or written by other code or config), re-runs the partition from
offset 0. Re-run inputs publish their outputs again (byte-identical, dropped downstream by event id);
inputs before the restored offset are skipped.

Operator commands (`cse command ... --sink kafka`) reach the kernels through the md topic: the sequencer
(`streams.app`) copies each one from the commands topic into EVERY md partition, and `cse record` writes a
session's commands there in its merge order. A partition is thus the recorded merge of market data and
commands: the kernels feed a command where it sits, so a re-run or a replay of the partition sees it at the
same place. A copy whose (session, commands offset) a run has already fed is skipped (at-least-once
forwarding); one for a session with no kernel yet on the partition is held and fed just before that
session's first market-data record there, so a partition that never carries the session's data creates no
kernel for it.

Limit: parity with the embedded engine needs all instruments of a session in one partition (the sample has
one instrument); instruments on different partitions run in separate kernels with separate portfolios.
"""

from __future__ import annotations

import logging
import pickle
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from application.engine import Kernel
from application.fast_run import CoreFactory, RowInbox, run_queued
from application.operator_commands import COMMANDS_STREAM
from application.ports import MarketCore
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
    with_traceparent,
)
from streams.topics import DLQ

log = logging.getLogger(__name__)


def default_target(config: RunConfig) -> Callable[[str], str]:
    config_hash = RunParameters("", (), config).config_hash
    return lambda session: f"{session}.kafka-{config_hash}"


SNAPSHOT_MAGIC = b"cse-kernels/1\n"


class Instruments(Protocol):
    """What the worker reports while it runs (metrics and traces; `adapters/observability/worker.py`)."""

    def consume(self, headers: Mapping[str, bytes]) -> AbstractContextManager[Any]:
        """The span of one input, continuing the trace of its message (a no-op when tracing is off)."""
        ...

    def traceparent(self) -> str | None:
        """`traceparent` for the outputs of the input in hand; None keeps the deterministic one."""
        ...

    def derived(self, event: EventBase) -> None: ...

    def processed(self, partition: int, seconds: float, inputs: int, derived: int, dead_letters: int) -> None:
        """`inputs` fed together took `seconds` and derived `derived` events (or a message went to the DLQ)."""
        ...

    def recovered(self, kind: str) -> None:
        """A partition's kernels were restored from a snapshot (`restore`) or re-run from 0 (`rebuild`)."""
        ...

    def lag(self, topic: str, partition: int, messages: int) -> None: ...


@dataclass
class _Run:
    kernel: Kernel
    target: str
    core: MarketCore | None = None
    """The run's market core (None: every input through the kernel, the reference path); it reads `inbox`."""
    inbox: RowInbox = field(default_factory=RowInbox)
    """Inputs put in and not yet run."""
    derived: int = 0
    pending: list[EventBase] = field(default_factory=list)
    commands_fed: set[int] = field(default_factory=set)
    """Offsets (in the session's commands stream) of the commands fed; membership tests only."""

    def __post_init__(self) -> None:
        self.kernel.attach(self.pending.append)


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
                 target_session: Callable[[str], str] | None = None, code_version: str = "",
                 instruments: Instruments | None = None, core: CoreFactory | None = None) -> None:  # fmt: skip
        """`core`: the market core each run's inputs go through (`application.fast_run.CoreFactory`; the
        composition root's `market_core`), or None for the reference path (every input through the kernel)."""
        self.config = config
        self.instruments = instruments
        self.code_version = code_version
        self.venue_factory = venue_factory
        self.target_session = target_session or default_target(config)
        self.core = core
        self.core_name = "the kernel alone" if core is None else f"{core.__module__}.{core.__qualname__}"
        """What the runs' inputs go through (kept in snapshots: a snapshot of another core is not restored)."""
        self._runs: dict[tuple[str, int], _Run] = {}
        self._next_offset: dict[int, int] = {}
        self._held: dict[tuple[str, int], list[tuple[int, EventBase]]] = {}
        """Commands for (session, partition) waiting for the session's first market data there."""
        self._queued: tuple[_Run, int] | None = None
        """The run (and its partition) whose inbox holds inputs not yet run: at most one (`process_batch`)."""
        self._headers: dict[int, Mapping[str, bytes]] = {}
        """With instruments: the message headers of each queued input, by id (its span continues their trace)."""
        self.inputs = 0
        self.dead_letters = 0
        self.rebuilds = 0
        self.restores = 0

    def expects(self, partition: int, offset: int) -> bool:
        """False when this message does not follow the last one processed: restore or rebuild first."""
        return self._next_offset.get(partition, 0) == offset

    def next_offset(self, partition: int) -> int:
        return self._next_offset.get(partition, 0)

    def snapshot(self, partition: int) -> bytes:
        """The partition's kernels, market cores and next input offset; taken between batches (nothing
        queued or pending). One pickle: a core shared by a kernel's view and its venues stays shared."""
        runs = [(key[0], run.kernel, run.target, run.core, run.inbox, run.derived, sorted(run.commands_fed))
                for key, run in sorted(self._runs.items()) if key[1] == partition]  # fmt: skip
        held = [(key[0], items) for key, items in sorted(self._held.items(), key=lambda kv: kv[0])
                if key[1] == partition]  # fmt: skip
        body = {"code_version": self.code_version, "config_hash": self._config_hash(), "core": self.core_name,
                "next_offset": self.next_offset(partition), "runs": runs, "held": held}  # fmt: skip
        return SNAPSHOT_MAGIC + zlib.compress(pickle.dumps(body, protocol=pickle.HIGHEST_PROTOCOL), 1)

    def restore(self, partition: int, blob: bytes) -> int | None:
        """Replace the partition's kernels by a snapshot; returns its next input offset, or None (nothing
        changed) when the blob is not a snapshot of this code, config and core. Snapshots come from our own
        checkpoints topic (pickle: never restore one from an untrusted source)."""
        if not blob.startswith(SNAPSHOT_MAGIC):
            return None
        try:
            body = pickle.loads(zlib.decompress(blob[len(SNAPSHOT_MAGIC):]))
        except Exception as exc:  # any unpickling failure means "not usable": fall back to a full re-run
            log.warning("partition %d: unreadable kernel snapshot (%s)", partition, exc)
            return None
        mine = (self.code_version, self._config_hash(), self.core_name)
        theirs = (body.get("code_version"), body.get("config_hash"), body.get("core"))
        if theirs != mine:
            log.info("partition %d: snapshot of code %s / config %s / core %s ignored", partition, *theirs)
            return None
        self._drop(partition)
        self.restores += 1
        for session, kernel, target, core, inbox, derived, fed in body["runs"]:
            self._runs[(session, partition)] = _Run(kernel, target, core, inbox, derived, commands_fed=set(fed))
        for session, items in body["held"]:
            self._held[(session, partition)] = list(items)
        self._next_offset[partition] = body["next_offset"]
        return int(body["next_offset"])

    def _config_hash(self) -> str:
        return RunParameters("", (), self.config).config_hash

    def reset(self, partition: int) -> None:
        """Forget the partition's kernels before re-running it from offset 0."""
        self._drop(partition)
        self.rebuilds += 1

    def _drop(self, partition: int) -> None:
        for key in [k for k in self._runs if k[1] == partition]:
            del self._runs[key]
        for key in [k for k in self._held if k[1] == partition]:
            del self._held[key]
        self._next_offset.pop(partition, None)

    def _run(self, session: str, partition: int) -> _Run:
        run = self._runs.get((session, partition))
        if run is None:
            venues = self.venue_factory(self.config)
            pending: list[EventBase] = []
            inbox = RowInbox()
            core = None if self.core is None else self.core(inbox, [venue for _, venue in sorted(venues.items())])
            kernel = Kernel(build_deciders(self.config), venues, pending.append,
                            market=None if core is None else core.view)  # fmt: skip
            run = _Run(kernel, self.target_session(session), core, inbox, pending=pending)
            self._runs[(session, partition)] = run
        return run

    def process(self, msg: InMessage) -> list[OutMessage]:
        """Feed one md message; returns the messages to publish (derived events, or a dead letter)."""
        return self.process_batch([msg])

    def process_all(self, messages: Iterable[InMessage]) -> list[OutMessage]:
        return self.process_batch(list(messages))

    def process_batch(self, messages: Sequence[InMessage]) -> list[OutMessage]:
        """Feed a batch of md messages (each partition's in offset order); returns the messages to publish,
        in the order a message-by-message run publishes them. Consecutive inputs of one (session, partition)
        go to its market core together: the core runs them and calls the kernel in only at wakes, and the
        derived events are the same for any batch size (a core run is one run over all its rows)."""
        out: list[OutMessage] = []
        for msg in messages:
            self._next_offset[msg.partition] = msg.offset + 1
            if msg.headers.get(H_CONTROL) == CONTROL_END_OF_SESSION:
                out += self._run_queued()
                out += self._end_of_session(msg)
                continue
            try:
                stored, event = from_message(msg.value, msg.headers)
                session = msg.headers[H_SESSION].decode()
            except (UndecodableMessage, KeyError, UnicodeDecodeError) as exc:
                out += self._run_queued()
                out.append(self._dead_letter(msg, exc))
                continue
            if stored.record.stream == COMMANDS_STREAM:
                run = self._runs.get((session, msg.partition))
                if run is None:
                    held = self._held.setdefault((session, msg.partition), [])
                    if all(o != stored.offset for o, _ in held):
                        held.append((stored.offset, event))
                    continue
                out += self._queue(run, msg.partition)
                self._queue_command(run, stored.offset, event, msg.headers)
                continue
            run = self._runs.get((session, msg.partition))
            if run is None:
                run = self._run(session, msg.partition)
                out += self._queue(run, msg.partition)
                for offset, command in self._held.pop((session, msg.partition), []):
                    self._queue_command(run, offset, command)
            else:
                out += self._queue(run, msg.partition)
            self._put(run, restamp(event, run.target, stored.record.stream), msg.headers)
        out += self._run_queued()
        return out

    def _queue(self, run: _Run, partition: int) -> list[OutMessage]:
        """Make `run` the one whose inbox takes the next inputs: another's queued inputs run first."""
        out = self._run_queued() if self._queued is not None and self._queued[0] is not run else []
        self._queued = (run, partition)
        return out

    def _put(self, run: _Run, event: EventBase, headers: Mapping[str, bytes] | None) -> None:
        """Queue an input; `headers`: its message's (None for a command held since before the session's
        first market data on the partition: it runs in no span)."""
        run.inbox.put(event)
        if self.instruments is not None and headers is not None:
            self._headers[id(event)] = headers
        self.inputs += 1

    def _queue_command(self, run: _Run, offset: int, command: EventBase,
                       headers: Mapping[str, bytes] | None = None) -> None:  # fmt: skip
        if offset in run.commands_fed:
            return  # a second copy of a command already fed (the sequencer forwards at least once)
        run.commands_fed.add(offset)
        self._put(run, restamp(command, run.target, COMMANDS_STREAM), headers)

    def _run_queued(self) -> list[OutMessage]:
        """Run the queued run's inputs: through its core (the kernel at wakes only) or, on the reference path,
        each through the kernel. Each fed input's outputs follow it, in its span when tracing is on."""
        if self._queued is None:
            return []
        run, partition = self._queued
        self._queued = None
        inputs = len(run.inbox)
        out: list[OutMessage] = []
        instruments = self.instruments
        started = time.perf_counter()

        def feed(event: EventBase) -> None:
            headers = self._headers.get(id(event)) if instruments is not None else None
            if headers is None or instruments is None:
                run.kernel.feed(event)
                out.extend(self._drain(run))
                return
            with instruments.consume(headers):
                run.kernel.feed(event)
                drained = self._drain(run)
                trace = instruments.traceparent()  # the outputs' parent is this input's span (tracing on, sampled)
                out.extend(drained if trace is None else [with_traceparent(o, trace) for o in drained])

        if run.core is None:
            for event in run.inbox:
                feed(event)
        else:
            run_queued(run.kernel, run.core, feed)
        self._headers.clear()
        if instruments is not None:
            instruments.processed(partition, time.perf_counter() - started, inputs, len(out), 0)
        return out

    def _end_of_session(self, msg: InMessage) -> list[OutMessage]:
        session = msg.headers.get(H_SESSION, b"").decode()
        run = self._runs.get((session, msg.partition))
        if run is None:
            return []
        run.kernel.release_due(run.kernel.clock.now_ns())
        return self._drain(run)

    def _dead_letter(self, msg: InMessage, exc: Exception) -> OutMessage:
        reason = exc.reason if isinstance(exc, UndecodableMessage) else f"missing header: {exc!r}"
        self.dead_letters += 1
        if self.instruments is not None:
            self.instruments.processed(msg.partition, 0.0, 0, 0, 1)
        key, value, headers = dead_letter(msg.value, msg.key, list(msg.headers.items()), reason, msg.topic,
                                          msg.partition, msg.offset)  # fmt: skip
        return OutMessage(DLQ, key or b"", value, headers)

    def _drain(self, run: _Run) -> list[OutMessage]:
        out: list[OutMessage] = []
        for event in run.pending:
            if self.instruments is not None:
                self.instruments.derived(event)
            out.append(event_message(run.target, DERIVED_STREAM, run.derived, event, encode(event),
                                     self.config.account))  # fmt: skip
            run.derived += 1
        run.pending.clear()
        return out
