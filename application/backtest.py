"""Backtest: a what-if run of a strategy over a recorded session, recorded as a session of its own.

The backtest session holds its inputs (same stream names, ids of the backtest session), every derived event
in the order the kernel produced it (stream `derived`), and SessionStarted/SessionEnded (stream `session`)
with the parameters and the digest, so `cse replay` can reproduce it from the log alone. Inputs held in a
columnar file are not copied: the parameters name the file by sha256 and codec, and the log serves them to
the backtest session from that file (`ColumnarMarketData.attach_market_data`); the digest covers derived
events only, so naming the file changes none of them. Other inputs (operator commands, market data of a
session in the SQLite layout) are copied, re-stamped, as before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from application.fast_run import CoreFactory
from application.metrics import BacktestMetrics
from application.ports import ColumnarMarketData, EventLog, InputColumns, LogRecord
from application.run_config import InstrumentSpecs, RunConfig
from application.session_run import (
    DERIVED_STREAM,
    MARKET_DATA_PREFIX,
    MERGE_STREAM,
    SESSION_STREAM,
    MergeRecorder,
    RunParameters,
    VenueFactory,
    run_inputs,
)
from domain.events import (
    Digest,
    Envelope,
    EquitySampled,
    EventBase,
    InstrumentDefined,
    SessionEnded,
    SessionStarted,
    decode,
    encode,
    input_event_id,
)
from domain.values import decimal_context

BATCH_SIZE = 5_000


@dataclass(frozen=True)
class BacktestResult:
    session_id: str
    digest: str
    inputs: int
    derived: int
    summary: dict[str, Any]
    metrics: BacktestMetrics


class _BatchWriter:
    def __init__(self, log: EventLog, session_id: str) -> None:
        self._log = log
        self._session_id = session_id
        self._pending: list[LogRecord] = []

    def add(self, stream: str, key: str, event: EventBase, payload: bytes | None = None) -> None:
        self._pending.append(
            LogRecord(stream, key, event.type, event.envelope.event_time_ns, payload or encode(event))
        )
        if len(self._pending) >= BATCH_SIZE:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self._log.append(self._session_id, self._pending)
            self._pending = []


def session_marker_envelope(session_id: str, index: int, time_ns: int, source: str) -> Envelope:
    return Envelope(
        event_id=input_event_id(session_id, SESSION_STREAM, index),
        session_id=session_id,
        sequence=index,
        event_time_ns=time_ns,
        ingest_time_ns=time_ns,
        source=source,
    )


class MissingInputData(ValueError):
    """The input session lacks market data the run configuration names: the run would trade on nothing."""


def check_inputs(log: EventLog, parameters: RunParameters) -> None:
    """Refuse a run whose configuration names a venue without market data of the strategy's instrument in
    the input session (streams `md.<venue>.<instrument>`, or its `.quotes` / `.trades` parts)."""
    config = parameters.config
    instrument = config.strategy.instrument
    wanted = {venue: f"{MARKET_DATA_PREFIX}{venue}.{instrument}" for venue in config.venues}
    missing = [
        venue for venue, stream in sorted(wanted.items())
        if not any(s == stream or s.startswith(stream + ".") for s in parameters.streams)
    ]  # fmt: skip
    if not missing:
        return
    has = ", ".join(
        f"{s} ({log.end_offset(parameters.input_session, s):,} records)" for s in parameters.streams
    )
    raise MissingInputData(
        f"session {parameters.input_session!r} has no market data of {instrument} (strategy.instrument) on "
        f"{', '.join(missing)} (configured venues); it has: {has or 'no market data at all'}"
    )


def describe_valuations(sample: EquitySampled) -> str:
    """How the last equity sample valued each currency: converted at which recorded price, or not at all."""
    parts = []
    for v in sample.valuations:
        if v.price is None:
            parts.append(f"{v.currency} {v.balance}: not converted (no recorded {v.currency}/{sample.quote_currency}"
                         " price), left out of equity")  # fmt: skip
        elif v.currency == sample.quote_currency:
            parts.append(f"{v.currency} {v.balance}")
        else:
            parts.append(f"{v.currency} {v.balance} at {v.price} ({v.price_instrument} mid) = {v.value}"
                         f" {sample.quote_currency}")  # fmt: skip
    parts += [f"fills on {name} not accounted (no InstrumentDefined)" for name in sample.unaccounted_fills]
    return "; ".join(parts)


def session_instruments(log: EventLog, session: str, streams: tuple[str, ...]) -> InstrumentSpecs:
    """(venue, instrument) -> the InstrumentDefined opening the session's market data of it: what a run's
    fees default to (`RunConfig` validated with the context `instruments`), resolved when the run starts."""
    specs: dict[tuple[str, str], InstrumentDefined] = {}
    for stream in streams:
        first = next(iter(log.read(session, stream, 0)), None)
        if first is not None and first.record.event_type == "market.instrument_defined":
            spec = decode(first.record.payload)
            assert isinstance(spec, InstrumentDefined)
            specs.setdefault((spec.venue, spec.instrument), spec)
    return specs


def describe_fees(config: RunConfig) -> dict[str, Any]:
    """Per venue the rates charged and where they come from, and the taker rates the strategy prices its
    edge with when they are not the charged ones (its config sets `taker_fee_bps`)."""
    charged = {name: {"maker_bps": str(f.maker_bps), "taker_bps": str(f.taker_bps), "source": f.source}
               for name, f in sorted(config.venues.items())}  # fmt: skip
    assumed = config.strategy.taker_fee_bps
    differ = sorted(v for v in config.strategy.venues if assumed[v] != config.venues[v].taker_bps)
    if not differ:
        strategy = "the charged taker rates"
    else:
        strategy = "strategy.taker_fee_bps from the config, not the charged taker rates: " + ", ".join(
            f"{v} {assumed[v]} (charged {config.venues[v].taker_bps})" for v in differ
        )
    return {"fee_rates": charged, "strategy_prices_edge_with": strategy}


def _require_instrument_definitions(log: EventLog, parameters: RunParameters) -> None:
    """Every market-data stream opens with its InstrumentDefined: without it the venue cannot check an order
    and the portfolio cannot account a fill, so a session imported without one is refused, not guessed."""
    for stream in (s for s in parameters.streams if s.startswith(MARKET_DATA_PREFIX)):  # not `commands`
        first = next(iter(log.read(parameters.input_session, stream, 0)), None)
        if first is not None and first.record.event_type != "market.instrument_defined":
            raise ValueError(
                f"stream {stream} of session {parameters.input_session!r} does not start with an InstrumentDefined"
                " (imported before instruments were specified?); import its files again into a new session"
            )


def name_market_data(log: EventLog, parameters: RunParameters,
                     session_id: str) -> tuple[RunParameters, frozenset[str]]:  # fmt: skip
    """When the input session's market data is a columnar file: the parameters naming it (sha256, codec)
    and the streams the backtest session takes from it instead of copying (`_attach_market_data`)."""
    if not isinstance(log, ColumnarMarketData):
        return parameters, frozenset()
    ref = log.market_data(parameters.input_session)
    if ref is None:
        return parameters, frozenset()
    streams = frozenset(parameters.streams) & frozenset(ref.streams)
    return replace(parameters, market_data=(ref.sha256, ref.codec)), streams


def _attach_market_data(log: EventLog, parameters: RunParameters, session_id: str, streams: frozenset[str]) -> None:
    """Serve the named file's streams as the finished backtest session's inputs (attached last: a run that
    failed half way names no data)."""
    if streams and parameters.market_data is not None and isinstance(log, ColumnarMarketData):
        sha256, codec = parameters.market_data
        log.attach_market_data(session_id, sha256, sorted(streams), codec)


def run_backtest(
    log: EventLog,
    parameters: RunParameters,
    session_id: str,
    venue_factory: VenueFactory,
    code_version: str,
    progress: Callable[[int], None] | None = None,
    core: CoreFactory | None = None,
) -> BacktestResult:
    """Run the backtest into `session_id`; with a market `core` gated (`application.fast_run`), without one
    every input through the kernel: the same derived events either way."""
    if log.end_offset(session_id, SESSION_STREAM) > 0:
        raise ValueError(f"session {session_id!r} already exists; choose another --id or replay it")
    check_inputs(log, parameters)
    _require_instrument_definitions(log, parameters)
    parameters, named = name_market_data(log, parameters, session_id)
    writer = _BatchWriter(log, session_id)
    metrics = BacktestMetrics()
    digest = Digest()
    first_time: list[int] = []
    last_equity: list[EquitySampled] = []
    merge = MergeRecorder(session_id, parameters.streams)

    def start(time_ns: int) -> None:
        first_time.append(time_ns)
        started = SessionStarted(
            envelope=session_marker_envelope(session_id, 0, time_ns, "backtest"),
            mode="backtest",
            config_hash=parameters.config_hash,
            model_hash="",
            code_version=code_version,
            parameters=parameters.canonical_json(),
        )
        writer.add(SESSION_STREAM, session_id, started)

    def on_input(stream: str, event: EventBase) -> None:
        if not first_time:
            start(event.envelope.event_time_ns)
        if stream not in named:
            writer.add(stream, stream, event)
        chunk = merge.add(stream, event.envelope.event_time_ns)
        if chunk is not None:
            writer.add(MERGE_STREAM, session_id, chunk)
        metrics.observe(event)
        if progress is not None:
            progress(1)

    def on_columns(columns: InputColumns) -> None:
        """All inputs at once, held in the named file (nothing to copy): the bookkeeping `on_input` does per
        input. Of the inputs, the metrics need only the instrument definitions (mids come from the view)."""
        if not len(columns):
            return
        start(columns.time_at(0))
        for chunk in merge.add_runs(columns.runs(), columns.time_at):
            writer.add(MERGE_STREAM, session_id, chunk)
        for _, event in columns.non_market_events():
            metrics.observe(event)
        if progress is not None:
            progress(len(columns))

    def on_derived(event: EventBase) -> None:
        if isinstance(event, EquitySampled):
            last_equity[:] = [event]
        payload = encode(event)
        digest.add(payload)
        writer.add(DERIVED_STREAM, session_id, event, payload)
        metrics.observe(event)

    with decimal_context():  # the metrics too: the caller's decimal context never changes a reported number
        kernel = run_inputs(log, parameters, session_id, venue_factory, on_input, on_derived, core=core,
                            on_kernel=lambda k: metrics.follow(k.market),
                            on_columns=on_columns if named == frozenset(parameters.streams) else None)  # fmt: skip
    if not first_time:
        raise ValueError(
            f"session {parameters.input_session!r} has no input events in {list(parameters.streams)}"
        )
    last_chunk = merge.flush()
    if last_chunk is not None:
        writer.add(MERGE_STREAM, session_id, last_chunk)
    ended = SessionEnded(
        envelope=session_marker_envelope(session_id, 1, kernel.clock.now_ns(), "backtest"),
        input_events=kernel.inputs,
        derived_events=kernel.derived,
        digest=digest.hexdigest(),
    )
    writer.add(SESSION_STREAM, session_id, ended)
    writer.flush()
    _attach_market_data(log, parameters, session_id, named)
    with decimal_context():
        summary = metrics.summary(Decimal(parameters.config.starting_equity))
    summary.update(session_id=session_id, digest=digest.hexdigest(), input_events=kernel.inputs,
                   derived_events=kernel.derived)  # fmt: skip
    if last_equity:
        summary.update(currencies=describe_valuations(last_equity[0]))
    # How the simulated venues matched: e.g. orders matched against the exchange's top of book because the
    # L2 book was out of sync or older than the ticker (docs/simulated-venue.md).
    summary["venues"] = kernel.venue_counters()
    summary.update(describe_fees(parameters.config))
    return BacktestResult(session_id, digest.hexdigest(), kernel.inputs, kernel.derived, summary, metrics)
