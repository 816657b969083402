"""What every importer shares: one atomic, idempotent import per call, stamping envelopes, refusing rows
(counted by reason) and files (one clear error naming the file). An importer only parses its format, inside
`ImportSink.run`, calling `ImportSink.add` / `ImportSink.refuse` per row and raising `FileError` for a file.

Atomic: an import is one transaction of the event log (`SqliteEventLog.transaction`). It is committed only
when every file was read to its end; any file-level error (truncated or unreadable file, missing columns,
a file with no valid row, a file overlapping the data already in its stream...) rolls all of it back: the
session is exactly as before, and the command exits non-zero.

Idempotent: every import ends with a `FilesImported` event (stream `session`) listing its files by sha256,
committed with the records. A file whose sha256 is listed already is refused before anything is read.

Conventions for every imported record:
- one stream per (venue, instrument): `md.{venue}.{instrument}`, so the depth, quotes and trades of one
  capture keep their recorded order; sources that split kinds into separate files (tabular) use
  `md.{venue}.{instrument}.{quotes|trades}` and leave the interleaving to the merge. Key: `{venue}.{instrument}`;
- `envelope.sequence` is the record's offset in its stream (continuing across files and imports), and the
  event id is `input_event_id(session, stream, sequence)`;
- times never go backwards within a stream. Inside a file, a row that would is refused (counted); a file
  whose first row in a stream is older than what the stream already holds (files out of order, overlapping,
  or of another venue under the same `--venue`) is refused whole;
- a stream holds the data of one feed: a file whose content says it is another feed (a USD-M capture into
  a spot stream) is refused whole;
- the session's stream `session` starts with `SessionStarted(mode="import")`, stamped with the first
  record's time, then one `FilesImported` per import.
- every market-data stream starts with the InstrumentDefined of its (venue, instrument), from the instrument
  catalog (adapters.instruments), written just before the stream's first valid record and stamped with its
  time; a symbol the catalog cannot specify stops the import (UnknownInstrument, nothing stored), never guessed;
"""

from __future__ import annotations

import hashlib
import json
import time
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import pyarrow as pa
from pydantic import ValidationError

from adapters.columnar.amounts import AmountOverflow
from adapters.columnar.codec import RowBuilder
from adapters.columnar.store import file_sha256
from adapters.importers.validation import refusal
from adapters.instruments.catalog import InstrumentCatalog, UnknownInstrument, load_catalog
from application.ports import EventLog, LogRecord
from domain.events import (
    Envelope,
    EventBase,
    FilesImported,
    ImportedFile,
    InstrumentDefined,
    SessionStarted,
    decode,
    encode,
    input_event_id,
)

SESSION_STREAM = "session"
ROW_ERRORS: tuple[type[Exception], ...] = (KeyError, IndexError, TypeError, ValueError, ArithmeticError)
"""What a malformed row raises while being parsed (ValidationError is a ValueError)."""
READ_ERRORS: tuple[type[Exception], ...] = (OSError, EOFError, zlib.error, zipfile.BadZipFile, ValueError)
"""What reading a file raises when the file itself is bad (truncated, not of the format, unreadable); any
of these escaping a format's parser becomes a `FileError` naming the file."""


class ImportLog(EventLog, Protocol):
    """An event log that can group appends into one transaction (an import is all or nothing)."""

    def transaction(self) -> AbstractContextManager[None]: ...


@runtime_checkable
class ColumnarLog(Protocol):
    """An import log that keeps market data in columnar files (`SqliteEventLog` with a catalog)."""

    catalog: object | None

    def sqlite_market_streams(self, session_id: str, prefix: str = ...) -> list[str]: ...

    def store_market_data(self, session_id: str, rows: RowBuilder) -> str: ...


class ImportRefused(Exception):
    """The import stored nothing; the message says why in one line."""


class FileError(ImportRefused):
    """A file cannot be imported: the message names it (and the line where that applies)."""

    def __init__(self, file: str | Path, problem: str, line: int | None = None) -> None:
        where = f"{file}, line {line}" if line else str(file)
        super().__init__(f"{where}: {problem}")


