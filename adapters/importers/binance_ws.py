"""Import Binance websocket captures (the hftbacktest `<receive_time_ns> <raw JSON>` gzip files).

Messages: the REST depth snapshot `{"lastUpdateId", "bids", "asks"}` -> BookSnapshot; combined-stream
envelopes `{"stream": "<symbol>@<kind>", "data": ...}` with kind depth* -> BookDelta (U, u, pu), bookTicker ->
QuoteTick (venue_update_id = u), trade -> TradeTick (m = buyer is maker, so the aggressor SELLs when m is true).

Time axis (decided): `envelope.event_time_ns` AND `ingest_time_ns` are the local receive time of the line.
Exchange times (E/T) are not sorted across message kinds within one capture (depth E runs ~1 s ahead of
the receive clock, spot bookTicker has no E at all), and the merge refuses an unsorted stream. The receive time
is the order in which the recorder really saw the messages, it is monotonic in every file we have (checked:
0 regressions in all five captures), and it is what a live engine would stamp, so a backtest on it behaves
like the live system. The exchange's own stamp (E, ms) is kept in the payload as `exchange_time_ns` where the
message has one. A line whose receive time is below the
previous one of its stream is reported as a bad row, not reordered.

Venue: `venue=` (`--venue`) if given, else the feed the content shows (`feed_of`: spot, USD-M or COIN-M),
which must agree with the folder when the folder is one of `spot`, `usdm`, `cm`. The feed is recorded per
file, and a stream never takes files of two feeds (a USD-M capture under the spot capture's `--venue` is
refused, see `common`).
Instrument: the stream symbol upper-cased (BTCUSDT, BTCUSD_PERP); the snapshot, which has no stream, uses its
`symbol` field if present, else the file name before the date (`btcusd_perp_20240808.gz` -> BTCUSD_PERP).
Errors: a line that is not a message we read is a refused row; a file that is not gzip, truncated or corrupt
is refused whole (and with it the whole import).
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import zlib
from collections.abc import Callable, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

from adapters.importers.common import FileError, ImportLog, ImportRefused, ImportReport, ImportSink, RowError
from adapters.instruments.catalog import InstrumentCatalog
from domain.events import BookDelta, BookSnapshot, Envelope, EventBase, QuoteTick, TradeTick
from domain.values import Side

_log = logging.getLogger(__name__)
FOLDER_VENUES = {"spot": "binance-spot", "usdm": "binance-usdm", "cm": "binance-coinm"}
SOURCE = "import.binance_ws"
FEED_PROBE_LINES = 2_000
"""Lines read ahead to find a message that shows the feed (a depth update or a bookTicker)."""


def feed_of(path: Path) -> str | None:
    """Which Binance feed a capture is, from its first depth update or bookTicker (`message_feed`)."""
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as fh:
        for line in islice(fh, FEED_PROBE_LINES):
            feed = message_feed(line.partition(" ")[2])
            if feed is not None:
                return feed
    return None


def message_feed(body: str) -> str | None:
    """The feed a depth update or bookTicker shows, None for any other line: COIN-M messages carry the pair
    (`ps`), USD-M depth updates carry `pu` and USD-M bookTickers an event type `e`; spot has neither."""
    try:
        message = json.loads(body)
        kind = message["stream"].partition("@")[2]
        data = message["data"]
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if not isinstance(data, dict) or not (kind.startswith("depth") or kind == "bookTicker"):
        return None
    if "ps" in data:
        return "binance-coinm"
    futures_mark = "pu" if kind.startswith("depth") else "e"
    return "binance-usdm" if futures_mark in data else "binance-spot"


def venue_for(path: Path, feed: str | None) -> str:
    folder = FOLDER_VENUES.get(path.parent.name)
    if folder is not None and feed is not None and folder != feed:
        raise FileError(
            path, f"its folder says {folder} but its messages are {feed}'s; pass --venue to name it"
        )
    venue = folder or feed
    if venue is None:
        raise FileError(path, f"cannot tell the venue (folder {path.parent.name!r}, no depth update or "
                              f"bookTicker in the first {FEED_PROBE_LINES} lines); pass --venue")  # fmt: skip
    return venue


def instrument_for(path: Path) -> str:
    """The instrument of a capture's REST snapshot (which names none): the one symbol of the combined-stream
    messages among its first lines, else the file name before the date (`btcusd_perp_20240808.gz`)."""
    symbols = set()
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as fh:
        for line in islice(fh, FEED_PROBE_LINES):
            try:
                stream = json.loads(line.partition(" ")[2])["stream"]
            except (ValueError, KeyError, TypeError):
                continue
            if isinstance(stream, str) and "@" in stream:
                symbols.add(stream.partition("@")[0].upper())
    return snapshot_instrument(symbols, path)


def snapshot_instrument(symbols: set[str], path: Path) -> str:
    """The one of `symbols` (upper-cased stream symbols of the first lines), else the file name's."""
    if len(symbols) == 1:
        return next(iter(symbols))
    name = path.name.split(".")[0]
    return re.sub(r"_\d{8}$", "", name).upper()


