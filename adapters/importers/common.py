"""What every importer shares: stamping envelopes, batching appends, refusing time going backwards, and
the bad-row report. An importer only parses its format and calls `ImportSink.add` / `ImportSink.bad`.

Conventions for every imported record:
- one stream per (venue, instrument): `md.{venue}.{instrument}`, so the depth, quotes and trades of one
  capture keep their recorded order; sources that split kinds into separate files (tabular) use
  `md.{venue}.{instrument}.{quotes|trades}` and leave the interleaving to the merge. Key: `{venue}.{instrument}`;
- `envelope.sequence` is the record's offset in its stream (continuing across files of the same session),
  and the event id is `input_event_id(session, stream, sequence)`: importing the same files again in the same
  order gives the same ids;
- times must not go backwards within a stream (the merge refuses unsorted streams); a row that would is
  reported as a bad row, like unparseable or invalid rows. A bad row never stops the import;
- every market-data stream starts with the InstrumentDefined of its (venue, instrument), from the instrument
  catalog (adapters.instruments), written just before the stream's first valid record and stamped with its
  time; a symbol the catalog cannot specify stops the import (UnknownInstrument), never guessed;
- the session's stream `session` starts with `SessionStarted(mode="import")`, written in the same
  transaction as the first batch, stamped with the first record's time (so a re-import is byte-identical).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from adapters.instruments.catalog import InstrumentCatalog, load_catalog
from application.ports import EventLog, LogRecord
from domain.events import Envelope, EventBase, SessionStarted, encode, input_event_id

SESSION_STREAM = "session"
ROW_ERRORS: tuple[type[Exception], ...] = (KeyError, IndexError, TypeError, ValueError, ArithmeticError)
"""What a malformed row raises while being parsed (ValidationError is a ValueError)."""


def market_stream(venue: str, instrument: str, part: str | None = None) -> str:
    """`md.{venue}.{instrument}`, or `md.{venue}.{instrument}.{part}` when one source file holds only one
    kind of data (tabular quotes and trades come in separate files, each sorted on its own)."""
    return f"md.{venue}.{instrument}" if part is None else f"md.{venue}.{instrument}.{part}"


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        parts = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:3]]
        return "invalid fields: " + "; ".join(parts)
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    return f"{type(exc).__name__}: {exc}"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def config_hash(config: Mapping[str, object]) -> str:
    return hashlib.sha256(
        json.dumps(config, sort_keys=True, separators=(",", ":"), default=str).encode()
    ).hexdigest()


@dataclass(frozen=True, slots=True)
class BadRow:
    file: str
    line: int
    """1-based line (text formats) or data row (Parquet) number."""
    reason: str


@dataclass
class ImportReport:
    session_id: str
    files: list[str] = field(default_factory=list)
    records: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    by_stream: Counter[str] = field(default_factory=Counter)
    bad_rows: list[BadRow] = field(default_factory=list)
    """The first `max_bad_rows_kept` bad rows; `bad_row_count` counts all of them."""
    bad_row_count: int = 0
    bad_by_reason: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def events_per_second(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        lines = [
            f"import {self.session_id}: {self.records} records from {len(self.files)} file(s)"
            f" in {self.seconds:.2f}s ({self.events_per_second:,.0f} events/s); bad rows: {self.bad_row_count}",
            "  by type: " + ", ".join(f"{k}={v}" for k, v in sorted(self.by_type.items())),
        ]
        for reason, n in self.bad_by_reason.most_common(5):
            lines.append(f"  bad: {n} x {reason}")
        for row in self.bad_rows[:5]:
            lines.append(f"  bad row {row.file}:{row.line}: {row.reason}")
        return "\n".join(lines)


class ImportSink:
    """Collects the events of one import session and appends them to the log in batches."""

    def __init__(
        self,
        log: EventLog,
        session_id: str,
        *,
        source: str,
        config: Mapping[str, object],
        code_version: Callable[[], str],
        batch_size: int = 5_000,
        max_bad_rows_kept: int = 100,
        echo: Callable[[str], None] | None = print,
        instruments: InstrumentCatalog | None = None,
    ) -> None:
        self.log = log
        self.instruments = instruments if instruments is not None else load_catalog()
        self.session_id = session_id
        self.source = source
        self.batch_size = batch_size
        self.max_bad_rows_kept = max_bad_rows_kept
        self.echo = echo
        self.report = ImportReport(session_id)
        self._config_hash = config_hash(config)
        self._code_version = code_version
        self._session_pending = log.end_offset(session_id, SESSION_STREAM) == 0
        self._next: dict[str, int] = {}
        self._last_time: dict[str, int] = {}
        self._batch: list[LogRecord] = []
        self._expected: list[tuple[str, int]] = []
        self._started = time.perf_counter()

    def add_file(self, path: Path) -> str:
        name = str(path)
        self.report.files.append(name)
        return name

    def bad(self, file: str, line: int, reason: str) -> None:
        report = self.report
        report.bad_row_count += 1
        report.bad_by_reason[reason.split(":")[0][:80]] += 1
        if len(report.bad_rows) < self.max_bad_rows_kept:
            report.bad_rows.append(BadRow(file, line, reason))

    def add(
        self,
        *,
        file: str,
        line: int,
        venue: str,
        instrument: str,
        time_ns: int,
        ingest_ns: int,
        build: Callable[[Envelope], EventBase],
        part: str | None = None,
    ) -> bool:
        """Stamp and buffer one event; `build` makes it from its envelope and may raise a row error.
        Returns False (and records a bad row) if the row is refused."""
        stream = market_stream(venue, instrument, part)
        seq = self._next.get(stream)
        if seq is None:
            seq = self._open_stream(stream)
        define = None
        if seq == 0:  # a new stream: its first record (sequence 0) is the instrument's definition
            define = self.instruments.definition(venue, instrument, file)
            seq = 1
        last = self._last_time[stream]
        if time_ns < last:
            self.bad(file, line, f"time goes backwards in {stream}: {time_ns} < previous {last}")
            return False
        try:
            envelope = Envelope(
                event_id=input_event_id(self.session_id, stream, seq),
                session_id=self.session_id,
                sequence=seq,
                event_time_ns=time_ns,
                ingest_time_ns=ingest_ns,
                source=self.source,
            )
            event = build(envelope)
        except ROW_ERRORS as exc:
            self.bad(file, line, describe_error(exc))
            return False
        self._next[stream] = seq + 1
        self._last_time[stream] = time_ns
        if self._session_pending:
            self._add_session_started(time_ns)
        if define is not None:
            definition = define(envelope.model_copy(update={"event_id": input_event_id(self.session_id, stream, 0),
                                                           "sequence": 0}))  # fmt: skip
            self._push(stream, f"{venue}.{instrument}", 0, definition)
        self._push(stream, f"{venue}.{instrument}", seq, event)
        return True

    def finish(self) -> ImportReport:
        if self._session_pending:
            self._add_session_started(0)
        self.flush()
        self.report.seconds = time.perf_counter() - self._started
        if self.echo is not None:
            self.echo(self.report.summary())
        return self.report

    def flush(self) -> None:
        if not self._batch:
            return
        offsets = self.log.append(self.session_id, self._batch)
        got = [(r.stream, o) for r, o in zip(self._batch, offsets, strict=True)]
        if got != self._expected:  # someone else appended to these streams meanwhile
            raise RuntimeError(
                f"log offsets {got[:3]}... differ from the sequences stamped {self._expected[:3]}..."
            )
        self._batch = []
        self._expected = []

    def _open_stream(self, stream: str) -> int:
        seq = self.log.end_offset(self.session_id, stream)
        self._next[stream] = seq
        last = 0
        if seq > 0:  # continue a stream from an earlier import: time must not go back across files either
            for stored in self.log.read(self.session_id, stream, seq - 1):
                last = stored.record.event_time_ns
        self._last_time[stream] = last
        return seq

    def _add_session_started(self, time_ns: int) -> None:
        self._session_pending = False
        envelope = Envelope(
            event_id=input_event_id(self.session_id, SESSION_STREAM, 0),
            session_id=self.session_id,
            sequence=0,
            event_time_ns=time_ns,
            ingest_time_ns=time_ns,
            source=self.source,
        )
        event = SessionStarted(
            envelope=envelope,
            mode="import",
            config_hash=self._config_hash,
            model_hash="",
            code_version=self._code_version(),
        )
        self._push(SESSION_STREAM, self.session_id, 0, event)

    def _push(self, stream: str, key: str, seq: int, event: EventBase) -> None:
        self._batch.append(LogRecord(stream, key, event.type, event.envelope.event_time_ns, encode(event)))
        self._expected.append((stream, seq))
        self.report.records += 1
        self.report.by_type[event.type] += 1
        self.report.by_stream[stream] += 1
        if len(self._batch) >= self.batch_size:
            self.flush()
