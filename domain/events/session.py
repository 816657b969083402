"""Session markers: what a session ran with, so a replay can refuse a different build or config."""

from __future__ import annotations

from typing import Literal

from domain.events.base import EventBase


class SessionStarted(EventBase):
    type: Literal["session.started"] = "session.started"
    mode: Literal["import", "backtest", "live", "replay"]
    config_hash: str
    model_hash: str
    code_version: str
    parameters: str = "{}"
    """Canonical JSON of what the session ran with (config, input session and streams), for the replay."""


class SessionEnded(EventBase):
    type: Literal["session.ended"] = "session.ended"
    input_events: int
    derived_events: int
    digest: str
