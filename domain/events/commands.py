"""Commands: requests to act. They may be refused; the events that follow say what happened."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import Field

from domain.events.base import EventBase
from domain.values import Amount, OrderType, RiskLimits, Side, TimeInForce


class PlaceOrder(EventBase):
    type: Literal["command.place_order"] = "command.place_order"
    order_id: uuid.UUID
    account: str
    strategy_id: str
    venue: str
    instrument: str
    side: Side
    order_type: OrderType
    time_in_force: TimeInForce = TimeInForce.GTC
    quantity: Amount = Field(gt=0)
    limit_price: Amount | None = None
    reduce_only: bool = False
    post_only: bool = False
    """Maker only (Binance LIMIT_MAKER / GTX): refused by the venue if it would take on arrival."""
    leg_group_id: uuid.UUID | None = None
    """Groups the legs of one spread trade, so a failed leg can be hedged or unwound."""


class CancelOrder(EventBase):
    type: Literal["command.cancel_order"] = "command.cancel_order"
    order_id: uuid.UUID
    venue: str
    reason: str = ""


class EngageKillSwitch(EventBase):
    type: Literal["command.engage_kill_switch"] = "command.engage_kill_switch"
    reason: str
    operator: str


class ReleaseKillSwitch(EventBase):
    type: Literal["command.release_kill_switch"] = "command.release_kill_switch"
    reason: str
    operator: str


class UpdateRiskLimits(EventBase):
    type: Literal["command.update_risk_limits"] = "command.update_risk_limits"
    limits: RiskLimits
    operator: str


class StartStrategy(EventBase):
    type: Literal["command.start_strategy"] = "command.start_strategy"
    strategy_id: str
    operator: str


class StopStrategy(EventBase):
    type: Literal["command.stop_strategy"] = "command.stop_strategy"
    strategy_id: str
    operator: str
