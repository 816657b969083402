"""Handlers of the SQL read models: one async function per event type, in `REGISTRY` (event type -> handler).

A handler gets the batch (projections.batch.Batch), the decoded event and its stored record, and changes rows
through the batch. Every handler is idempotent on natural ids: an order event whose event_id is already in
`order_events`, a fill whose (venue, venue_trade_id) is already in `fills`, a signal whose opportunity_id is
known, ... changes nothing. With the tracking offset this gives exactly-once even if the same event is
delivered again under another offset.

Positions follow domain.portfolio's accounting of the instrument's specification, read from the
`instruments` table (filled from InstrumentDefined, the first record of each market-data stream; the projector
projects market-data streams before the others): asset = base (spot) or the instrument (contracts); signed
units and cost basis in the settlement currency via domain.instruments.position_after_fill (inverse
contracts in the settlement coin); fees per domain.portfolio.position_fee. A fill on an instrument without a
specification is recorded (fills, order history) but moves no position, and its history row says so, as the
portfolio's `unaccounted_fills` does. The average cost is rounded to 18 places (models.q18), the scale the
tables store.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Iterable
from decimal import Decimal
from typing import Any

from application.ports import StoredRecord
from domain.events import (
    CancelOrder,
    DrawdownBreached,
    EquitySampled,
    EventBase,
    InstrumentDefined,
    KillSwitchEngaged,
    KillSwitchReleased,
    OrderAccepted,
    OrderCanceled,
    OrderEvent,
    OrderExpired,
    OrderFillEvent,
    OrderRejected,
    OrderTransitionRefused,
    PlaceOrder,
    RiskCheckPassed,
    RiskCheckRejected,
    SessionEnded,
    SessionStarted,
    SpreadOpportunityDetected,
)
from domain.instruments import is_inverse, position_after_fill, units
from domain.portfolio import position_asset, position_fee
from domain.values import Side, decimal_context
from projections.batch import Batch, Key, Row
from projections.models import q18

Handler = Callable[[Batch, Any, StoredRecord], Awaitable[None]]
ZERO = Decimal(0)

# -- orders -------------------------------------------------------------------------------------------------


def _blank_order(session_id: str, order_id: uuid.UUID, venue: str, time_ns: int, event_id: uuid.UUID) -> Row:
    return {
        "order_id": order_id, "session_id": session_id, "account": "", "strategy_id": "", "venue": venue,
        "instrument": "", "side": "", "order_type": "", "time_in_force": "", "quantity": None,
        "limit_price": None, "reduce_only": False, "leg_group_id": None, "status": "unknown",
        "venue_order_id": None, "filled_quantity": ZERO, "leaves_quantity": None, "avg_fill_price": None,
        "notional": ZERO, "fees": ZERO, "reason": "", "created_ns": time_ns, "updated_ns": time_ns,
        "event_count": 0, "last_event_id": event_id,
    }  # fmt: skip


async def _order_step(
    b: Batch,
    event: Any,
    stored: StoredRecord,
    status: str | None,
    changes: Row | None = None,
    detail: str = "",
) -> Row | None:
    """Record the event in the order's history and move the order; None if the event was seen already."""
    env = event.envelope
    if await b.exists("order_events", (env.event_id,)):
        return None
    venue = getattr(event, "venue", "")
    order = await b.get("orders", (event.order_id,)) or _blank_order(
        b.session_id, event.order_id, venue, env.event_time_ns, env.event_id
    )
    if changes:
        order.update(changes)
    if status is not None:
        order["status"] = status
    order["event_count"] += 1
    order["updated_ns"] = max(order["updated_ns"], env.event_time_ns)
    order["last_event_id"] = env.event_id
    b.put("orders", order)
    b.put("order_events", {
        "event_id": env.event_id, "order_id": event.order_id, "session_id": b.session_id, "stream": b.stream,
        "log_offset": stored.offset, "sequence": env.sequence, "event_type": event.type,
        "event_time_ns": env.event_time_ns, "status_after": order["status"], "detail": detail,
    })  # fmt: skip
    return order


