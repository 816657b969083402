"""Risk decisions. Every rejection names the rule and the numbers, so a trader can check it by hand."""

from __future__ import annotations

import uuid
from typing import Literal

from domain.events.base import EventBase
from domain.values import Amount


class RiskCheckPassed(EventBase):
    type: Literal["risk.check_passed"] = "risk.check_passed"
    order_id: uuid.UUID


class RiskCheckRejected(EventBase):
    type: Literal["risk.check_rejected"] = "risk.check_rejected"
    order_id: uuid.UUID
    rule: str
    limit: Amount
    actual: Amount
    detail: str = ""


class KillSwitchEngaged(EventBase):
    type: Literal["risk.kill_switch_engaged"] = "risk.kill_switch_engaged"
    reason: str


class KillSwitchReleased(EventBase):
    type: Literal["risk.kill_switch_released"] = "risk.kill_switch_released"
    reason: str


class DrawdownBreached(EventBase):
    type: Literal["risk.drawdown_breached"] = "risk.drawdown_breached"
    peak_equity: Amount
    equity: Amount
    drawdown_fraction: Amount
    limit_fraction: Amount
    action: Literal["halt", "reduce_only"]
