"""Risk decisions. Every rejection names the rule and the numbers, so a trader can check it by hand."""

from __future__ import annotations

import uuid
from typing import Literal

from domain.events.base import EventBase
from domain.values import Amount, Side


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
    """`account`: the account whose risk engaged it ("" in sessions recorded before accounts were named);
    `scope`: "global" (an EngageKillSwitch for every account) or "account" (for this account only)."""

    type: Literal["risk.kill_switch_engaged"] = "risk.kill_switch_engaged"
    reason: str
    account: str = ""
    scope: Literal["global", "account"] = "global"


class KillSwitchReleased(EventBase):
    type: Literal["risk.kill_switch_released"] = "risk.kill_switch_released"
    reason: str
    account: str = ""
    scope: Literal["global", "account"] = "global"
    still_engaged: bool = False
    """True when the switch of the other scope stays engaged, so orders are still refused."""


class DrawdownBreached(EventBase):
    type: Literal["risk.drawdown_breached"] = "risk.drawdown_breached"
    peak_equity: Amount
    equity: Amount
    drawdown_fraction: Amount
    limit_fraction: Amount
    action: Literal["halt", "reduce_only"]
    account: str = ""


class DrawdownHaltReleased(EventBase):
    """An operator lifted the latched breach of `account`; the peak restarts at `peak_equity`."""

    type: Literal["risk.drawdown_halt_released"] = "risk.drawdown_halt_released"
    account: str
    reason: str
    operator: str
    peak_equity: Amount | None
    """The last equity sample, the new peak (None: no sample yet)."""


class LegExposureUnresolved(EventBase):
    """A spread trade left a one-sided position that the strategy could not repair within its budget of
    attempts. The strategy has stopped; an operator must flatten `quantity` (`side` says the exposure:
    "buy" = long) and start it again."""

    type: Literal["risk.leg_exposure_unresolved"] = "risk.leg_exposure_unresolved"
    strategy_id: str
    account: str
    leg_group_id: uuid.UUID
    instrument: str
    venue: str
    """Where the unmatched fills sit (the leg that filled more)."""
    side: Side
    quantity: Amount
    age_ns: int
    """Event time since the group's first fill."""
    attempts: int
    """Repair orders sent."""
    reason: str


class VenueCircuitChanged(EventBase):
    """The circuit breaker of one venue's connection changed state. An input of a live session (the live
    venue adapter reports it, recorded like the venue's order updates): "open" after `failures` requests to
    the venue failed in a row, and risk refuses every new order to `venue` (rule "venue_breaker"); "half_open"
    while a read-only probe tests the venue (orders still refused); "closed" once a probe succeeded."""

    type: Literal["risk.venue_circuit_changed"] = "risk.venue_circuit_changed"
    venue: str
    state: Literal["closed", "open", "half_open"]
    failures: int
    reason: str
    """The last failure (opened, still failing probe) or what closed it."""
