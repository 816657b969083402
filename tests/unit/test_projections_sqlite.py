"""Projections on SQLite: fold equality, redelivery, interruption, rebuild, time series sink."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.entrypoints.bootstrap import projection_metrics
from adapters.observability.metrics import PROJECTION_LAG as LAG
from adapters.sqlite_event_log import SqliteEventLog
from application.ports import StoredRecord
from projections import handlers
from projections.influx import TimeseriesProjector
from projections.models import Base
from projections.projector import SqlProjector
from projections.rebuild import rebuild
from projections.schema import make_engine, migrate
from projections.testing import (
    actual_read_models,
    assert_matches_fold,
    build_sample_session,
    dump,
    expected_read_models,
)
from projections.timeseries_sqlite import SqlPointSink

pytestmark = pytest.mark.unit

SESSION = "bt-1"


@pytest.fixture
def log(tmp_path: Path) -> Iterator[SqliteEventLog]:
    with SqliteEventLog(tmp_path / "events.sqlite") as event_log:
        build_sample_session(event_log, SESSION, orders=150)
        yield event_log


async def _engine(path: Path) -> AsyncEngine:
    url = f"sqlite+aiosqlite:///{path}"
    await migrate(url)
    return make_engine(url)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    eng = await _engine(tmp_path / "read.sqlite")
    yield eng
    await eng.dispose()


async def test_migrate_is_idempotent_and_creates_every_table(engine: AsyncEngine, tmp_path: Path) -> None:
    await migrate(engine)
    async with engine.connect() as conn:
        names = set(await conn.run_sync(lambda c: c.dialect.get_table_names(c)))
    assert set(Base.metadata.tables) <= names


async def test_projection_equals_plain_fold(engine: AsyncEngine, log: SqliteEventLog) -> None:
    projector = SqlProjector(engine, log, batch_size=100, metrics=projection_metrics())
    applied = await projector.project_session(SESSION)
    assert applied == log.count(SESSION)
    assert_matches_fold(await actual_read_models(engine, SESSION), expected_read_models(log, SESSION))
    for stream in log.streams(SESSION):
        assert await projector.last_offset(SESSION, stream) == log.end_offset(SESSION, stream) - 1
        assert LAG.labels("read_models", stream.split(".")[0])._value.get() == 0


async def test_redelivery_changes_nothing(engine: AsyncEngine, log: SqliteEventLog) -> None:
    projector = SqlProjector(engine, log, batch_size=64)
    await projector.project_session(SESSION)
    before = await dump(engine)
    assert await projector.project_session(SESSION) == 0  # nothing new
    assert await dump(engine) == before

    class Redelivering:
        """A log that hands out the last 50 records again (as a broker redelivering after a lost ack)."""

        def __getattr__(self, name: str) -> object:
            return getattr(log, name)

        def read(self, session_id: str, stream: str, from_offset: int = 0) -> Iterator[StoredRecord]:
            return log.read(session_id, stream, max(0, from_offset - 50))

    assert await SqlProjector(engine, Redelivering(), batch_size=64).project_session(SESSION) == 0  # type: ignore[arg-type]
    assert await dump(engine) == before

    # The same events appended again under new offsets: only the offsets move, no read-model row changes.
    derived = list(log.read(SESSION, "derived"))
    log.append(SESSION, [r.record for r in derived[-40:]])
    assert await projector.project_session(SESSION) == 40
    after = await dump(engine)
    assert {k: v for k, v in after.items() if k != "projection_tracking"} == {
        k: v for k, v in before.items() if k != "projection_tracking"
    }


async def test_interrupted_projection_resumes_to_the_same_state(
    engine: AsyncEngine, log: SqliteEventLog, tmp_path: Path
) -> None:
    reference = await _engine(tmp_path / "reference.sqlite")
    await SqlProjector(reference, log, batch_size=100).project_session(SESSION)

    derived = list(log.read(SESSION, "derived"))
    poison = next(r.offset for r in derived if r.offset >= 250 and r.record.event_type == "order.filled")
    registry = dict(handlers.REGISTRY)

    async def failing_fill(batch, event, stored):  # type: ignore[no-untyped-def]
        if stored.offset == poison:
            raise RuntimeError("crash inside a handler")
        await handlers.on_fill(batch, event, stored)

    registry["order.filled"] = failing_fill
    crashing = SqlProjector(engine, log, batch_size=100, registry=registry)
    definitions = [s for s in log.streams(SESSION) if s.startswith("md.")]  # first, as project_session does
    await crashing.project_session(SESSION, definitions)
    with pytest.raises(RuntimeError, match="crash inside a handler"):
        await crashing.project_stream(SESSION, "derived")
    # Every batch before the failing one committed, the failing one left no trace.
    committed = poison // 100 * 100 - 1
    assert await crashing.last_offset(SESSION, "derived") == committed
    async with engine.connect() as conn:
        t = Base.metadata.tables["order_events"]
        offsets = (await conn.execute(select(t.c.log_offset))).scalars().all()
    assert offsets and max(offsets) <= committed

    await SqlProjector(engine, log, batch_size=100).project_session(SESSION)
    assert await dump(engine) == await dump(reference)
    await reference.dispose()


async def test_rebuild_gives_identical_rows_and_keeps_other_sessions(
    engine: AsyncEngine, log: SqliteEventLog
) -> None:
    build_sample_session(log, "other", orders=30, seed=3)
    projector = SqlProjector(engine, log, batch_size=200)
    await projector.project_session(SESSION)
    await projector.project_session("other")
    before = await dump(engine)
    assert await rebuild(engine, log, SESSION, batch_size=150) == log.count(SESSION)
    assert await dump(engine) == before
    # The live projector carries on from the rebuilt tracking rows.
    assert await projector.project_session(SESSION) == 0
    assert await rebuild(engine, log, None) == log.count(SESSION) + log.count("other")
    assert await dump(engine) == before
    async with engine.connect() as conn:
        names = set(await conn.run_sync(lambda c: c.dialect.get_table_names(c)))
    assert not any(n.endswith(("__rebuild", "__old")) for n in names)


async def test_rebuild_repairs_a_damaged_read_model(engine: AsyncEngine, log: SqliteEventLog) -> None:
    await SqlProjector(engine, log).project_session(SESSION)
    good = await dump(engine)
    async with engine.begin() as conn:
        await conn.execute(Base.metadata.tables["positions"].delete())
    assert await dump(engine) != good
    await rebuild(engine, log, SESSION)
    assert await dump(engine) == good


async def test_timeseries_sink_idempotent_and_resumable(engine: AsyncEngine, log: SqliteEventLog) -> None:
    sink = SqlPointSink(engine)
    projector = TimeseriesProjector(engine, log, sink, name="timeseries", batch_records=300)
    assert await projector.project_session(SESSION) == log.count(SESSION)
    mids = await sink.query("mid", {"session": SESSION, "venue": "binance"})
    quotes = [r for r in log.read(SESSION, "md.binance.BTCUSDT") if r.record.event_type == "market.quote"]
    assert len(mids) == len(quotes)
    before = await dump(engine, with_tracking=False), await sink.query("fills"), await sink.query("equity")
    # Forget the progress (as after a crash between the write and the tracking update): rewriting changes nothing.
    async with engine.begin() as conn:
        await conn.execute(Base.metadata.tables["projection_tracking"].delete())
    await TimeseriesProjector(engine, log, sink, name="timeseries").project_session(SESSION)
    after = await dump(engine, with_tracking=False), await sink.query("fills"), await sink.query("equity")
    assert after == before
    fills = before[1]
    assert len(fills) == len({(r["tags"]["venue"], r["tags"]["trade"]) for r in fills})


def test_fast_point_mapping_and_line_encoding_equal_the_reference(log: SqliteEventLog) -> None:
    """points_for_record (quotes read for six fields only) == points_for(decode(...)), and Point.line (cached
    prefixes) == projections.influx_http.encode_line, on every record of the sample session."""
    from domain.events import decode
    from projections.influx_http import encode_line
    from projections.timeseries import POINT_EVENT_TYPES, Point, batch_points, points_for, points_for_record

    records = [r.record for s in log.streams(SESSION) for r in log.read(SESSION, s)]
    for interval in (0, 1_000_000_000):
        fast = [p for r in records for p in points_for_record(r, SESSION, quote_interval_ns=interval)]
        slow = [p for r in records if r.event_type in POINT_EVENT_TYPES
                for p in points_for(decode(r.payload), SESSION, quote_interval_ns=interval)]  # fmt: skip
        assert fast == slow and any(p.measurement == "mid" for p in fast)
        assert [p.line() for p in fast] == [
            encode_line(p.measurement, dict(p.tags), dict(p.fields), p.time_ns) for p in fast
        ]
        stored = [r for s in log.streams(SESSION) for r in log.read(SESSION, s)]
        as_points = batch_points(stored, SESSION, quote_interval_ns=interval)
        as_lines = batch_points(stored, SESSION, quote_interval_ns=interval, as_lines=True)
        assert list(as_lines) == list(as_points)  # same keys, same order
        assert [v if isinstance(v, str) else v.line() for v in as_lines.values()] == [
            v.line() for v in as_points.values() if isinstance(v, Point)
        ]
        quotes = sum(1 for v in as_points.values() if isinstance(v, Point) and v.measurement == "mid")
        assert quotes and sum(isinstance(v, str) for v in as_lines.values()) == quotes


async def test_undecodable_records_are_set_aside_and_the_projections_go_on(
    engine: AsyncEngine, log: SqliteEventLog
) -> None:
    """Poison records (handled types whose bytes do not decode) in the middle of a stream: both projections
    record them in projection_dead_letters with the reason and the original bytes, apply everything around
    them, and a re-run (redelivery, rebuild) adds no second dead letter."""
    from application.ports import LogRecord
    from projections.models import DEAD_LETTER_TABLE

    expected = expected_read_models(log, SESSION)
    derived = list(log.read(SESSION, "derived"))
    t = derived[-1].record.event_time_ns
    poison = [LogRecord("derived", "k", "order.filled", t, b'{"type": "order.filled", "not": "an event"}'),
              LogRecord("derived", "k", "risk.check_passed", t, b"\xff not json")]  # fmt: skip
    first = log.append(SESSION, poison)[0]
    log.append(SESSION, [r.record for r in derived[-40:]])  # valid records after the poison
    quote = next(r for r in log.read(SESSION, "md.binance.BTCUSDT") if r.record.event_type == "market.quote")
    bad_quote = log.append(SESSION, [quote.record._replace(payload=b'{"type": "market.quote"}')])[0]

    projector = SqlProjector(engine, log, batch_size=64)
    assert await projector.project_session(SESSION) == log.count(SESSION)
    assert projector.dead_letters == 2
    assert_matches_fold(await actual_read_models(engine, SESSION), expected)
    series = TimeseriesProjector(engine, log, SqlPointSink(engine), name="timeseries", batch_records=300)
    assert await series.project_session(SESSION) == log.count(SESSION)
    assert series.dead_letters == 2  # the fill and the quote (risk decisions carry no point)

    table = Base.metadata.tables[DEAD_LETTER_TABLE]

    async def dead_letters() -> list[Any]:
        async with engine.connect() as conn:
            return list((await conn.execute(select(table).order_by(table.c.projection, table.c.stream,
                                                           table.c.offset))).all())  # fmt: skip

    rows = await dead_letters()
    assert [(r.projection, r.stream, r.offset, r.event_type) for r in rows] == [
        ("read_models", "derived", first, "order.filled"),
        ("read_models", "derived", first + 1, "risk.check_passed"),
        ("timeseries", "derived", first, "order.filled"),
        ("timeseries", "md.binance.BTCUSDT", bad_quote, "market.quote"),
    ]
    assert [r.payload for r in rows[:2]] == [p.payload for p in poison]
    assert "Field required" in rows[0].reason and "JSON" in rows[1].reason and "Field required" in rows[3].reason
    for stream in log.streams(SESSION):
        assert await projector.last_offset(SESSION, stream) == log.end_offset(SESSION, stream) - 1

    await rebuild(engine, log, SESSION)
    async with engine.begin() as conn:
        await conn.execute(Base.metadata.tables["projection_tracking"].delete())
    await TimeseriesProjector(engine, log, SqlPointSink(engine), name="timeseries").project_session(SESSION)
    assert [(r.projection, r.offset) for r in await dead_letters()] == [(r.projection, r.offset) for r in rows]


async def test_the_migrations_create_exactly_the_models(engine: AsyncEngine) -> None:
    """Alembic's autogenerate finds nothing to add: the migrations and projections/models.py agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    async with engine.connect() as conn:
        diff = await conn.run_sync(lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata))
    version_table = [d for d in diff if d[0] == "remove_table" and d[1].name == "projections_alembic_version"]
    assert len(version_table) == 1 and [d for d in diff if d not in version_table] == []


