"""Test support for the projections: a sample session written to an EventLog, the plain fold that says what the
read models must contain (independent of the projector: a loop over the log and domain.portfolio.apply_fill),
and table dumps to compare two databases row by row."""

from __future__ import annotations

import random
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from application.ports import EventLog, LogRecord
from application.session_run import MARKET_DATA_PREFIX
from domain.events import (
    Envelope,
    EquitySampled,
    EventBase,
    InstrumentDefined,
    KillSwitchEngaged,
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderFillEvent,
    OrderPartiallyFilled,
    PlaceOrder,
    QuoteTick,
    RiskCheckPassed,
    RiskCheckRejected,
    SessionEnded,
    SessionStarted,
    SpreadOpportunityDetected,
    decode,
    encode,
)
from domain.portfolio import PortfolioState, apply_fill, position_asset, position_fee
from domain.values import Liquidity, OrderType, Side
from projections.models import READ_MODEL_TABLES, TRACKING_TABLE, Base

VENUES = ("binance", "okx")
INSTRUMENT = "BTCUSDT"
_NS = 1_700_000_000_000_000_000


class SampleWriter:
    def __init__(self, log: EventLog, session_id: str) -> None:
        self.log = log
        self.session_id = session_id
        self.seq = 0
        self.pending: list[LogRecord] = []

    def env(self, t: int) -> Envelope:
        self.seq += 1
        eid = uuid.uuid5(uuid.NAMESPACE_URL, f"{self.session_id}/{self.seq}")
        return Envelope(event_id=eid, session_id=self.session_id, sequence=self.seq, event_time_ns=t,
                        ingest_time_ns=t, source="test")  # fmt: skip

    def add(self, stream: str, event: EventBase) -> None:
        self.pending.append(
            LogRecord(stream, stream, event.type, event.envelope.event_time_ns, encode(event))
        )

    def flush(self) -> None:
        for start in range(0, len(self.pending), 5000):
            self.log.append(self.session_id, self.pending[start : start + 5000])
        self.pending.clear()


def build_sample_session(log: EventLog, session_id: str, *, orders: int = 120, quotes_per_order: int = 3,
                         seed: int = 7, start_ns: int = _NS) -> int:  # fmt: skip
    """A backtest-like session: quotes on two venues, spread signals, orders with risk checks, acceptances,
    partial and full fills (and a duplicate fill), cancels, equity samples, a kill switch, session markers.
    Returns the number of records appended."""
    rng = random.Random(seed)
    w = SampleWriter(log, session_id)
    t = start_ns
    w.add("session", SessionStarted(envelope=w.env(t), mode="backtest", config_hash="c0ffee", model_hash="m1",
                                    code_version="test", parameters='{"x":1}'))  # fmt: skip
    for venue in VENUES:
        w.add(f"md.{venue}.{INSTRUMENT}", InstrumentDefined(
            envelope=w.env(t), venue=venue, instrument=INSTRUMENT, base="BTC", quote="USDT", settlement="USDT",
            kind="spot", contract_size=1, tick_size=Decimal("0.01"), lot_size=Decimal("0.00001"), min_notional=5,
            maker_fee_bps=10, taker_fee_bps=10))  # fmt: skip
    mid = Decimal("60000")
    last_fill: OrderFillEvent | None = None
    for i in range(orders):
        for _ in range(quotes_per_order):
            for venue in VENUES:
                t += 1_000_000
                mid += Decimal(rng.randint(-50, 50)) / 10
                half = Decimal(rng.randint(1, 20)) / 10
                w.add(
                    f"md.{venue}.{INSTRUMENT}",
                    QuoteTick(
                        envelope=w.env(t),
                        venue=venue,
                        instrument=INSTRUMENT,
                        bid_price=mid - half,
                        bid_size=Decimal("1.5"),
                        ask_price=mid + half,
                        ask_size=Decimal("2"),
                        venue_update_id=w.seq,
                    ),
                )
        buy, sell = rng.sample(VENUES, 2)
        w.add(
            "derived",
            SpreadOpportunityDetected(
                envelope=w.env(t),
                opportunity_id=uuid.uuid5(uuid.NAMESPACE_OID, f"{session_id}/opp/{i}"),
                strategy_id="spread",
                instrument=INSTRUMENT,
                buy_venue=buy,
                sell_venue=sell,
                buy_price=mid,
                sell_price=mid + 3,
                quantity=Decimal("0.5"),
                gross_edge_bps=Decimal("0.5"),
                net_edge_bps=Decimal(rng.randint(-20, 20)) / 100,
            ),
        )
        order_id = uuid.uuid5(uuid.NAMESPACE_OID, f"{session_id}/order/{i}")
        venue = rng.choice(VENUES)
        side = rng.choice((Side.BUY, Side.SELL))
        qty = Decimal(rng.randint(1, 30)) / 10
        account = rng.choice(("acct-a", "acct-b"))
        w.add("derived", PlaceOrder(envelope=w.env(t), order_id=order_id, account=account, strategy_id="spread",
                                    venue=venue, instrument=INSTRUMENT, side=side, order_type=OrderType.LIMIT,
                                    quantity=qty, limit_price=mid))  # fmt: skip
        if rng.random() < 0.1:
            w.add(
                "derived",
                RiskCheckRejected(
                    envelope=w.env(t),
                    order_id=order_id,
                    rule="max_order_notional",
                    limit=Decimal("100000"),
                    actual=qty * mid,
                    detail="too big",
                ),
            )
            continue
        w.add("derived", RiskCheckPassed(envelope=w.env(t), order_id=order_id))
        t += 1_000
        w.add(
            "derived",
            OrderAccepted(envelope=w.env(t), order_id=order_id, venue=venue, venue_order_id=f"v{i}"),
        )
        r = rng.random()
        fills: list[Decimal] = []
        if r < 0.45:
            fills = [qty]
        elif r < 0.85:
            first = (qty * Decimal(rng.randint(1, 9)) / 10).quantize(Decimal("0.01"))
            fills = [first, qty - first] if first > 0 else [qty]
        cum = Decimal(0)
        for j, fq in enumerate(fills):
            t += 1_000
            cum += fq
            price = mid + Decimal(rng.randint(-30, 30)) / 10
            cls = OrderFilled if cum == qty else OrderPartiallyFilled
            fee_ccy = "BTC" if rng.random() < 0.2 else "USDT"
            fee = (fq * Decimal("0.0001")) if fee_ccy == "BTC" else (fq * price * Decimal("0.0001"))
            fill = cls(
                envelope=w.env(t),
                order_id=order_id,
                venue=venue,
                instrument=INSTRUMENT,
                side=side,
                price=price,
                quantity=fq,
                fee=fee,
                fee_currency=fee_ccy,
                liquidity=Liquidity.TAKER,
                venue_trade_id=f"{venue}-{i}-{j}",
                cumulative_quantity=cum,
                leaves_quantity=qty - cum,
            )
            w.add("derived", fill)
            last_fill = fill
        if cum < qty and rng.random() < 0.7:
            t += 1_000
            w.add("derived", OrderCanceled(envelope=w.env(t), order_id=order_id, venue=venue, reason="ioc"))
        if i % 10 == 9:
            w.add("derived", EquitySampled(envelope=w.env(t), account=account, quote_currency="USDT",
                                           equity=Decimal(100000 + i), cash=Decimal(90000 - i),
                                           realized_pnl=Decimal(i) / 8,
                                           unrealized_pnl=Decimal("-1.25"), fees=Decimal("0.5")))  # fmt: skip
        if i == orders // 2 and last_fill is not None:
            # The venue reports a fill twice under a new event id: must count once.
            dup = last_fill.model_copy(update={"envelope": w.env(t)})
            w.add("derived", dup)
            w.add("derived", KillSwitchEngaged(envelope=w.env(t), reason="test"))
    w.add("session", SessionEnded(envelope=w.env(t + 1), input_events=w.seq, derived_events=0, digest="abc"))
    count = len(w.pending)
    w.flush()
    return count


