"""The kill switch through the whole kernel: a resting order at the simulated venue is canceled there, and a
new order never reaches it. (The command enters as an input, the way `cse command` appends it to a session.)"""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from adapters.simulated_venue import build_simulated_venues
from application.engine import Kernel
from domain.events import (
    CancelOrder,
    EngageKillSwitch,
    Envelope,
    EventBase,
    InstrumentDefined,
    KillSwitchEngaged,
    OrderAccepted,
    OrderCanceled,
    PlaceOrder,
    QuoteTick,
    RiskCheckRejected,
    input_event_id,
)
from domain.orders import OrdersDecider, OrdersState, OrderStatus
from domain.risk import RiskDecider
from domain.values import OrderType, RiskLimits, Side, TimeInForce

pytestmark = pytest.mark.unit

D = Decimal
MS = 1_000_000


def test_kill_switch_cancels_the_resting_order_at_the_venue_and_blocks_new_ones() -> None:
    derived: list[EventBase] = []
    kernel = Kernel([RiskDecider("acc", RiskLimits()), OrdersDecider()], build_simulated_venues(["A"]),
                    derived.append)  # fmt: skip
    seq = iter(range(1, 100))

    def env(t_ms: int) -> Envelope:
        n = next(seq)
        return Envelope(event_id=input_event_id("s", "in", n), session_id="s", sequence=n,
                        event_time_ns=t_ms * MS, ingest_time_ns=t_ms * MS, source="in")  # fmt: skip

    def quote(t_ms: int) -> QuoteTick:
        return QuoteTick(envelope=env(t_ms), venue="A", instrument="BTCUSDT", bid_price=D("100.00"),
                         bid_size=D("5"), ask_price=D("100.10"), ask_size=D("5"))  # fmt: skip

    def order(t_ms: int) -> PlaceOrder:
        return PlaceOrder(envelope=env(t_ms), order_id=uuid.uuid5(uuid.NAMESPACE_OID, f"o{t_ms}"), account="acc",
                          strategy_id="manual", venue="A", instrument="BTCUSDT", side=Side.BUY,
                          order_type=OrderType.LIMIT, time_in_force=TimeInForce.GTC, quantity=D("1"),
                          limit_price=D("99.80"))  # fmt: skip

    # The venue trades only what the session defines (the first record of each market-data stream).
    spec = InstrumentDefined(envelope=env(0), venue="A", instrument="BTCUSDT", base="BTC", quote="USDT",
                             settlement="USDT", kind="spot", contract_size=D("1"), tick_size=D("0.01"),
                             lot_size=D("0.00001"), min_notional=D("5"), maker_fee_bps=D("10"),
                             taker_fee_bps=D("10"))  # fmt: skip
    resting = order(10)
    kernel.feed_all([spec, quote(0), resting, quote(50)])
    assert any(isinstance(e, OrderAccepted) and e.order_id == resting.order_id for e in derived)
    kernel.feed(EngageKillSwitch(envelope=env(100), reason="desk closed", operator="alice"))
    late = order(110)
    kernel.feed_all([late, quote(200)])

    cancels = [e for e in derived if isinstance(e, CancelOrder)]
    assert [(c.order_id, c.envelope.event_time_ns) for c in cancels] == [(resting.order_id, 100 * MS)]
    assert any(isinstance(e, KillSwitchEngaged) for e in derived)
    (canceled,) = [e for e in derived if isinstance(e, OrderCanceled)]
    assert canceled.order_id == resting.order_id and canceled.reason == "kill switch: desk closed"
    (refused,) = [e for e in derived if isinstance(e, RiskCheckRejected)]
    assert refused.order_id == late.order_id and refused.rule == "kill_switch"
    orders: OrdersState = kernel.states()["orders"]
    assert orders.orders[resting.order_id].status is OrderStatus.CANCELED