async def on_place_order(b: Batch, e: PlaceOrder, stored: StoredRecord) -> None:
    existing = await b.get("orders", (e.order_id,))
    changes = {
        "account": e.account, "strategy_id": e.strategy_id, "venue": e.venue, "instrument": e.instrument,
        "side": e.side.value, "order_type": e.order_type.value, "time_in_force": e.time_in_force.value,
        "quantity": e.quantity, "limit_price": e.limit_price, "reduce_only": e.reduce_only,
        "leg_group_id": e.leg_group_id, "created_ns": e.envelope.event_time_ns,
    }  # fmt: skip
    status = "new" if existing is None or existing["status"] == "unknown" else None
    if existing is None:
        changes["leaves_quantity"] = e.quantity
    await _order_step(b, e, stored, status, changes)


async def on_cancel_order(b: Batch, e: CancelOrder, stored: StoredRecord) -> None:
    await _order_step(b, e, stored, None, detail=f"cancel requested: {e.reason}".strip())


async def on_order_accepted(b: Batch, e: OrderAccepted, stored: StoredRecord) -> None:
    await _order_step(b, e, stored, "accepted", {"venue_order_id": e.venue_order_id})


async def on_order_rejected(b: Batch, e: OrderRejected, stored: StoredRecord) -> None:
    await _order_step(b, e, stored, "rejected", {"reason": e.reason, "leaves_quantity": ZERO}, e.reason)


async def on_order_canceled(b: Batch, e: OrderCanceled, stored: StoredRecord) -> None:
    await _order_step(b, e, stored, "canceled", {"reason": e.reason, "leaves_quantity": ZERO}, e.reason)


async def on_order_expired(b: Batch, e: OrderExpired, stored: StoredRecord) -> None:
    await _order_step(b, e, stored, "expired", {"leaves_quantity": ZERO})


async def on_transition_refused(b: Batch, e: OrderTransitionRefused, stored: StoredRecord) -> None:
    detail = f"refused {e.attempted} in {e.from_state} ({e.offending_event_id}) {e.reason}".strip()
    await _order_step(b, e, stored, None, detail=detail)


def apply_fill_to_position(position: Row, spec: InstrumentDefined, e: OrderFillEvent) -> None:
    """domain.portfolio's position arithmetic on one position row (quantity, cost_basis, realized_pnl, fees),
    in the domain's Decimal context so it agrees with the portfolio to the last digit."""
    with decimal_context():
        signed = units(spec, e.quantity) if e.side is Side.BUY else -units(spec, e.quantity)
        held, cost, realized = position_after_fill(position["quantity"], position["cost_basis"], signed, e.price,
                                                   is_inverse(spec))  # fmt: skip
        position["quantity"] = held
        position["cost_basis"] = cost
        position["realized_pnl"] += realized
        position["avg_cost"] = None if held == ZERO else q18(cost / held)
        position["fees"] += position_fee(spec, e) or ZERO
    position["fill_count"] += 1


def _spec(row: Row) -> InstrumentDefined:
    fields = {k: v for k, v in row.items() if k not in ("session_id", "event_time_ns")}
    return InstrumentDefined.model_construct(**fields)


async def on_instrument_defined(b: Batch, e: InstrumentDefined, stored: StoredRecord) -> None:
    b.put("instruments", {
        "session_id": b.session_id, "venue": e.venue, "instrument": e.instrument, "base": e.base,
        "quote": e.quote, "settlement": e.settlement, "kind": e.kind, "contract_size": e.contract_size,
        "tick_size": e.tick_size, "lot_size": e.lot_size, "min_notional": e.min_notional,
        "maker_fee_bps": e.maker_fee_bps, "taker_fee_bps": e.taker_fee_bps,
        "event_time_ns": e.envelope.event_time_ns,
    })  # fmt: skip


