"""Recording from the local exchange in tests: run the recorder in-process until the exchange has played
everything and the recorder has gone quiet, then read back what it recorded."""

from __future__ import annotations

import asyncio
import gzip
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from adapters.exchanges.record_log import RecordLog
from adapters.exchanges.recorder import Backoff, ExchangeRecorder, RecordSummary, record_exchanges
from application.ports import EventLog
from domain.book import SyncedBook
from domain.events import BookDelta, BookResyncNeeded, BookSnapshot, EventBase, decode
from tests.local_exchange import LocalExchange

QUIET_S = 0.5
TEST_BACKOFF = Backoff(initial_s=0.05, max_s=0.5)


def record(exchange: LocalExchange, venues: Sequence[str], log: EventLog, session: str, *,
           symbols: Sequence[str] = ("BTC/USDT",), timeout_s: float = 90.0) -> tuple[RecordSummary, list[ExchangeRecorder]]:  # fmt: skip
    """Record `venues` until every venue's playback is finished and no message came for `QUIET_S`."""
    out = RecordLog(log, session, code_version="test", config={"test": True})
    recorders = [ExchangeRecorder(v, symbols, out, api_base=exchange.api_base(v), rate_limit=False,
                                  backoff=TEST_BACKOFF, timeout_ms=3_000) for v in venues]  # fmt: skip

    async def run() -> RecordSummary:
        stop = asyncio.Event()

        async def until_done() -> None:
            deadline = time.monotonic() + timeout_s
            seen, quiet_since = -1, time.monotonic()
            while time.monotonic() < deadline:
                await asyncio.sleep(0.05)
                count = sum(r.messages for r in recorders)
                if count != seen:
                    seen, quiet_since = count, time.monotonic()
                played = all(exchange.venue(v).feed.finished_flag for v in venues)
                if played and time.monotonic() - quiet_since > QUIET_S:
                    break
            stop.set()

        summary, _ = await asyncio.gather(record_exchanges(recorders, out, stop), until_done())
        return summary

    return asyncio.run(run()), recorders


def events(log: EventLog, session: str, stream: str) -> list[EventBase]:
    return [decode(stored.record.payload) for stored in log.read(session, stream)]


def replayed_book(recorded: Sequence[EventBase], venue: str, instrument: str) -> SyncedBook:
    """The book a replay builds from the recorded events alone (a recorded resync puts it out of sync)."""
    book = SyncedBook(venue, instrument)
    for event in recorded:
        if isinstance(event, BookResyncNeeded):
            book.mark_out_of_sync()
        elif isinstance(event, BookSnapshot | BookDelta):
            book.apply(event)
    return book


def capture_head(source: Path, lines: int, target: Path) -> Path:
    """The first `lines` lines of a capture, as a capture of its own (same folder name: the importer reads the
    venue from it)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(source, "rt") as src, gzip.open(target, "wt") as dst:
        for n, line in enumerate(src):
            if n >= lines:
                break
            dst.write(line)
    return target


def payloads(recorded: Sequence[EventBase]) -> list[dict[str, Any]]:
    return [event.model_dump(mode="json", exclude={"envelope"}) for event in recorded]
