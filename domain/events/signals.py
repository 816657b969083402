"""Signals: what a strategy or a model saw, before any order is sent."""

from __future__ import annotations

import uuid
from typing import Literal

from domain.events.base import EventBase
from domain.values import Amount


class SpreadOpportunityDetected(EventBase):
    type: Literal["signal.spread_opportunity"] = "signal.spread_opportunity"
    opportunity_id: uuid.UUID
    strategy_id: str
    instrument: str
    buy_venue: str
    sell_venue: str
    buy_price: Amount
    sell_price: Amount
    quantity: Amount
    gross_edge_bps: Amount
    net_edge_bps: Amount
    """Edge after both legs' taker fees."""


class ModelScored(EventBase):
    type: Literal["signal.model_score"] = "signal.model_score"
    model_hash: str
    instrument: str
    score: Amount
    """Decimal, rounded by the producer, so the signal is byte-stable in the log."""
