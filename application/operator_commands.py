"""Operator commands (kill switch, limits, strategy start/stop, order cancel) enter a session as inputs.

They are appended to the session's `commands` stream, which a run merges with market data like any other
input stream; the merge order is recorded, so a replay sees each command at the same place. The CLI
(`cse command ...`), the GraphQL mutations and the Kafka commands topic all go through this one function.

Refused (`CommandRefused`, nothing written): a session the log does not hold, a session that is a finished
run (its replay must see exactly the inputs it ran on), and a command timed before the session's last
command (the stream is merged by event time, so it must stay sorted).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from pydantic import ValidationError

from application.ports import EventLog, LogRecord
from domain.events import Envelope, EventBase, SessionEnded, UpdateRiskLimits, decode, encode, input_event_id
from domain.values import RiskLimits

COMMANDS_STREAM = "commands"
OPERATOR_SOURCE = "operator"
_SESSION_STREAM = "session"
_ENDED: str = SessionEnded.model_fields["type"].default
_LIMITS: str = UpdateRiskLimits.model_fields["type"].default

CommandBuilder = Callable[[Envelope], EventBase]
"""Makes the command from the envelope it will carry (its id and sequence come from its place in the log)."""


class CommandRefused(ValueError):
    """The command cannot go into this session; the message says why."""


def append_operator_command(log: EventLog, session_id: str, time_ns: int, build: CommandBuilder) -> EventBase:
    """Append one operator command at `time_ns` to `session_id`'s commands stream and return it as stored.

    The id is derived from (session, stream, sequence), like every recorded input, so it is known to the
    caller (a GraphQL response carries it) and the same command cannot be stored twice under two ids."""
    _check_target(log, session_id, time_ns)
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


def _check_target(log: EventLog, session_id: str, time_ns: int) -> None:
    markers = [stored.record.event_type for stored in log.read(session_id, _SESSION_STREAM)]
    # The session's markers are a small stream; the list of all sessions is only asked for when it has none
    # (on Kafka that is a scan of every topic, too slow for an operator's kill switch).
    if not markers and session_id not in log.sessions():
        raise CommandRefused(f"no session {session_id!r} in the log")
    if _ENDED in markers:
        raise CommandRefused(f"session {session_id!r} is a finished run; send commands to the session a run "
                             "reads (its input session) or to a live one")  # fmt: skip
    last = log.end_offset(session_id, COMMANDS_STREAM)
    if last:
        previous = next(iter(log.read(session_id, COMMANDS_STREAM, last - 1))).record.event_time_ns
        if time_ns < previous:
            raise CommandRefused(f"event time {time_ns} is before the session's last command ({previous}); "
                                 "commands are merged by event time and must be appended in that order")  # fmt: skip


def latest_limits(log: EventLog, session_id: str, account: str | None = None) -> RiskLimits | None:
    """The limits in force for `account` (None: the global ones) after the session's commands: those of the
    last UpdateRiskLimits that applies to it (a global one applies to every account), or None when none does."""
    limits: RiskLimits | None = None
    for stored in log.read(session_id, COMMANDS_STREAM):
        if stored.record.event_type == _LIMITS:  # other commands are skipped without decoding
            event = decode(stored.record.payload)
            if isinstance(event, UpdateRiskLimits) and event.account in (None, account):
                limits = event.limits
    return limits


def check_limit_keys(assignments: Mapping[str, str]) -> None:
    """ValueError naming the keys that are not risk limits, with the allowed ones."""
    allowed = sorted(RiskLimits.model_fields)
    unknown = sorted(set(assignments) - set(allowed))
    if unknown:
        raise ValueError(f"unknown limit(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")


def updated_limits(base: RiskLimits, assignments: Mapping[str, str]) -> RiskLimits:
    """`base` with the given fields replaced, validated as a whole. ValueError names a bad key (listing the
    allowed ones) or a bad value (with the reason)."""
    check_limit_keys(assignments)
    try:
        return RiskLimits.model_validate({**base.model_dump(), **assignments})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}={assignments.get(str(e['loc'][0]), '')!r}: "
                             f"{e['msg']}" for e in exc.errors())  # fmt: skip
        raise ValueError(f"invalid limit value: {problems}") from None
