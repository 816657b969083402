"""`cse inspect SESSION [--json]`: per stream, what a session holds and whether its books match the exchange."""

from __future__ import annotations

import argparse
import dataclasses
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from adapters.entrypoints.commands import UserError, open_log
from adapters.settings import Settings
from application.inspect_session import (
    BookReport,
    SessionReport,
    StreamReport,
    UnknownSession,
    inspect_session,
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "inspect",
        help="per stream: time covered, counts and rates, sync gaps and resyncs, book-vs-bookTicker agreement, "
        "receive-minus-exchange time",
    )
    p.add_argument("session")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=inspect)


def inspect(args: argparse.Namespace) -> int:
    settings: Settings = args.settings
    with open_log(settings) as log:
        try:
            report = inspect_session(log, args.session)
        except UnknownSession as exc:
            raise UserError(f"{exc} in {settings.event_log_path}") from exc
    if args.json:
        print(json.dumps(to_json(report), indent=2))
    else:
        print("\n".join(_text(report)))
    return 0


def to_json(report: SessionReport) -> dict[str, Any]:
    def plain(value: Any) -> Any:
        if isinstance(value, Decimal):
            return str(value)
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        return value

    streams = []
    for stream in report.streams:
        data = plain(dataclasses.asdict(stream))
        data["seconds"] = stream.seconds
        data["rates_per_second"] = stream.rates()
        streams.append(data)
    return {"session_id": report.session_id, "streams": streams}


def _utc(ns: int | None) -> str:
    if ns is None:
        return "-"
    stamp = datetime.fromtimestamp(ns // 1_000_000_000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
    return f"{stamp}.{ns % 1_000_000_000 // 1_000_000:03d}"


def _ms(ns: int) -> str:
    return f"{ns / 1e6:.1f}"


def _text(report: SessionReport) -> list[str]:
    lines = [f"session {report.session_id}: {len(report.streams)} stream(s)"]
    for stream in report.streams:
        lines.extend(_stream_text(stream))
    return lines


def _stream_text(stream: StreamReport) -> list[str]:
    lines = [
        f"\n== {stream.stream}: {sum(stream.counts.values())} records over {stream.seconds:.3f} s, "
        f"{_utc(stream.first_time_ns)} -> {_utc(stream.last_time_ns)} UTC (receive clock)"
    ]
    rates = stream.rates()
    for kind, count in sorted(stream.counts.items()):
        lines.append(f"  {kind:28} {count:>9}  {rates[kind]:>10.1f}/s")
    for book in stream.books:
        lines.extend(_book_text(book))
    if stream.latency:
        lines.append(
            "  receive - exchange time (ms)        count       min       p50       p90       p99       max"
        )
        for kind, lag in stream.latency.items():
            lines.append(
                f"    {kind:28} {lag.count:>9} {_ms(lag.min_ns):>9} {_ms(lag.p50_ns):>9} {_ms(lag.p90_ns):>9} "
                f"{_ms(lag.p99_ns):>9} {_ms(lag.max_ns):>9}"
            )
    lines.extend(f"  note: {note}" for note in stream.notes)
    return lines


def _book_text(book: BookReport) -> list[str]:
    t = book.tickers
    share = f"{100 * t.agreed / t.compared:.2f}%" if t.compared else "n/a"
    lines = [
        f"  book {book.venue} {book.instrument}: {book.snapshots} snapshot(s), {book.deltas} deltas "
        f"({book.applied} applied, {book.buffered} buffered, {book.stale} stale); "
        f"{'in sync' if book.in_sync_at_end else 'OUT OF SYNC'} at the end",
        f"    out of sync: {book.gaps} gap(s), {book.crossed} crossed, {book.invalid} invalid; "
        f"{book.resyncs} resync(s); {book.crossed_tickers} crossed ticker(s)",
    ]
    lines.extend(f"      {_utc(e.receive_time_ns)}: {e.cause}: {e.reason}" for e in book.out_of_sync)
    lines.append(
        f"    book vs bookTicker: {t.tickers} tickers, {t.compared} compared, {t.agreed} agreed ({share}), "
        f"{t.not_comparable} not comparable (id inside a depth batch or never reached)"
    )
    d = t.first_disagreement
    if d is not None:
        lines.append(
            f"    first disagreement at update id {d.update_id} (received {_utc(d.receive_time_ns)}):"
        )
        lines.append(f"      ticker bid {d.ticker[0]} x {d.ticker[1]}  ask {d.ticker[2]} x {d.ticker[3]}")
        lines.append(f"      book   bid {d.book[0]} x {d.book[1]}  ask {d.book[2]} x {d.book[3]}")
    return lines
