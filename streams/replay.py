"""`cse replay --source kafka --session S --verify`: the embedded replay (`application.replay.replay_session`,
same kernel, same deciders) reading its records from the Kafka topics through `KafkaEventLog`.

A backtest session holds re-stamped copies of its inputs under the same stream names; the embedded replay
reads the inputs from the *input* session. On Kafka, when the input session was not published but the
session's own copies were (`cse record --from-file S` publishes S only), reads of the input session's
streams are served from S's copies: re-stamping an event already in S is the identity, so the kernel sees
the same events either way.

A worker run (`cse worker`: target sessions `{session}.kafka-{config hash}`) has no recorded parameters on
Kafka; `rerun_md` re-runs the md topic, partition by partition and in offset order (the recorded merge of
market data and operator commands), through fresh kernels of the given config, and returns what they
derive per target session: a worker was exact when that equals what it published (`streams.digest`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from application.fast_run import CoreFactory
from application.ports import LogRecord, StoredRecord
from application.replay import Divergence, ReplayReport, replay_session, session_markers
from application.run_config import RunConfig
from application.session_run import RunParameters, VenueFactory
from domain.events import Digest
from streams.kafka_event_log import KafkaEventLog
from streams.kafka_io import scan
from streams.serialization import H_SESSION, header_map
from streams.topics import DLQ, Topics
from streams.worker import PartitionKernels, in_message


class _InputsFromSession:
    """An EventLog view: reads of `alias` are answered from `session`."""

    def __init__(self, log: KafkaEventLog, alias: str, session: str) -> None:
        self._log, self._alias, self._session = log, alias, session

    def _map(self, session_id: str) -> str:
        return self._session if session_id == self._alias else session_id

    def append(self, session_id: str, records: Sequence[LogRecord]) -> list[int]:
        raise PermissionError("replay does not write")

    def read(self, session_id: str, stream: str, from_offset: int = 0) -> Iterator[StoredRecord]:
        return self._log.read(self._map(session_id), stream, from_offset)

    def streams(self, session_id: str) -> list[str]:
        return self._log.streams(self._map(session_id))

    def sessions(self) -> list[str]:
        return self._log.sessions()

    def end_offset(self, session_id: str, stream: str) -> int:
        return self._log.end_offset(self._map(session_id), stream)


def replay_from_kafka(log: KafkaEventLog, session_id: str, venue_factory: VenueFactory, code_version: str,
                      progress: Callable[[int], None] | None = None,
                      core: CoreFactory | None = None) -> ReplayReport:  # fmt: skip
    started, _ = session_markers(log, session_id)
    if started is not None and started.mode == "backtest":
        parameters = RunParameters.from_json(started.parameters)
        source = parameters.input_session
        if source != session_id and log.end_offset(source, parameters.streams[0]) == 0:
            view = _InputsFromSession(log, source, session_id)
            return replay_session(view, session_id, venue_factory, code_version, progress, core)
    return replay_session(log, session_id, venue_factory, code_version, progress, core)


def rerun_md(
    bootstrap: str, topics: Topics, config: RunConfig, venue_factory: VenueFactory, core: CoreFactory | None = None
) -> dict[str, list[bytes]]:
    """The derived events (canonical bytes, in each kernel's order) of re-running the whole md topic (each
    partition as one batch through the market cores, or every input through the kernel without `core`)."""
    by_partition: dict[int, list[Any]] = {}
    for msg in scan(bootstrap, [topics.md]):
        by_partition.setdefault(msg.partition(), []).append(msg)
    kernels = PartitionKernels(config, venue_factory, core=core)
    derived: dict[str, list[bytes]] = {}
    for partition in sorted(by_partition):
        ordered = sorted(by_partition[partition], key=lambda m: m.offset())
        batch = [in_message(m.topic(), partition, m.offset(), m.key(), m.value(), m.headers()) for m in ordered]
        for out in kernels.process_batch(batch):
            if out.topic_suffix == DLQ:
                continue  # an undecodable input is set aside, not derived
            session = header_map(out.headers).get(H_SESSION, b"").decode()
            derived.setdefault(session, []).append(out.value)
    return derived


def verify_worker_run(log: KafkaEventLog, session_id: str, config: RunConfig, venue_factory: VenueFactory,
                      core: CoreFactory | None = None) -> ReplayReport:  # fmt: skip
    """Replay of a `cse worker` run (target session `session_id`): re-run the md topic with `config` and
    compare, event by event, with what the workers published (first copy per offset of stream `derived`)."""
    replayed = rerun_md(log.bootstrap, log.topics, config, venue_factory, core).get(session_id, [])
    published = [stored.record.payload for stored in log.read(session_id, "derived")]
    report = ReplayReport(session_id, "worker", 0, "", "")
    recorded_digest, replayed_digest = Digest(), Digest()
    for index in range(max(len(published), len(replayed))):
        theirs = published[index] if index < len(published) else b""
        mine = replayed[index] if index < len(replayed) else b""
        if theirs:
            recorded_digest.add(theirs)
        if mine:
            replayed_digest.add(mine)
        if theirs != mine:
            report.divergences += 1
            if report.first is None:
                report.first = Divergence(index, theirs.decode(), mine.decode())
        report.events_checked += 1
    report.recorded_digest, report.replayed_digest = recorded_digest.hexdigest(), replayed_digest.hexdigest()
    if not published:
        report.divergences += 1
        report.notes.append(
            f"no derived events of {session_id!r} on {log.topics.prefix}.*: not a worker run?"
        )
    report.notes.append("worker run: the md topic (market data and sequenced operator commands, in partition "
                        "order) re-run with the given --config")  # fmt: skip
    return report
