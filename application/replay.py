"""Replay: re-run a session's recorded inputs through the deciders and prove the derived events identical.

For a backtest, paper or live session (`application/live_run.py`; a live one's inputs include what the
exchange answered) the inputs are re-run in their recorded order (the `merge` stream) and the recorded
`derived` stream is compared event by event (canonical bytes) with what the kernel derives now, and one digest is computed over each side. On the first difference both
events are returned side by side. A session without derived events (an import) is verified by decoding and
re-encoding every record: the stored bytes must already be canonical.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from application.fast_run import CoreFactory
from application.live_run import recorded_venues
from application.ports import ColumnarMarketData, EventLog, InputColumns
from application.session_run import (
    DERIVED_STREAM,
    SESSION_STREAM,
    RunParameters,
    VenueFactory,
    recorded_merge,
    run_inputs,
)
from domain.events import Digest, EventBase, SessionEnded, SessionStarted, decode, encode


@dataclass
class Divergence:
    index: int
    recorded: str
    replayed: str


@dataclass
class ReplayReport:
    session_id: str
    mode: str
    events_checked: int
    recorded_digest: str
    replayed_digest: str
    divergences: int = 0
    first: Divergence | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.divergences == 0 and self.recorded_digest == self.replayed_digest


def session_markers(log: EventLog, session_id: str) -> tuple[SessionStarted | None, SessionEnded | None]:
    started: SessionStarted | None = None
    ended: SessionEnded | None = None
    for stored in log.read(session_id, SESSION_STREAM):
        event = decode(stored.record.payload)
        if isinstance(event, SessionStarted) and started is None:
            started = event
        elif isinstance(event, SessionEnded):
            ended = event
    return started, ended


def replay_session(
    log: EventLog,
    session_id: str,
    venue_factory: VenueFactory,
    code_version: str,
    progress: Callable[[int], None] | None = None,
    core: CoreFactory | None = None,
) -> ReplayReport:
    if session_id not in log.sessions():
        raise ValueError(f"no session {session_id!r} in the log")
    started, ended = session_markers(log, session_id)
    named = RunParameters.from_json(started.parameters).market_data if started and started.mode == "backtest" else None
    check_market_data(log, session_id, named)
    if started is None or started.mode not in ("backtest", "live", "paper"):
        return _verify_canonical(log, session_id, progress)
    if started.mode == "live":  # the exchange's answers are recorded inputs: no venue acts in the replay
        venue_factory = recorded_venues
    report = ReplayReport(session_id, started.mode, 0, "", "")
    if started.code_version != code_version:
        report.notes.append(f"recorded with code {started.code_version}, replayed with {code_version}")
    parameters = RunParameters.from_json(started.parameters)
    recorded = _recorded(log, session_id)
    recorded_digest, replayed_digest = Digest(), Digest()

    def on_input(stream: str, event: EventBase) -> None:
        if progress is not None:
            progress(1)

    def on_derived(event: EventBase) -> None:
        mine = encode(event)
        theirs = next(recorded, b"")
        if theirs:
            recorded_digest.add(theirs)
        replayed_digest.add(mine)
        if mine != theirs:
            report.divergences += 1
            if report.first is None:
                report.first = Divergence(report.events_checked, theirs.decode(), mine.decode())
        report.events_checked += 1

    # The backtest session holds its own copy of the inputs and the order it consumed them in: the replay
    # needs nothing else.
    if recorded_merge(log, session_id) is None:
        report.notes.append("no recorded merge order (a session of an earlier version): inputs merged by "
                            "(time, stream priority, sequence) as the backtest did")  # fmt: skip
    def on_columns(columns: InputColumns) -> None:
        if progress is not None:
            progress(len(columns))

    run_inputs(log, parameters, session_id, venue_factory, on_input, on_derived, source_session=session_id,
               core=core, on_columns=on_columns)  # fmt: skip
    for extra in recorded:  # recorded events the replay did not produce are divergences too
        recorded_digest.add(extra)
        report.divergences += 1
        if report.first is None:
            report.first = Divergence(report.events_checked, extra.decode(), "")
    report.recorded_digest = recorded_digest.hexdigest()
    report.replayed_digest = replayed_digest.hexdigest()
    if ended is not None and ended.digest != report.recorded_digest:
        report.notes.append(f"SessionEnded digest {ended.digest} differs from the recorded stream's digest")
        report.divergences += 1
    return report


def check_market_data(log: EventLog, session_id: str, named: tuple[str, str] | None) -> None:
    """A replay runs on the very data the session recorded: the file the session names (`named`, a
    backtest's (sha256, codec)) must be the one the log serves, and its content must still hash to its
    name (re-hashed in full, never a remembered check). Raises ValueError naming the file and both hashes."""
    if not isinstance(log, ColumnarMarketData):
        return  # a log without columnar files (Kafka) serves the market data as records, not by name
    ref = log.market_data(session_id)
    if named is not None and (ref is None or (ref.sha256, ref.codec) != named):
        serves = "none" if ref is None else f"{ref.sha256} ({ref.codec})"
        raise ValueError(f"session {session_id!r} names market data {named[0]} ({named[1]}), but the log serves "
                         f"{serves}; refusing to replay on other data")  # fmt: skip
    if ref is not None:
        log.verify_market_data(session_id)


def _recorded(log: EventLog, session_id: str) -> Iterator[bytes]:
    for stored in log.read(session_id, DERIVED_STREAM):
        yield stored.record.payload


def _verify_canonical(log: EventLog, session_id: str, progress: Callable[[int], None] | None) -> ReplayReport:
    recorded, replayed = Digest(), Digest()
    report = ReplayReport(session_id, "import", 0, "", "")
    for stream in log.streams(session_id):
        for stored in log.read(session_id, stream):
            again = encode(decode(stored.record.payload))
            recorded.add(stored.record.payload)
            replayed.add(again)
            if again != stored.record.payload:
                report.divergences += 1
                if report.first is None:
                    report.first = Divergence(report.events_checked, stored.record.payload.decode(), again.decode())
            report.events_checked += 1
            if progress is not None:
                progress(1)
    report.recorded_digest, report.replayed_digest = recorded.hexdigest(), replayed.hexdigest()
    report.notes.append("no derived events recorded: verified that every stored event is canonical")
    return report