def import_binance_ws(
    log: ImportLog,
    session_id: str,
    paths: Sequence[Path],
    *,
    code_version: Callable[[], str],
    venue: str | None = None,
    batch_size: int = 5_000,
    max_bad_rows_kept: int = 100,
    echo: Callable[[str], None] | None = print,
    instruments: InstrumentCatalog | None = None,
    compiled: bool = True,
) -> ImportReport:
    """Import the captures, in the order given (give a venue's files in time order), into one session.

    `compiled`: parse with the compiled core where it proves every file clean (`binance_ws_compiled`), else
    (and with False: the reference the tests compare it with) line by line here; both store the same."""
    config = {"importer": SOURCE, "venue": venue}

    def sink() -> ImportSink:
        return ImportSink(
            log, session_id, source=SOURCE, config=config, code_version=code_version, batch_size=batch_size,
            max_bad_rows_kept=max_bad_rows_kept, echo=echo, instruments=instruments,
        )  # fmt: skip

    if compiled:
        try:  # imported here: the compiled path builds on this module's rules
            from adapters.importers.binance_ws_compiled import Unproven, feed_capture
        except ImportError as exc:  # a build older than the code: one line, never a silent slow path
            raise ImportRefused(str(exc)) from exc
        try:
            return sink().run(paths, lambda s, path: feed_capture(s, path, venue=venue))
        except Unproven as exc:
            _log.info("importing on the Python path: %s", exc)
    return sink().run(paths, lambda s, path: feed_file(s, path, venue=venue))


def feed_file(sink: ImportSink, path: Path, *, venue: str | None = None) -> None:
    """Parse one capture into `sink` (inside `ImportSink.run`)."""
    line_no = 0
    try:
        feed = feed_of(path)
        if feed is not None:
            sink.begin_file(feed)
        venue = venue or venue_for(path, feed)
        file_instrument = instrument_for(path)
        with gzip.open(path, "rt", encoding="utf-8", errors="replace") as fh:
            for line_no, line in enumerate(fh, 1):
                _feed_line(sink, line_no, line, venue, file_instrument)
    except gzip.BadGzipFile as exc:
        raise FileError(path, f"not a gzip file ({exc}); see docs/import-formats.md") from exc
    except (EOFError, zlib.error) as exc:
        raise FileError(path, f"truncated or corrupt gzip after line {line_no} ({exc})") from exc


def _feed_line(sink: ImportSink, line_no: int, line: str, venue: str, file_instrument: str) -> None:
    head, _, body = line.rstrip("\n").partition(" ")
    try:
        receive_ns = int(head)
        if receive_ns < 0:
            raise ValueError("negative")
    except ValueError:
        sink.refuse(line_no, "bad receive time", repr(head[:30]))
        return
    try:
        message = json.loads(body)
    except json.JSONDecodeError as exc:
        sink.refuse(line_no, "invalid JSON", f"{exc.msg} at column {exc.colno}")
        return
    try:
        instrument, build = parse_message(message, venue, file_instrument)
    except RowError as exc:
        sink.refuse(line_no, exc.reason, exc.detail)
        return
    sink.add(line=line_no, venue=venue, instrument=instrument, time_ns=receive_ns, ingest_ns=receive_ns,
             build=build)  # fmt: skip


