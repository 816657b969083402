"""`cse replay --source kafka --session S --verify`: the embedded replay (`application.replay.replay_session`,
same kernel, same deciders) reading its records from the Kafka topics through `KafkaEventLog`.

A backtest session holds re-stamped copies of its inputs under the same stream names; the embedded replay
reads the inputs from the *input* session. On Kafka, when the input session was not published but the
session's own copies were (`cse record --from-file S` publishes S only), reads of the input session's
streams are served from S's copies: re-stamping an event already in S is the identity, so the kernel sees
the same events either way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from adapters.kafka_event_log import KafkaEventLog
from application.ports import LogRecord, StoredRecord
from application.replay import ReplayReport, replay_session, session_markers
from application.session_run import RunParameters, VenueFactory


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
                      progress: Callable[[int], None] | None = None) -> ReplayReport:  # fmt: skip
    started, _ = session_markers(log, session_id)
    if started is not None and started.mode == "backtest":
        parameters = RunParameters.from_json(started.parameters)
        source = parameters.input_session
        if source != session_id and log.end_offset(source, parameters.streams[0]) == 0:
            view = _InputsFromSession(log, source, session_id)
            return replay_session(view, session_id, venue_factory, code_version, progress)
    return replay_session(log, session_id, venue_factory, code_version, progress)
