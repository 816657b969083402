"""`cse inspect`: what a recorded session holds and whether its books are true, per stream.

For every stream: the time covered and message counts and rates by event type, on the receive clock (the
envelope's event time of recorded market data). For market-data streams, additionally, every book is rebuilt
with `SyncedBook` exactly as the deciders rebuild it: snapshots, applied / buffered / stale deltas, each loss
of sync with its reason (sequence gaps, crossed books, invalid levels) and the resyncs; the book-vs-ticker
agreement (`application/ticker_agreement.py`); and, per message type, the distribution of receive time minus
the exchange's own time. The two clocks are only ever compared within one message: the recorder's clock and
the exchange's can differ by more than a second, which the report says when it happens.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from application.ports import EventLog
from application.ticker_agreement import Agreement, TickerAgreement
from domain.book import OutOfSyncCause, SyncedBook, SyncStatus
from domain.events import BookDelta, BookSnapshot, QuoteTick, TradeTick, decode

MARKET_DATA_PREFIX = "md."
MAX_LISTED = 20
"""Out-of-sync events listed one by one per book (all are counted)."""
CLOCK_NOTE_NS = 1_000_000_000


class UnknownSession(ValueError):
    pass


@dataclass
class SyncEvent:
    receive_time_ns: int
    cause: str
    reason: str


@dataclass
class BookReport:
    venue: str
    instrument: str
    snapshots: int = 0
    deltas: int = 0
    applied: int = 0
    """Deltas applied, live or replayed from the buffer after a snapshot."""
    buffered: int = 0
    stale: int = 0
    gaps: int = 0
    crossed: int = 0
    invalid: int = 0
    resyncs: int = 0
    """Snapshots that brought the book back into sync after it had lost it."""
    in_sync_at_end: bool = False
    buffer_overflows: int = 0
    out_of_sync: list[SyncEvent] = field(default_factory=list)
    crossed_tickers: int = 0
    """Tickers whose own bid >= ask (the exchange's data, reported, never used for comparison specially)."""
    tickers: Agreement = field(default_factory=Agreement)


@dataclass
class Latency:
    """Receive time minus exchange time of one message type, in nanoseconds."""

    count: int
    min_ns: int
    p50_ns: int
    p90_ns: int
    p99_ns: int
    max_ns: int


@dataclass
class StreamReport:
    stream: str
    first_time_ns: int | None = None
    last_time_ns: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    books: list[BookReport] = field(default_factory=list)
    latency: dict[str, Latency] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        if self.first_time_ns is None or self.last_time_ns is None:
            return 0.0
        return (self.last_time_ns - self.first_time_ns) / 1e9

    def rates(self) -> dict[str, float]:
        """Messages per second of each type over the time covered (0 when it covers no time)."""
        seconds = self.seconds
        return {kind: (n / seconds if seconds > 0 else 0.0) for kind, n in sorted(self.counts.items())}


@dataclass
class SessionReport:
    session_id: str
    streams: list[StreamReport]


def inspect_session(log: EventLog, session_id: str) -> SessionReport:
    if session_id not in log.sessions():
        raise UnknownSession(f"no session {session_id!r}")
    return SessionReport(session_id, [_inspect_stream(log, session_id, s) for s in log.streams(session_id)])


def _inspect_stream(log: EventLog, session_id: str, stream: str) -> StreamReport:
    report = StreamReport(stream)
    counts = report.counts
    market = stream.startswith(MARKET_DATA_PREFIX)
    books: dict[tuple[str, str], _Book] = {}
    lags: dict[str, list[int]] = {}
    for stored in log.read(session_id, stream):
        record = stored.record
        counts[record.event_type] = counts.get(record.event_type, 0) + 1
        if report.first_time_ns is None:
            report.first_time_ns = record.event_time_ns
        report.last_time_ns = record.event_time_ns
        if not market:
            continue
        event = decode(record.payload)
        if isinstance(event, BookDelta | BookSnapshot | QuoteTick):
            _on_book_event(books, event)
        if isinstance(event, BookDelta | QuoteTick | TradeTick) and event.exchange_time_ns is not None:
            lags.setdefault(record.event_type, []).append(
                event.envelope.event_time_ns - event.exchange_time_ns
            )
    for key in sorted(books):
        book, book_report, pairing = books[key]
        book_report.in_sync_at_end = book.in_sync
        book_report.buffer_overflows = book.buffer_overflows
        pairing.finish()
        book_report.tickers = pairing.result
        report.books.append(book_report)
    report.latency = {kind: _distribution(values) for kind, values in sorted(lags.items())}
    report.notes = _notes(report)
    return report


_Book = tuple[SyncedBook, BookReport, TickerAgreement]


def _on_book_event(books: dict[tuple[str, str], _Book], event: BookDelta | BookSnapshot | QuoteTick) -> None:
    key = (event.venue, event.instrument)
    entry = books.get(key)
    if entry is None:
        venue, instrument = key
        entry = books[key] = (SyncedBook(venue, instrument), BookReport(venue, instrument), TickerAgreement())
    book, report, pairing = entry
    if isinstance(event, QuoteTick):
        if event.bid_price >= event.ask_price:
            report.crossed_tickers += 1
        pairing.on_ticker(event)
        return
    was_synced_before = book.has_snapshot and not book.in_sync
    applied_before = book.deltas_applied
    outcome = book.apply(event, pairing.on_applied)
    report.applied += book.deltas_applied - applied_before
    if isinstance(event, BookSnapshot):
        report.snapshots += 1
        if outcome.status is SyncStatus.APPLIED and was_synced_before:
            report.resyncs += 1
    else:
        report.deltas += 1
    if outcome.status is SyncStatus.BUFFERED:
        report.buffered += 1
    elif outcome.status is SyncStatus.STALE:
        report.stale += 1
    elif outcome.status is SyncStatus.OUT_OF_SYNC:
        cause = outcome.cause or OutOfSyncCause.GAP
        if cause is OutOfSyncCause.GAP:
            report.gaps += 1
        elif cause is OutOfSyncCause.CROSSED:
            report.crossed += 1
        else:
            report.invalid += 1
        if len(report.out_of_sync) < MAX_LISTED:
            report.out_of_sync.append(SyncEvent(event.envelope.event_time_ns, cause.value, outcome.reason))


def _distribution(values: list[int]) -> Latency:
    values.sort()
    last = len(values) - 1

    def at(q: float) -> int:
        return values[round(q * last)]

    return Latency(len(values), values[0], at(0.5), at(0.9), at(0.99), values[-1])


def _notes(report: StreamReport) -> list[str]:
    notes = []
    apart = {kind: lag.p50_ns for kind, lag in report.latency.items() if abs(lag.p50_ns) > CLOCK_NOTE_NS}
    if apart:
        medians = ", ".join(f"{kind} {ns / 1e6:.1f} ms" for kind, ns in apart.items())
        notes.append(
            f"the recorder's clock and the exchange's differ by more than a second (median receive - exchange: "
            f"{medians}); they are compared only within one message, never across messages or streams"
        )
    for book in report.books:
        if book.tickers.tickers and not book.tickers.compared:
            notes.append(
                f"{book.venue} {book.instrument}: no ticker update id matched an applied book update id"
            )
        if book.buffer_overflows:
            notes.append(
                f"{book.venue} {book.instrument}: {book.buffer_overflows} buffered deltas dropped (oldest)"
            )
    return notes