def _unsupported(detail: str) -> RowError:
    return RowError("unsupported message", detail)


Builder = Callable[[Envelope], EventBase]


def parse_message(message: Any, venue: str, file_instrument: str) -> tuple[str, Builder]:
    """(instrument, builder) of one raw Binance message, as received (the recorder parses live messages here
    too, so a recorded session and an imported capture hold the same events); RowError if unsupported."""
    if not isinstance(message, dict):
        raise _unsupported(f"not a JSON object: {type(message).__name__}")
    if "stream" in message:
        stream = message["stream"]
        data = message.get("data")
        if not isinstance(stream, str) or "@" not in stream or not isinstance(data, dict):
            raise _unsupported("combined-stream envelope without a '<symbol>@<kind>' stream or a data object")
        symbol, _, kind = stream.partition("@")
        instrument = symbol.upper()
        if kind.startswith("depth"):
            return instrument, _delta(data, venue, instrument)
        if kind == "bookTicker":
            return instrument, _quote(data, venue, instrument)
        if kind == "trade":
            return instrument, _trade(data, venue, instrument)
        raise _unsupported(f"unsupported stream kind {kind!r}")
    if "lastUpdateId" in message:
        snap_symbol = message.get("symbol")
        instrument = snap_symbol.upper() if isinstance(snap_symbol, str) else file_instrument
        return instrument, _snapshot(message, venue, instrument)
    raise _unsupported("neither a combined-stream message nor a depth snapshot")


def _exchange_time(d: dict[str, Any]) -> int | None:
    stamp = d.get("E")
    return None if stamp is None else int(stamp) * 1_000_000


# Builders read the fields lazily (inside `build`) so a missing field is a row error the sink reports.


def _levels(raw: Any) -> tuple[tuple[Any, Any], ...]:
    return tuple((p, q) for p, q in raw)


def _snapshot(m: dict[str, Any], venue: str, instrument: str) -> Builder:
    return lambda env: BookSnapshot(
        envelope=env, venue=venue, instrument=instrument, last_update_id=m["lastUpdateId"],
        bids=_levels(m["bids"]), asks=_levels(m["asks"]),
    )  # fmt: skip


def _delta(d: dict[str, Any], venue: str, instrument: str) -> Builder:
    return lambda env: BookDelta(
        envelope=env, venue=venue, instrument=instrument, first_update_id=d["U"], final_update_id=d["u"],
        previous_final_update_id=d.get("pu"), bids=_levels(d["b"]), asks=_levels(d["a"]),
        exchange_time_ns=_exchange_time(d),
    )  # fmt: skip


def _quote(d: dict[str, Any], venue: str, instrument: str) -> Builder:
    return lambda env: QuoteTick(
        envelope=env, venue=venue, instrument=instrument, bid_price=d["b"], bid_size=d["B"],
        ask_price=d["a"], ask_size=d["A"], venue_update_id=d["u"], exchange_time_ns=_exchange_time(d),
    )  # fmt: skip


def _trade(d: dict[str, Any], venue: str, instrument: str) -> Builder:
    def build(env: Envelope) -> EventBase:
        maker = d["m"]
        if not isinstance(maker, bool):
            raise RowError("invalid fields", f"m (buyer is maker) must be a boolean, got {maker!r}")
        return TradeTick(
            envelope=env, venue=venue, instrument=instrument, price=d["p"], size=d["q"],
            aggressor_side=Side.SELL if maker else Side.BUY, venue_trade_id=str(d["t"]),
            exchange_time_ns=_exchange_time(d),
        )  # fmt: skip

    return build