async def on_fill(b: Batch, e: OrderFillEvent, stored: StoredRecord) -> None:
    env = e.envelope
    if await b.exists("order_events", (env.event_id,)):
        return
    fill_key = (b.session_id, e.venue, e.venue_trade_id)
    if await b.exists("fills", fill_key):
        await _order_step(b, e, stored, None, detail=f"duplicate fill {e.venue_trade_id} ignored")
        return
    spec_row = await b.get("instruments", (b.session_id, e.venue, e.instrument))
    order = await b.get("orders", (e.order_id,))
    notional = (order["notional"] if order else ZERO) + e.price * e.quantity
    fees = (order["fees"] if order else ZERO) + e.fee
    status = "filled" if e.type == "order.filled" else "partially_filled"
    avg = q18(notional / e.cumulative_quantity) if e.cumulative_quantity > ZERO else None
    changes = {
        "filled_quantity": e.cumulative_quantity, "leaves_quantity": e.leaves_quantity, "notional": notional,
        "fees": fees, "avg_fill_price": avg,
    }  # fmt: skip
    if order is None or not order["instrument"]:
        changes.update(instrument=e.instrument, side=e.side.value)
    detail = "" if spec_row else f"no InstrumentDefined for {e.venue}:{e.instrument}: position not updated"
    order = await _order_step(b, e, stored, status, changes, detail)
    assert order is not None
    account = order["account"]
    spec = None if spec_row is None else _spec(spec_row)
    asset = e.instrument
    if spec is not None:
        held = await b.get("positions", (b.session_id, account, e.venue, spec.base))
        asset = position_asset(spec, None if held is None else held["quote"])
    b.put("fills", {
        "session_id": b.session_id, "venue": e.venue, "venue_trade_id": e.venue_trade_id,
        "event_id": env.event_id, "order_id": e.order_id, "account": account, "instrument": e.instrument,
        "asset": asset, "side": e.side.value, "price": e.price, "quantity": e.quantity, "fee": e.fee,
        "fee_currency": e.fee_currency, "liquidity": e.liquidity.value, "event_time_ns": env.event_time_ns,
    })  # fmt: skip
    if spec is None:
        return
    pos_key = (b.session_id, account, e.venue, asset)
    position = await b.get("positions", pos_key) or {
        "session_id": b.session_id, "account": account, "venue": e.venue, "asset": asset,
        "quote": spec.settlement, "instrument": e.instrument, "quantity": ZERO, "cost_basis": ZERO,
        "avg_cost": None, "realized_pnl": ZERO, "fees": ZERO, "fill_count": 0, "updated_ns": env.event_time_ns,
    }  # fmt: skip
    apply_fill_to_position(position, spec, e)
    position["instrument"] = e.instrument
    position["updated_ns"] = max(position["updated_ns"], env.event_time_ns)
    b.put("positions", position)


# -- signals ------------------------------------------------------------------------------------------------


async def on_spread_opportunity(b: Batch, e: SpreadOpportunityDetected, stored: StoredRecord) -> None:
    if await b.exists("signals", (e.opportunity_id,)):
        return
    t = e.envelope.event_time_ns
    values = {
        "buy_price": e.buy_price, "sell_price": e.sell_price, "quantity": e.quantity,
        "gross_edge_bps": e.gross_edge_bps, "net_edge_bps": e.net_edge_bps, "event_time_ns": t,
    }  # fmt: skip
    b.put("signals", {
        "opportunity_id": e.opportunity_id, "event_id": e.envelope.event_id, "session_id": b.session_id,
        "strategy_id": e.strategy_id, "instrument": e.instrument, "buy_venue": e.buy_venue,
        "sell_venue": e.sell_venue, **values,
    })  # fmt: skip
    key = (b.session_id, e.instrument, e.buy_venue, e.sell_venue)
    latest = await b.get("latest_spreads", key)
    if latest is None:
        latest = dict(zip(("session_id", "instrument", "buy_venue", "sell_venue"), key, strict=True))
        latest["count"] = 0
    latest["count"] += 1
    if latest.get("event_time_ns") is None or t >= latest["event_time_ns"]:
        latest.update(values, opportunity_id=e.opportunity_id)
    b.put("latest_spreads", latest)


# -- risk ---------------------------------------------------------------------------------------------------


async def _risk_state(b: Batch) -> Row:
    return await b.get("risk_state", (b.session_id,)) or {
        "session_id": b.session_id, "kill_switch_engaged": False, "kill_switch_reason": "",
        "kill_switch_changed_ns": None, "kill_switch_accounts": "[]", "checks_passed": 0, "rejections": 0,
        "last_rejection_order_id": None, "last_rejection_rule": None, "last_rejection_limit": None, "last_rejection_actual": None,
        "last_rejection_detail": None, "last_rejection_ns": None, "breaches": 0, "last_breach_drawdown": None,
        "last_breach_limit": None, "last_breach_action": None, "last_breach_ns": None, "updated_ns": 0,
    }  # fmt: skip


