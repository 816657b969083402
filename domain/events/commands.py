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
    legs_in_group: int = Field(default=1, ge=1)
    """How many orders, placed one after the other, risk judges together: all of them pass or none does (the
    legs of one spread). Risk holds the first ones until the last arrives. 1: judged alone."""
    repair: bool = False
    """A hedge or unwind of a failed leg: it takes risk off, so it passes a drawdown halt (and the kill switch
    when the limits allow repairs through it)."""


class CancelOrder(EventBase):
    type: Literal["command.cancel_order"] = "command.cancel_order"
    order_id: uuid.UUID
    venue: str
    reason: str = ""


# Operator commands. `account` None means every account (global); a name means that account only.


class EngageKillSwitch(EventBase):
    type: Literal["command.engage_kill_switch"] = "command.engage_kill_switch"
    reason: str
    operator: str
    account: str | None = None


class ReleaseKillSwitch(EventBase):
    """Releases the switch of its scope only: a global release leaves an account's own switch engaged."""

    type: Literal["command.release_kill_switch"] = "command.release_kill_switch"
    reason: str
    operator: str
    account: str | None = None


class ReleaseDrawdownHalt(EventBase):
    """Lifts a latched drawdown breach; the drawdown is measured again from the equity at release."""

    type: Literal["command.release_drawdown_halt"] = "command.release_drawdown_halt"
    reason: str
    operator: str
    account: str | None = None


class UpdateRiskLimits(EventBase):
    type: Literal["command.update_risk_limits"] = "command.update_risk_limits"
    limits: RiskLimits
    operator: str
    account: str | None = None


class StartStrategy(EventBase):
    """`strategy_id` None: every strategy (of `account`, or of every account)."""

    type: Literal["command.start_strategy"] = "command.start_strategy"
    strategy_id: str | None = None
    operator: str
    account: str | None = None


class StopStrategy(EventBase):
    """`strategy_id` None: every strategy (of `account`, or of every account)."""

    type: Literal["command.stop_strategy"] = "command.stop_strategy"
    strategy_id: str | None = None
    operator: str
    account: str | None = None


def applies_to(command_account: str | None, account: str) -> bool:
    """Whether an operator command scoped to `command_account` (None: global) concerns `account`."""
    return command_account is None or command_account == account