async def test_inverse_positions_are_in_the_settlement_coin_and_unspecified_fills_move_nothing(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    """COIN-M BTCUSD_PERP long 10 x 100 USD at 60,000, closed at 61,000: the position row holds 1000 USD units,
    cost 1000/60000 BTC, and realizes 1000/60000 - 1000/61000 BTC (each value to 1e-12), like the portfolio.
    A fill on an instrument nobody defined is recorded but moves no position, and its history says why."""
    import uuid
    from decimal import Decimal as D

    from domain.events import (
        InstrumentDefined,
        OrderAccepted,
        OrderFilled,
        PlaceOrder,
        RiskCheckPassed,
        SessionEnded,
        SessionStarted,
    )
    from domain.values import Liquidity, OrderType, Side
    from projections.testing import SampleWriter

    with SqliteEventLog(tmp_path / "inverse.sqlite") as log:
        w = SampleWriter(log, "inv")
        w.add("session", SessionStarted(envelope=w.env(1), mode="backtest", config_hash="c", model_hash="",
                                        code_version="t"))  # fmt: skip
        w.add("md.binance-coinm.BTCUSD_PERP", InstrumentDefined(
            envelope=w.env(1), venue="binance-coinm", instrument="BTCUSD_PERP", base="BTC", quote="USD",
            settlement="BTC", kind="inverse", contract_size=100, tick_size=D("0.1"), lot_size=1, min_notional=0,
            maker_fee_bps=2, taker_fee_bps=5))  # fmt: skip
        for n, (instrument, side, price) in enumerate([("BTCUSD_PERP", Side.BUY, "60000"),
                                                       ("BTCUSD_PERP", Side.SELL, "61000"),
                                                       ("XBTUSD", Side.BUY, "60000")]):  # fmt: skip
            oid = uuid.UUID(int=n + 1)
            w.add("derived", PlaceOrder(envelope=w.env(10 + n), order_id=oid, account="a", strategy_id="s",
                                        venue="binance-coinm", instrument=instrument, side=side,
                                        order_type=OrderType.MARKET, quantity=D(10)))  # fmt: skip
            w.add("derived", RiskCheckPassed(envelope=w.env(10 + n), order_id=oid))
            w.add("derived", OrderAccepted(envelope=w.env(10 + n), order_id=oid, venue="binance-coinm",
                                           venue_order_id=f"v{n}"))  # fmt: skip
            fee = (D(1000) / D(price) * D("0.0005")).quantize(D("1e-12"))
            w.add("derived", OrderFilled(envelope=w.env(10 + n), order_id=oid, venue="binance-coinm",
                                         instrument=instrument, side=side, price=D(price), quantity=D(10), fee=fee,
                                         fee_currency="BTC", liquidity=Liquidity.TAKER, venue_trade_id=f"f{n}",
                                         cumulative_quantity=D(10), leaves_quantity=D(0)))  # fmt: skip
        w.add("session", SessionEnded(envelope=w.env(20), input_events=1, derived_events=12, digest="d"))
        w.flush()
        await SqlProjector(engine, log).project_session("inv")
        expected = expected_read_models(log, "inv")
        actual = await actual_read_models(engine, "inv")
    assert_matches_fold(actual, expected)
    position = actual["positions"][("a", "binance-coinm", "BTCUSD_PERP")]
    assert position["quantity"] == 0 and position["cost_basis"] == 0
    assert position["realized_pnl"] == D("0.016666666667") - D("0.016393442623")
    assert abs(position["realized_pnl"] - D(1000) * (D(1) / D(60000) - D(1) / D(61000))) < D("1e-12")
    assert position["fill_count"] == 2 and len(actual["fills"]) == 3
    assert ("a", "binance-coinm", "XBTUSD") not in actual["positions"]
    async with engine.connect() as conn:
        t = Base.metadata.tables["order_events"]
        details = (await conn.execute(select(t.c.detail).where(t.c.session_id == "inv"))).scalars().all()
        spec = Base.metadata.tables["instruments"]
        kinds = (await conn.execute(select(spec.c.instrument, spec.c.kind, spec.c.contract_size))).all()
    assert any("no InstrumentDefined for binance-coinm:XBTUSD" in d for d in details)
    assert kinds == [("BTCUSD_PERP", "inverse", D(100))]
