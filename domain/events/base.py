"""The base of every event: a frozen pydantic model with a `type` discriminator and a `schema_version`."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from domain.events.envelope import Envelope


class EventBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    # Subclasses narrow `type` to a Literal and may raise SCHEMA_VERSION when their shape changes.
    SCHEMA_VERSION: ClassVar[int] = 1

    type: str
    schema_version: int = 1
    envelope: Envelope