def expected_read_models(log: EventLog, session_id: str) -> dict[str, Any]:
    """The plain fold: what the read models must say, computed by walking the log."""
    orders: dict[uuid.UUID, dict[str, Any]] = {}
    accounts: dict[uuid.UUID, str] = {}
    seen_fills: set[tuple[str, str]] = set()
    portfolios: dict[str, PortfolioState] = {}
    fees: dict[tuple[str, str, str], Decimal] = {}
    fill_count: dict[tuple[str, str, str], int] = {}
    signals: set[uuid.UUID] = set()
    latest: dict[tuple[str, str, str], tuple[int, uuid.UUID, int]] = {}
    equity: set[uuid.UUID] = set()
    risk = {"rejections": 0, "passed": 0, "kill": False}
    session: dict[str, Any] = {}
    history = 0
    specs: dict[tuple[str, str], InstrumentDefined] = {}
    streams = sorted(log.streams(session_id), key=lambda name: not name.startswith(MARKET_DATA_PREFIX))
    for stream in streams:
        for stored in log.read(session_id, stream):
            e = decode(stored.record.payload)
            if isinstance(e, InstrumentDefined):
                specs[(e.venue, e.instrument)] = e
            elif isinstance(e, PlaceOrder):
                accounts[e.order_id] = e.account
                orders[e.order_id] = {"status": "new", "filled": Decimal(0), "notional": Decimal(0),
                                      "fees": Decimal(0), "account": e.account}  # fmt: skip
                history += 1
            elif isinstance(e, RiskCheckPassed):
                risk["passed"] += 1
                history += 1
            elif isinstance(e, RiskCheckRejected):
                risk["rejections"] += 1
                orders[e.order_id]["status"] = "risk_rejected"
                history += 1
            elif isinstance(e, OrderAccepted):
                orders[e.order_id]["status"] = "accepted"
                history += 1
            elif isinstance(e, OrderCanceled):
                orders[e.order_id]["status"] = "canceled"
                history += 1
            elif isinstance(e, OrderFillEvent):
                history += 1
                if (e.venue, e.venue_trade_id) in seen_fills:
                    continue
                seen_fills.add((e.venue, e.venue_trade_id))
                o = orders[e.order_id]
                o["status"] = "filled" if isinstance(e, OrderFilled) else "partially_filled"
                o["filled"] = e.cumulative_quantity
                o["notional"] += e.price * e.quantity
                o["fees"] += e.fee
                account = accounts[e.order_id]
                spec = specs.get((e.venue, e.instrument))
                if spec is None:
                    continue  # recorded, but no position moves without a specification
                portfolio = portfolios.setdefault(account, PortfolioState())
                held = portfolio.positions.get((e.venue, spec.base))
                key = (account, e.venue, position_asset(spec, None if held is None else held.settlement))
                apply_fill(portfolio, e, spec)
                fees[key] = fees.get(key, Decimal(0)) + (position_fee(spec, e) or Decimal(0))
                fill_count[key] = fill_count.get(key, 0) + 1
            elif isinstance(e, SpreadOpportunityDetected):
                signals.add(e.opportunity_id)
                k = (e.instrument, e.buy_venue, e.sell_venue)
                prev = latest.get(k)
                n = prev[2] + 1 if prev else 1
                if prev is None or e.envelope.event_time_ns >= prev[0]:
                    latest[k] = (e.envelope.event_time_ns, e.opportunity_id, n)
                else:
                    latest[k] = (prev[0], prev[1], n)
            elif isinstance(e, EquitySampled):
                equity.add(e.envelope.event_id)
            elif isinstance(e, KillSwitchEngaged):
                risk["kill"] = True
            elif isinstance(e, SessionStarted):
                session.update(mode=e.mode, config_hash=e.config_hash)
            elif isinstance(e, SessionEnded):
                session.update(digest=e.digest, input_events=e.input_events, status="ended")
    positions = {}
    for account, state in portfolios.items():
        for (venue, asset), p in state.positions.items():
            key = (account, venue, asset)
            positions[key] = {"quantity": p.quantity, "cost_basis": p.cost, "realized_pnl": p.realized_pnl,
                              "fees": fees[key], "fill_count": fill_count[key]}  # fmt: skip
    return {"orders": orders, "positions": positions, "fills": seen_fills, "signals": signals,
            "latest": latest, "equity": equity, "risk": risk, "session": session,
            "history": history}  # fmt: skip


