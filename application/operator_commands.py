"""Operator commands (kill switch, limits, strategy start/stop, order cancel) enter a session as inputs.

They are appended to the session's `commands` stream, which a run merges with market data like any other
input stream; the merge order is recorded, so a replay sees each command at the same place. The CLI
(`cse command ...`), the GraphQL mutations and the Kafka commands topic all go through this one function.
"""

from __future__ import annotations

from collections.abc import Callable

from application.ports import EventLog, LogRecord
from domain.events import Envelope, EventBase, encode, input_event_id

COMMANDS_STREAM = "commands"
OPERATOR_SOURCE = "operator"

CommandBuilder = Callable[[Envelope], EventBase]
"""Makes the command from the envelope it will carry (its id and sequence come from its place in the log)."""


def append_operator_command(log: EventLog, session_id: str, time_ns: int, build: CommandBuilder) -> EventBase:
    """Append one operator command at `time_ns` to `session_id`'s commands stream and return it as stored.

    The id is derived from (session, stream, sequence), like every recorded input, so it is known to the
    caller (a GraphQL response carries it) and the same command cannot be stored twice under two ids."""
    sequence = log.end_offset(session_id, COMMANDS_STREAM)
    envelope = Envelope(
        event_id=input_event_id(session_id, COMMANDS_STREAM, sequence),
        session_id=session_id,
        sequence=sequence,
        event_time_ns=time_ns,
        ingest_time_ns=time_ns,
        source=OPERATOR_SOURCE,
    )
    command = build(envelope)
    log.append(session_id, [LogRecord(COMMANDS_STREAM, session_id, command.type, time_ns, encode(command))])
    return command