class RowError(ValueError):
    """A row refused by a format's own rule, with the reason it is counted under."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def market_stream(venue: str, instrument: str, part: str | None = None) -> str:
    """`md.{venue}.{instrument}`, or `md.{venue}.{instrument}.{part}` when one source file holds only one
    kind of data (tabular quotes and trades come in separate files, each sorted on its own)."""
    return f"md.{venue}.{instrument}" if part is None else f"md.{venue}.{instrument}.{part}"


def describe_error(exc: BaseException) -> tuple[str, str]:
    """(reason, detail) of a row error."""
    if isinstance(exc, RowError):
        return exc.reason, exc.detail
    if isinstance(exc, ValidationError):
        parts = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:3]]
        return "invalid fields", "; ".join(parts)
    if isinstance(exc, KeyError):
        return "missing field", repr(exc.args[0])
    return "invalid value", f"{type(exc).__name__}: {exc}"


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def utc(time_ns: int) -> str:
    """A time for messages: ISO 8601 UTC with nanoseconds."""
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    return f"{datetime.fromtimestamp(seconds, UTC):%Y-%m-%dT%H:%M:%S}.{nanos:09d}Z"


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
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.file}, line {self.line}: {self.reason}" + (f": {self.detail}" if self.detail else "")


@dataclass
class FileReport:
    name: str
    sha256: str
    feed: str = ""
    records: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    """Refused rows by reason."""
    by_stream: Counter[str] = field(default_factory=Counter)

    @property
    def refused_rows(self) -> int:
        return sum(self.refused.values())

    def summary(self) -> str:
        feed = f" ({self.feed})" if self.feed else ""
        text = f"  {self.name}{feed}: {self.records} records, {self.refused_rows} rows refused"
        return text + "".join(f"; {n} x {reason}" for reason, n in _by_count(self.refused))


@dataclass
class ImportReport:
    session_id: str
    files: list[FileReport] = field(default_factory=list)
    records: int = 0
    """Market-data records stored (the session markers are not counted)."""
    by_type: Counter[str] = field(default_factory=Counter)
    by_stream: Counter[str] = field(default_factory=Counter)
    new_streams: list[str] = field(default_factory=list)
    """Streams this import started (the session had no record in them before)."""
    bad_rows: list[BadRow] = field(default_factory=list)
    """The first `max_bad_rows_kept` refused rows; `bad_row_count` counts all of them."""
    bad_row_count: int = 0
    bad_by_reason: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def events_per_second(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        lines = [
            f"import {self.session_id}: {self.records} records from {len(self.files)} file(s)"
            f" in {self.seconds:.2f}s ({self.events_per_second:,.0f} events/s); rows refused: {self.bad_row_count}",
            "  by type: " + ", ".join(f"{k}={v}" for k, v in sorted(self.by_type.items())),
        ]
        lines += [f.summary() for f in self.files]
        lines += [f"  refused: {n} x {reason}" for reason, n in _by_count(self.bad_by_reason)]
        lines += [f"  refused row {row}" for row in self.bad_rows[:5]]
        return "\n".join(lines)


def _by_count(counts: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


@dataclass
class _Stream:
    """One stream as this import sees it: where it continues and what it already holds."""

    next_seq: int
    last_time_ns: int
    holder: str
    """Where its last record came from: a file of this import, or "an earlier import"."""
    feed: str


Parser = Callable[["ImportSink", Path], None]


@dataclass(frozen=True)
class MessageBlock:
    """A file's messages as a compiled parser gives them (`ImportSink.add_block`): per message (arrays of one
    length, in file order) its stream (index into `instruments`, numbered in the order of first appearance),
    times, line, event type (index into `types`) and number of rows; `columns` the rows' columns of the
    columnar schema but stream, sequence, source, venue and instrument."""

    venue: str
    instruments: list[str]
    stream: np.ndarray
    time_ns: np.ndarray
    ingest_ns: np.ndarray
    line: np.ndarray
    event_type: np.ndarray
    types: Sequence[str]
    rows: np.ndarray
    columns: Mapping[str, pa.Array]


class ImportSink:
    """One import into one session: `run` reads the files through a format's parser and commits them all at
    once; the parser calls `begin_file` (optional, to declare what the file's content says it is), `add` for
    each row that makes an event and `refuse` for each row that does not."""

    def __init__(
        self,
        log: ImportLog,
        session_id: str,
        *,
        source: str,
        config: Mapping[str, object],  # what it was asked (importer, venue, mapping); run() adds the files
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
        self._config = config
        self._config_hash = ""
        self._code_version = code_version
        self._session_pending = False
        self._streams: dict[str, _Stream] = {}
        self._recorded_feeds: dict[str, tuple[str, str]] = {}
        self._file: FileReport | None = None
        self._line = 0
        self._last_time_ns = 0
        self._batch: list[LogRecord] = []
        self._expected: list[tuple[str, int]] = []
        self._rows: RowBuilder | None = None
        """Market-data rows for the session's columnar file; None: market data goes to SQLite records."""
        self._started = time.perf_counter()

    # -- the import ----------------------------------------------------------------------------------------

    def run(self, paths: Sequence[Path], parse: Parser) -> ImportReport:
        """Import `paths` in the order given, all or nothing. Raises `ImportRefused` (nothing stored)."""
        hashes = [self._sha256(p) for p in paths]
        for i, sha in enumerate(hashes):
            if sha in hashes[:i]:
                raise FileError(paths[i], f"same content as {paths[hashes.index(sha)]} (sha256 {sha[:12]}...); "
                                          "give each file once")  # fmt: skip
        files = [{"name": p.name, "sha256": sha} for p, sha in zip(paths, hashes, strict=True)]
        self._config_hash = config_hash({**self._config, "files": files})
        with self.log.transaction():
            known = self._load_session()
            for path, sha in zip(paths, hashes, strict=True):
                if sha in known:
                    raise FileError(path, f"already imported into session {self.session_id!r} (as {known[sha]},"
                                          f" sha256 {sha[:12]}...); importing it again would duplicate its records")  # fmt: skip
            for path, sha in zip(paths, hashes, strict=True):
                self._read_file(path, sha, parse)
            self._push_files_imported()
            self.flush()
            if self._rows is not None and len(self._rows):
                assert isinstance(self.log, ColumnarLog)
                self.log.store_market_data(self.session_id, self._rows)
        self.report.seconds = time.perf_counter() - self._started
        if self.echo is not None:
            self.echo(self.report.summary())
        return self.report

    def _read_file(self, path: Path, sha: str, parse: Parser) -> None:
        self._file = FileReport(str(path), sha)
        self._line = 0
        self.report.files.append(self._file)
        try:
            parse(self, path)
        except (FileError, UnknownInstrument):
            raise  # already one line naming the file
        except READ_ERRORS as exc:
            where = f" after line {self._line}" if self._line else ""
            raise FileError(path, f"cannot read{where}: {type(exc).__name__}: {one_line(exc)}") from exc
        if self._file.records == 0 and not self._file.refused:
            raise FileError(path, "no data rows (empty file)")
        if self._file.records == 0:
            reasons = ", ".join(f"{n} x {r}" for r, n in _by_count(self._file.refused))
            raise FileError(path, f"no valid row: all {self._file.refused_rows} refused ({reasons})")

    @property
    def columnar(self) -> bool:
        """Whether market data goes to the session's columnar file (else SQLite records); known in `run`."""
        return self._rows is not None

    @staticmethod
    def _sha256(path: Path) -> str:
        try:
            return file_sha256(path)
        except OSError as exc:
            raise FileError(path, f"cannot read: {exc.strerror or one_line(exc)}") from exc

    def _load_session(self) -> dict[str, str]:
        """Read what the session already holds: its files (sha256 -> name) and each stream's feed."""
        known: dict[str, str] = {}
        self._session_pending = self.log.end_offset(self.session_id, SESSION_STREAM) == 0
        # Columnar unless the session already holds market data as SQLite records (an earlier format's
        # import: it stays in that format until `cse migrate`).
        log = self.log
        if isinstance(log, ColumnarLog) and log.catalog is not None and not log.sqlite_market_streams(self.session_id):
            self._rows = RowBuilder()
        for stored in self.log.read(self.session_id, SESSION_STREAM):
            event = decode(stored.record.payload)
            if isinstance(event, SessionStarted) and event.mode != "import":
                raise ImportRefused(f"session {self.session_id!r} is a {event.mode} session, not an import; "
                                    "import into a new session id")  # fmt: skip
            if isinstance(event, FilesImported):
                for f in event.files:
                    known[f.sha256] = f.name
                    for stream in f.streams:
                        self._recorded_feeds[stream] = (f.feed, f.name)
        return known

    # -- what a parser calls -------------------------------------------------------------------------------

    def begin_file(self, feed: str) -> None:
        """Declare what the file being read is, from its content (`binance-spot`, an exchange column...)."""
        assert self._file is not None, "called outside run()"
        self._file.feed = feed

    def refuse(self, line: int, reason: str, detail: str = "") -> None:
        """Count a row that makes no event, by reason."""
        assert self._file is not None, "called outside run()"
        self._line = line
        self._file.refused[reason] += 1
        report = self.report
        report.bad_row_count += 1
        report.bad_by_reason[reason] += 1
        if len(report.bad_rows) < self.max_bad_rows_kept:
            report.bad_rows.append(BadRow(self._file.name, line, reason, detail))

    def add(
        self,
        *,
        line: int,
        venue: str,
        instrument: str,
        time_ns: int,
        ingest_ns: int,
        build: Callable[[Envelope], EventBase],
        part: str | None = None,
    ) -> bool:
        """Stamp and buffer one event; `build` makes it from its envelope and may raise a row error.
        Returns False (and counts the row as refused) if the row is refused."""
        file = self._file
        assert file is not None, "called outside run()"
        self._line = line
        stream = market_stream(venue, instrument, part)
        state = self._streams.get(stream) or self._open_stream(stream)
        first_of_file = stream not in file.by_stream
        if time_ns < state.last_time_ns and not first_of_file:
            self.refuse(
                line, "time goes backwards", f"in {stream}: {utc(time_ns)} < {utc(state.last_time_ns)}"
            )
            return False
        # A stream new to the session opens with its instrument's definition (sequence 0); an instrument the
        # catalog cannot specify refuses the whole import here, before anything of it is committed.
        define = self._definition(stream, state, venue, instrument)
        sequence = state.next_seq + (define is not None)
        try:
            envelope = self._envelope(stream, sequence, time_ns, ingest_ns)
            event = build(envelope)
        except ROW_ERRORS as exc:
            self.refuse(line, *describe_error(exc))
            return False
        refused = refusal(event)
        if refused is not None:
            self.refuse(line, *refused)
            return False
        if first_of_file:
            self._check_file_fits(stream, state, time_ns, line)
        if self._session_pending:
            self._push_session_started(time_ns)
        self._count(stream, state, time_ns, 1)
        if define is not None:
            self._stream_begins(stream, define, envelope)
        self._push(stream, f"{venue}.{instrument}", event)
        return True

    def add_block(self, block: MessageBlock) -> None:
        """Add a file's messages at once: what `add` does for each, for messages a compiled parser proved
        valid (none would be refused: each stream's times in order within the file, every row passing
        `validation.refusal`). Call it once per file, in place of `add`; a stream's first message gets the
        checks and markers `add` gives it, in the order of the file."""
        file = self._file
        assert file is not None, "called outside run()"
        streams = [market_stream(block.venue, instrument) for instrument in block.instruments]
        sequence = np.empty(len(block.stream), dtype=np.int64)
        # Streams in the order of their first message (as the block numbers them).
        for k, stream in enumerate(streams):
            at = np.flatnonzero(block.stream == k)
            i = int(at[0])
            time_ns, line = int(block.time_ns[i]), int(block.line[i])
            self._line = line
            state = self._streams.get(stream) or self._open_stream(stream)
            define = self._definition(stream, state, block.venue, block.instruments[k])
            envelope = self._envelope(stream, state.next_seq + (define is not None), time_ns,
                                      int(block.ingest_ns[i]))  # fmt: skip
            self._check_file_fits(stream, state, time_ns, line)
            if self._session_pending:
                self._push_session_started(time_ns)
            if define is not None:
                self._stream_begins(stream, define, envelope)
            sequence[at] = np.arange(state.next_seq, state.next_seq + len(at))
            self._count(stream, state, int(block.time_ns[at[-1]]), len(at))
            self.report.by_stream[stream] += len(at)
            state.next_seq += len(at)
        self._line = int(block.line[-1])
        for type_, n in zip(block.types, np.bincount(block.event_type, minlength=len(block.types)).tolist(),
                            strict=True):  # fmt: skip
            if n:
                self.report.by_type[type_] += n
        assert self._rows is not None, "add_block needs a columnar log"
        self._rows.add_columns(
            [(name, block.venue, instrument) for name, instrument in zip(streams, block.instruments, strict=True)],
            np.repeat(block.stream, block.rows), np.repeat(sequence, block.rows), self.source, block.columns,
        )  # fmt: skip

    def _definition(
        self, stream: str, state: _Stream, venue: str, instrument: str
    ) -> Callable[[Envelope], InstrumentDefined] | None:
        """A stream new to the session opens with its instrument's definition (sequence 0); an instrument the
        catalog cannot specify refuses the whole import here, before anything of it is committed."""
        assert self._file is not None
        if state.next_seq:
            return None
        return self.instruments.definition(venue, instrument, self._file.name)

    def _envelope(self, stream: str, sequence: int, time_ns: int, ingest_ns: int) -> Envelope:
        return Envelope(
            event_id=input_event_id(self.session_id, stream, sequence),
            session_id=self.session_id,
            sequence=sequence,
            event_time_ns=time_ns,
            ingest_time_ns=ingest_ns,
            source=self.source,
        )

    def _count(self, stream: str, state: _Stream, last_time_ns: int, records: int) -> None:
        """`records` valid records of the file in `stream`, the last at `last_time_ns`."""
        file = self._file
        assert file is not None
        state.last_time_ns = last_time_ns
        state.holder = file.name
        state.feed = state.feed or file.feed
        self._last_time_ns = max(self._last_time_ns, last_time_ns)
        file.records += records
        file.by_stream[stream] += records
        self.report.records += records

    # -- streams -------------------------------------------------------------------------------------------

    def _open_stream(self, stream: str) -> _Stream:
        """The stream as the session holds it: continue after its last record (an earlier import's)."""
        seq = self.log.end_offset(self.session_id, stream)
        last = 0
        if seq > 0:
            for stored in self.log.read(self.session_id, stream, seq - 1):
                last = stored.record.event_time_ns
        feed, holder = self._recorded_feeds.get(stream, ("", "an earlier import"))
        state = self._streams[stream] = _Stream(seq, last, holder if seq else "", feed)
        return state

    def _check_file_fits(self, stream: str, state: _Stream, time_ns: int, line: int) -> None:
        """The first valid row of a file in a stream: the file must be of the stream's feed and begin where
        the stream ends (files of one venue in time order, not overlapping)."""
        assert self._file is not None
        feed = self._file.feed
        if feed and state.feed and feed != state.feed:
            raise FileError(self._file.name, f"a {feed} file, but {stream} already holds {state.feed} data"
                                             f" (from {state.holder}); import each venue under its own --venue")  # fmt: skip
        if time_ns < state.last_time_ns:
            raise FileError(self._file.name, f"starts at {utc(time_ns)} in {stream}, before the end of the data it"
                                             f" already holds from {state.holder} ({utc(state.last_time_ns)}): give a"
                                             " venue's files in time order, never overlapping, and files of"
                                             " different venues under different --venue", line)  # fmt: skip

    def _stream_begins(
        self, stream: str, define: Callable[[Envelope], InstrumentDefined], first: Envelope
    ) -> None:
        """A market-data stream new to the session: its instrument's definition takes sequence 0, stamped
        like the stream's `first` record."""
        definition = define(first.model_copy(
            update={"event_id": input_event_id(self.session_id, stream, 0), "sequence": 0}))  # fmt: skip
        self.report.new_streams.append(stream)
        key = f"{definition.venue}.{definition.instrument}"
        self._push(stream, key, definition)

    # -- writing -------------------------------------------------------------------------------------------

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

    def _session_envelope(self, time_ns: int) -> Envelope:
        return self._envelope(SESSION_STREAM, self._streams[SESSION_STREAM].next_seq, time_ns, time_ns)

    def _push_session_started(self, time_ns: int) -> None:
        self._session_pending = False
        self._open_stream(SESSION_STREAM)
        event = SessionStarted(
            envelope=self._session_envelope(time_ns),
            mode="import",
            config_hash=self._config_hash,
            model_hash="",
            code_version=self._code_version(),
        )
        self._push(SESSION_STREAM, self.session_id, event)

    def _push_files_imported(self) -> None:
        """Stamped with the import's last record time (never the wall clock: a re-import is identical)."""
        if SESSION_STREAM not in self._streams:
            self._open_stream(SESSION_STREAM)
        files = tuple(
            ImportedFile(
                name=Path(f.name).name,
                sha256=f.sha256,
                feed=f.feed,
                records=f.records,
                refused_rows=f.refused_rows,
                streams=tuple(sorted(f.by_stream)),
            )  # fmt: skip
            for f in self.report.files
        )
        event = FilesImported(envelope=self._session_envelope(self._last_time_ns), importer=self.source,
                              files=files)  # fmt: skip
        self._push(SESSION_STREAM, self.session_id, event)

    def _push(self, stream: str, key: str, event: EventBase) -> None:
        state = self._streams[stream]
        if self._rows is not None and stream != SESSION_STREAM:
            try:
                self._rows.add(stream, event)
            except AmountOverflow as exc:
                assert self._file is not None
                raise FileError(self._file.name, str(exc), self._line) from exc
        else:
            self._batch.append(LogRecord(stream, key, event.type, event.envelope.event_time_ns, encode(event)))
            self._expected.append((stream, state.next_seq))
        state.next_seq += 1
        self.report.by_type[event.type] += 1
        self.report.by_stream[stream] += 1
        if len(self._batch) >= self.batch_size:
            self.flush()
