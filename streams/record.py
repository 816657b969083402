"""`cse record --from-file SESSION`: publish a session of the embedded SQLite log to the Kafka topics.

Market data is published in the session's recorded merge order, or for a session without one (an import)
in the engine's merge order (event time, stream priority, sequence): `session_inputs`, what the embedded
kernel consumes. So each instrument partition of `{prefix}.md` holds its venues'
records in exactly the order the embedded engine would feed them. Then the other streams (`session`,
`derived`) follow. After the market data, one control record per instrument (empty value, header
`cse-control: end-of-session`) tells the worker to release the venue events still due at the end.
The session's operator commands (stream `commands`) are part of that merge: each goes, at its place, into
every md partition (or the pinned one) and to the commands topic, marked sequenced (`streams.sequencer`).
With `pace`, market data is published at the recorded pace (`pace`=1.0 real time, 2.0 twice as fast).
Records keep their SQLite offsets, so publishing a session twice duplicates nothing a reader keeps.
`partition` pins the session's market data (and its control records) to one md partition instead of the
instrument key's (tests and benchmarks: several sessions of one instrument on different partitions).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from application.operator_commands import COMMANDS_STREAM
from application.ports import EventLog
from application.session_run import input_streams, session_inputs
from streams.kafka_event_log import KafkaEventLog
from streams.sequencer import publish_command
from streams.serialization import CONTROL_END_OF_SESSION, H_CONTROL, H_SESSION, to_message


@dataclass
class RecordResult:
    session_id: str
    inputs: int
    others: int
    seconds: float

    @property
    def rate(self) -> float:
        return (self.inputs + self.others) / max(self.seconds, 1e-9)


def record_session(
    source: EventLog,
    target: KafkaEventLog,
    session_id: str,
    pace: float | None = None,
    inputs_only: bool = False,
    limit: int | None = None,
    progress: Callable[[int], None] | None = None,
    partition: int | None = None,
) -> RecordResult:
    started = time.perf_counter()
    streams = input_streams(source, session_id)
    instruments: list[str] = []
    md_partitions: list[int] = []
    first_ns: int | None = None
    inputs = 0
    for stream, stored in session_inputs(source, session_id, streams):
        time_ns = stored.record.event_time_ns
        if limit is not None and inputs >= limit:
            break
        if pace:
            if first_ns is None:
                first_ns = time_ns
            due = started + (time_ns - first_ns) / 1e9 / pace
            delay = due - time.perf_counter()
            if delay > 0:
                target.producer.flush()
                time.sleep(delay)
        if stream == COMMANDS_STREAM:
            if not md_partitions:
                md_partitions = [partition] if partition is not None else list(
                    range(target.producer.partitions_for(target.topics.md)))  # fmt: skip
            publish_command(target.producer, target.topics.md, target.topics.name("commands"),
                            to_message(session_id, stored, target.account), md_partitions)  # fmt: skip
        elif partition is None:
            target.publish(session_id, (stored,), flush=False)
        else:
            msg = to_message(session_id, stored, target.account)
            target.producer.produce(target.topics.md, msg.value, msg.key, msg.headers, partition=partition)
        instrument = stream.split(".")[2] if stream != COMMANDS_STREAM else None
        if instrument is not None and instrument not in instruments:
            instruments.append(instrument)
        inputs += 1
        if progress is not None:
            progress(1)
    for instrument in instruments:
        target.producer.produce(target.topics.md, b"", instrument.encode(),
                                [(H_CONTROL, CONTROL_END_OF_SESSION), (H_SESSION, session_id.encode())],
                                partition=partition)  # fmt: skip
    others = 0
    if not inputs_only:
        for stream in source.streams(session_id):
            if stream not in streams:
                others += target.publish(session_id, source.read(session_id, stream), flush=False)
    target.producer.flush()
    return RecordResult(session_id, inputs, others, time.perf_counter() - started)
