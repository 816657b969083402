"""A command sent without an explicit event time is timed now, by the sender's clock. For a recorded import
that is after all its data, where it would change nothing in a run over it: the usual slip is a forgotten
time. The CLI (`--at`) and the GraphQL mutations (`atNs`) both refuse it here."""

from __future__ import annotations

from application.operator_commands import CommandRefused
from application.ports import EventLog
from application.session_run import market_data_streams
from domain.events import SessionStarted, decode


def refuse_untimed_after_recorded_data(log: EventLog, session: str, now_ns: int, how_to_time: str) -> None:
    """CommandRefused when `session` is a recorded import whose market data all ends before `now_ns`;
    `how_to_time` tells the sender how to give the time (`pass --at TIME`)."""
    markers = [decode(s.record.payload) for s in log.read(session, "session")]
    if not any(isinstance(m, SessionStarted) and m.mode == "import" for m in markers):
        return
    ends = [stored.record.event_time_ns for stream in market_data_streams(log, session)
            for stored in log.read(session, stream, max(log.end_offset(session, stream) - 1, 0))]  # fmt: skip
    if ends and max(ends) < now_ns:
        raise CommandRefused(f"session {session!r} is a recorded import whose market data ends at {max(ends)} "
                             f"ns: a command timed now would come after all of it; {how_to_time}")  # fmt: skip
