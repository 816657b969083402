"""Same inputs, same bytes: a seeded pseudo-random session through strategy + risk (+ a seeded toy venue)
gives the same digest in this process and in fresh interpreters with different PYTHONHASHSEED.

Run as a script, this file prints the digest of the session (that is what the subprocesses do).
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections import deque
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from domain.events import (
    Digest,
    EngageKillSwitch,
    Envelope,
    EquitySampled,
    EventBase,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderPartiallyFilled,
    PlaceOrder,
    QuoteTick,
    ReleaseKillSwitch,
    RiskCheckPassed,
    RiskCheckRejected,
    SpreadOpportunityDetected,
    derive_envelope,
    input_event_id,
)
from domain.market_view import ReferenceMarketView
from domain.risk import RiskDecider
from domain.spread_strategy import SpreadStrategy, SpreadStrategyConfig
from domain.values import Liquidity, OrderType, RiskLimits

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
SEED = 20240601
VENUES = ("A", "B", "C")
SESSION = "determinism"
INSTRUMENT = "BTC-USDT"


class ToyVenue:
    """Seeded fills for orders whose risk check passed: IOC limits fill fully, partly or not at all."""

    name = "toy-venue"

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.orders: dict[Any, PlaceOrder] = {}
        self.trades = 0

    def on_event(self, event: EventBase) -> list[EventBase]:
        if isinstance(event, PlaceOrder):
            self.orders[event.order_id] = event
            return []
        if not isinstance(event, RiskCheckPassed) or event.order_id not in self.orders:
            return []
        order = self.orders.pop(event.order_id)
        outcome = (
            "full" if order.order_type is OrderType.MARKET else self.rng.choice(["full", "part", "none"])
        )
        if outcome == "none":
            return [OrderExpired(envelope=derive_envelope(event.envelope, self.name, 0), **_ids(order))]
        quantity = order.quantity
        if outcome == "part":
            quantity = (order.quantity * Decimal(self.rng.randint(1, 9)) / 10).quantize(Decimal("0.001"))
        self.trades += 1
        cls = OrderFilled if quantity == order.quantity else OrderPartiallyFilled
        out: list[EventBase] = [
            cls(
                envelope=derive_envelope(event.envelope, self.name, 0),
                **_ids(order),
                instrument=order.instrument,
                side=order.side,
                price=order.limit_price or Decimal("100"),
                quantity=quantity,
                fee=Decimal("0.01"),
                fee_currency="USDT",
                liquidity=Liquidity.TAKER,
                venue_trade_id=f"T{self.trades}",
                cumulative_quantity=quantity,
                leaves_quantity=order.quantity - quantity,
            )
        ]
        if cls is OrderPartiallyFilled:
            out.append(OrderCanceled(envelope=derive_envelope(event.envelope, self.name, 1), **_ids(order)))
        return out


def _ids(order: PlaceOrder) -> dict[str, Any]:
    return {"order_id": order.order_id, "venue": order.venue}


def inputs(seed: int = SEED, count: int = 600) -> list[EventBase]:
    rng = random.Random(seed)
    events: list[EventBase] = []
    t = 1_000_000_000
    mid = 30_000_00  # cents
    for seq in range(count):
        t += rng.randint(1, 400) * 1_000_000
        env = Envelope(
            event_id=input_event_id(SESSION, "in", seq),
            session_id=SESSION,
            sequence=seq,
            event_time_ns=t,
            ingest_time_ns=t,
            source="test",
        )
        if seq in (300, 360):
            cls = EngageKillSwitch if seq == 300 else ReleaseKillSwitch
            events.append(cls(envelope=env, reason="drill", operator="ops"))
            continue
        if seq % 97 == 96:
            equity = Decimal(rng.randint(90_000, 110_000))
            events.append(
                EquitySampled(
                    envelope=env,
                    account="acc-1",
                    quote_currency="USDT",
                    equity=equity,
                    cash=equity,
                    realized_pnl=Decimal(0),
                    unrealized_pnl=Decimal(0),
                    fees=Decimal(0),
                )
            )
            continue
        mid += rng.randint(-500, 500)
        skew = rng.randint(-12_000, 12_000) if rng.random() < 0.3 else rng.randint(-500, 500)
        half_spread = rng.randint(1, 300)
        events.append(
            QuoteTick(
                envelope=env,
                venue=rng.choice(VENUES),
                instrument=INSTRUMENT if rng.random() < 0.95 else "ETH-USDT",
                bid_price=Decimal(mid + skew - half_spread).scaleb(-2),
                bid_size=Decimal(rng.randint(1, 5000)).scaleb(-3),
                ask_price=Decimal(mid + skew + half_spread).scaleb(-2),
                ask_size=Decimal(rng.randint(1, 5000)).scaleb(-3),
            )
        )
    return events


def run_session(seed: int = SEED) -> tuple[str, dict[str, int]]:
    strategy = SpreadStrategy(
        SpreadStrategyConfig(
            strategy_id="spread-1",
            account="acc-1",
            instrument=INSTRUMENT,
            venues=VENUES,
            taker_fee_bps={"A": Decimal("10"), "B": Decimal("7.5"), "C": Decimal("5")},
            min_edge_bps=Decimal("2"),
            max_quote_age_ns=2_000_000_000,
            min_size=Decimal("0.01"),
            max_order_quantity=Decimal("1.5"),
            max_notional_per_trade=Decimal("40000"),
            quantity_step=Decimal("0.001"),
            cooldown_ns=300_000_000,
            max_legs_in_flight=2,
            on_leg_failure="hedge",
        )
    )
    risk = RiskDecider(
        "acc-1",
        RiskLimits(
            max_order_notional=Decimal("45000"),
            max_position_per_asset_venue=Decimal("3"),
            max_gross_exposure=Decimal("200000"),
            max_open_orders=6,
            price_collar_bps=Decimal("60"),
            max_orders_per_venue_per_second=4,
            max_drawdown_fraction=Decimal("0.08"),
            drawdown_action="reduce_only",
        ),
    )
    deciders: list[Any] = [strategy, risk]
    states: list[Any] = [d.initial_state() for d in deciders]
    venue = ToyVenue(random.Random(seed + 1))
    digest = Digest()
    view = ReferenceMarketView()
    counts: dict[str, int] = {}
    for event in inputs(seed):
        queue: deque[EventBase] = deque([event])
        while queue:
            current = queue.popleft()
            digest.add_events([current])
            counts[current.type] = counts.get(current.type, 0) + 1
            view.apply(current)
            for index, decider in enumerate(deciders):
                queue.extend(decider.decide(states[index], current, view))
                states[index] = decider.evolve(states[index], current, view)
            queue.extend(venue.on_event(current))
    return digest.hexdigest(), counts


def test_session_exercises_the_interesting_paths() -> None:
    _, counts = run_session()
    assert counts.get(SpreadOpportunityDetected.model_fields["type"].default, 0) >= 5, counts
    assert counts.get("risk.check_passed", 0) >= 10, counts
    assert counts.get(RiskCheckRejected.model_fields["type"].default, 0) >= 1, counts
    assert counts.get("order.partially_filled", 0) >= 1, counts
    assert counts.get("risk.kill_switch_engaged", 0) == 1, counts


def test_same_digest_in_process_and_across_hash_seeds() -> None:
    in_process, _ = run_session()
    assert run_session()[0] == in_process
    digests = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(REPO)}
        result = subprocess.run(
            [sys.executable, __file__], cwd=REPO, env=env, capture_output=True, check=True, timeout=300
        )
        digests.append(result.stdout)
    assert digests[0] == digests[1]
    assert digests[0].decode().strip() == in_process


if __name__ == "__main__":
    print(run_session()[0])