async def actual_read_models(engine: AsyncEngine, session_id: str) -> dict[str, Any]:
    """The same shape as `expected_read_models`, read from the database."""
    t = Base.metadata.tables
    async with engine.connect() as conn:

        def rows(name: str) -> Any:
            return conn.execute(select(t[name]).where(t[name].c.session_id == session_id))

        orders = {r.order_id: {"status": r.status, "filled": r.filled_quantity, "notional": r.notional,
                               "fees": r.fees, "account": r.account} for r in await rows("orders")}  # fmt: skip
        positions = {(r.account, r.venue, r.asset): {"quantity": r.quantity, "cost_basis": r.cost_basis,
                     "realized_pnl": r.realized_pnl, "fees": r.fees, "fill_count": r.fill_count}
                     for r in await rows("positions")}  # fmt: skip
        fills = {(r.venue, r.venue_trade_id) for r in await rows("fills")}
        signals = {r.opportunity_id for r in await rows("signals")}
        latest = {(r.instrument, r.buy_venue, r.sell_venue): (r.event_time_ns, r.opportunity_id, r.count)
                  for r in await rows("latest_spreads")}  # fmt: skip
        equity = {r.event_id for r in await rows("equity_samples")}
        rs = (await rows("risk_state")).one()
        risk = {"rejections": rs.rejections, "passed": rs.checks_passed, "kill": rs.kill_switch_engaged}
        s = (await rows("sessions")).one()
        session = {"mode": s.mode, "config_hash": s.config_hash, "digest": s.digest,
                   "input_events": s.input_events, "status": s.status}  # fmt: skip
        history = len((await rows("order_events")).all())
    return {"orders": orders, "positions": positions, "fills": fills, "signals": signals, "latest": latest,
            "equity": equity, "risk": risk, "session": session, "history": history}  # fmt: skip


def assert_matches_fold(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    """Exact equality: the read models use domain.portfolio's position arithmetic, digit for digit."""
    for key in ("orders", "fills", "signals", "latest", "equity", "risk", "session", "history", "positions"):
        assert actual[key] == expected[key], key


async def dump(engine: AsyncEngine, *, with_tracking: bool = True) -> dict[str, list[tuple[Any, ...]]]:
    """Every read-model row (and tracking offsets), sorted: equal dumps, equal read models."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with engine.connect() as conn:
        for name in READ_MODEL_TABLES:
            table = Base.metadata.tables[name]
            result = await conn.execute(select(table).order_by(*table.primary_key.columns))
            out[name] = [tuple(r) for r in result]
        if with_tracking:
            tr = Base.metadata.tables[TRACKING_TABLE]
            result = await conn.execute(select(tr.c.projection, tr.c.session_id, tr.c.stream, tr.c.last_offset)
                                        .order_by(tr.c.projection, tr.c.session_id, tr.c.stream))  # fmt: skip
            out[TRACKING_TABLE] = [tuple(r) for r in result]
    return out