def _risk_event(b: Batch, e: EventBase, **values: Any) -> None:
    row = {"event_id": e.envelope.event_id, "session_id": b.session_id, "event_type": e.type, "order_id": None,
           "rule": None, "limit_value": None, "actual_value": None, "detail": "",
           "event_time_ns": e.envelope.event_time_ns}  # fmt: skip
    row.update(values)
    b.put("risk_events", row)


async def on_risk_passed(b: Batch, e: RiskCheckPassed, stored: StoredRecord) -> None:
    if await _order_step(b, e, stored, None, detail="risk check passed") is None:
        return
    state = await _risk_state(b)
    state["checks_passed"] += 1
    state["updated_ns"] = max(state["updated_ns"], e.envelope.event_time_ns)
    b.put("risk_state", state)


async def on_risk_rejected(b: Batch, e: RiskCheckRejected, stored: StoredRecord) -> None:
    detail = f"{e.rule}: {e.actual} > {e.limit} {e.detail}".strip()
    if (
        await _order_step(b, e, stored, "risk_rejected", {"reason": detail, "leaves_quantity": ZERO}, detail)
        is None
    ):
        return
    t = e.envelope.event_time_ns
    _risk_event(b, e, order_id=e.order_id, rule=e.rule, limit_value=e.limit, actual_value=e.actual,
                detail=e.detail)  # fmt: skip
    state = await _risk_state(b)
    state.update(rejections=state["rejections"] + 1, last_rejection_order_id=e.order_id, last_rejection_rule=e.rule,
                 last_rejection_limit=e.limit, last_rejection_actual=e.actual, last_rejection_detail=e.detail,
                 last_rejection_ns=t, updated_ns=max(state["updated_ns"], t))  # fmt: skip
    b.put("risk_state", state)


async def on_kill_switch(b: Batch, e: KillSwitchEngaged | KillSwitchReleased, stored: StoredRecord) -> None:
    """Risk holds two switches per account, the global one and the account's own: an event changes the one of
    its `scope` for its `account`; a release's `still_engaged` says whether the other one stays on (so a
    global release leaves an account whose own switch is on engaged). The session is engaged while any
    account is."""
    if await b.exists("risk_events", (e.envelope.event_id,)):
        return
    t = e.envelope.event_time_ns
    _risk_event(b, e, detail=e.reason)
    switch = await b.get("risk_kill_switches", (b.session_id, e.account)) or {
        "session_id": b.session_id, "account": e.account, "global_engaged": False, "account_engaged": False,
    }  # fmt: skip
    engaged = isinstance(e, KillSwitchEngaged)
    mine, other = (
        ("global_engaged", "account_engaged")
        if e.scope == "global"
        else ("account_engaged", "global_engaged")
    )
    switch[mine] = engaged
    if isinstance(e, KillSwitchReleased):
        switch[other] = e.still_engaged  # risk's own word on the other scope
    switch.update(
        engaged=switch["global_engaged"] or switch["account_engaged"], reason=e.reason, changed_ns=t
    )
    b.put("risk_kill_switches", switch)
    state = await _risk_state(b)
    accounts = set(json.loads(state["kill_switch_accounts"] or "[]")) - {e.account}
    if switch["engaged"]:
        accounts.add(e.account)
    engaged_for = json.dumps(sorted(accounts))
    still = f" (still engaged for {engaged_for})" if accounts and not engaged else ""
    state.update(kill_switch_engaged=bool(accounts), kill_switch_reason=e.reason + still,
                 kill_switch_changed_ns=t, kill_switch_accounts=engaged_for,
                 updated_ns=max(state["updated_ns"], t))  # fmt: skip
    b.put("risk_state", state)


async def on_drawdown(b: Batch, e: DrawdownBreached, stored: StoredRecord) -> None:
    if await b.exists("risk_events", (e.envelope.event_id,)):
        return
    t = e.envelope.event_time_ns
    _risk_event(b, e, rule="max_drawdown", limit_value=e.limit_fraction, actual_value=e.drawdown_fraction,
                detail=f"{e.action}: peak {e.peak_equity}, equity {e.equity}")  # fmt: skip
    state = await _risk_state(b)
    state.update(breaches=state["breaches"] + 1, last_breach_drawdown=e.drawdown_fraction,
                 last_breach_limit=e.limit_fraction, last_breach_action=e.action, last_breach_ns=t,
                 updated_ns=max(state["updated_ns"], t))  # fmt: skip
    b.put("risk_state", state)


# -- sessions, equity ---------------------------------------------------------------------------------------


async def _session_row(b: Batch) -> Row:
    return await b.get("sessions", (b.session_id,)) or {
        "session_id": b.session_id, "mode": None, "config_hash": None, "model_hash": None, "code_version": None,
        "parameters": None, "started_ns": None, "ended_ns": None, "input_events": None, "derived_events": None,
        "digest": None, "status": "unknown",
    }  # fmt: skip


async def on_session_started(b: Batch, e: SessionStarted, stored: StoredRecord) -> None:
    row = await _session_row(b)
    row.update(mode=e.mode, config_hash=e.config_hash, model_hash=e.model_hash, code_version=e.code_version,
               parameters=e.parameters, started_ns=e.envelope.event_time_ns)  # fmt: skip
    if row["status"] != "ended":
        row["status"] = "running"
    b.put("sessions", row)


async def on_session_ended(b: Batch, e: SessionEnded, stored: StoredRecord) -> None:
    row = await _session_row(b)
    row.update(ended_ns=e.envelope.event_time_ns, input_events=e.input_events, derived_events=e.derived_events,
               digest=e.digest, status="ended")  # fmt: skip
    b.put("sessions", row)


async def on_equity(b: Batch, e: EquitySampled, stored: StoredRecord) -> None:
    b.put("equity_samples", {
        "event_id": e.envelope.event_id, "session_id": b.session_id, "account": e.account,
        "quote_currency": e.quote_currency, "equity": e.equity, "cash": e.cash, "realized_pnl": e.realized_pnl,
        "unrealized_pnl": e.unrealized_pnl, "fees": e.fees, "event_time_ns": e.envelope.event_time_ns,
    })  # fmt: skip


REGISTRY: dict[str, Handler] = {
    "market.instrument_defined": on_instrument_defined,
    "command.place_order": on_place_order,
    "command.cancel_order": on_cancel_order,
    "order.accepted": on_order_accepted,
    "order.rejected": on_order_rejected,
    "order.partially_filled": on_fill,
    "order.filled": on_fill,
    "order.canceled": on_order_canceled,
    "order.expired": on_order_expired,
    "order.transition_refused": on_transition_refused,
    "signal.spread_opportunity": on_spread_opportunity,
    "risk.check_passed": on_risk_passed,
    "risk.check_rejected": on_risk_rejected,
    "risk.kill_switch_engaged": on_kill_switch,
    "risk.kill_switch_released": on_kill_switch,
    "risk.drawdown_breached": on_drawdown,
    "session.started": on_session_started,
    "session.ended": on_session_ended,
    "portfolio.equity_sampled": on_equity,
}
"""Event type -> handler. Types without a handler (market data, model scores) only advance the offset."""


async def prefetch(b: Batch, events: Iterable[EventBase]) -> None:
    """Load, in a few queries, the rows the batch's events will touch (instead of one query per event)."""
    history: list[Key] = []
    orders: list[Key] = []
    fills: list[Key] = []
    signals: list[Key] = []
    for e in events:
        if isinstance(e, OrderEvent | PlaceOrder | CancelOrder | RiskCheckPassed | RiskCheckRejected):
            history.append((e.envelope.event_id,))
            orders.append((e.order_id,))
            if isinstance(e, OrderFillEvent):
                fills.append((b.session_id, e.venue, e.venue_trade_id))
        elif isinstance(e, SpreadOpportunityDetected):
            signals.append((e.opportunity_id,))
    if history:
        await b.prefetch("order_events", history)
        await b.prefetch("orders", orders)
    if fills:
        await b.prefetch("fills", fills)
    if signals:
        await b.prefetch("signals", signals)
