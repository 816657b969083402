"""Canonical JSON for events: the bytes that are logged, sent on Kafka and digested.

Canonical means: fields in declaration order (fixed by the class, not by a dict built at run time),
no insignificant whitespace, UUIDs lowercase, every amount (`domain.values.Amount`) a JSON string in one
normal form (`domain.values.canonical_amount`: plain notation, no exponent, no trailing zeros, `0` for any
zero), so equal amounts are equal bytes however a source wrote them. Decoding refuses unknown types and
versions newer than the code, and upcasts older versions through registered steps.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from typing import Annotated, Any, Union

from pydantic import Field, TypeAdapter, ValidationError

from domain.events.base import EventBase
from domain.events.commands import (
    CancelOrder,
    EngageKillSwitch,
    PlaceOrder,
    ReleaseDrawdownHalt,
    ReleaseKillSwitch,
    StartStrategy,
    StopStrategy,
    UpdateRiskLimits,
)
from domain.events.market import (
    BookDelta,
    BookResyncNeeded,
    BookSnapshot,
    InstrumentDefined,
    QuoteTick,
    TradeTick,
)
from domain.events.orders import (
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderPartiallyFilled,
    OrderRejected,
    OrderTransitionRefused,
)
from domain.events.portfolio import EquitySampled, upcast_equity_sampled_v1
from domain.events.risk import (
    DrawdownBreached,
    DrawdownHaltReleased,
    KillSwitchEngaged,
    KillSwitchReleased,
    LegExposureUnresolved,
    RiskCheckPassed,
    RiskCheckRejected,
    VenueCircuitChanged,
)
from domain.events.session import FilesImported, InputsMerged, SessionEnded, SessionStarted
from domain.events.signals import ModelScored, SpreadOpportunityDetected

EVENT_CLASSES: tuple[type[EventBase], ...] = (
    QuoteTick, TradeTick, BookSnapshot, BookDelta, BookResyncNeeded, InstrumentDefined,
    SpreadOpportunityDetected, ModelScored,
    PlaceOrder, CancelOrder, EngageKillSwitch, ReleaseKillSwitch, UpdateRiskLimits, StartStrategy, StopStrategy,
    ReleaseDrawdownHalt,
    OrderAccepted, OrderRejected, OrderPartiallyFilled, OrderFilled, OrderCanceled, OrderExpired,
    OrderTransitionRefused,
    RiskCheckPassed, RiskCheckRejected, KillSwitchEngaged, KillSwitchReleased, DrawdownBreached,
    DrawdownHaltReleased, LegExposureUnresolved, VenueCircuitChanged,
    EquitySampled,
    SessionStarted, InputsMerged, SessionEnded, FilesImported,
)  # fmt: skip

Event = Annotated[
    Union[  # noqa: UP007 - a runtime Union is what the discriminator needs
        QuoteTick, TradeTick, BookSnapshot, BookDelta, BookResyncNeeded, InstrumentDefined,
        SpreadOpportunityDetected, ModelScored,
        PlaceOrder, CancelOrder, EngageKillSwitch, ReleaseKillSwitch, UpdateRiskLimits, StartStrategy,
        StopStrategy, ReleaseDrawdownHalt,
        OrderAccepted, OrderRejected, OrderPartiallyFilled, OrderFilled, OrderCanceled, OrderExpired,
        OrderTransitionRefused,
        RiskCheckPassed, RiskCheckRejected, KillSwitchEngaged, KillSwitchReleased, DrawdownBreached,
        DrawdownHaltReleased, LegExposureUnresolved, VenueCircuitChanged,
        EquitySampled,
        SessionStarted, InputsMerged, SessionEnded, FilesImported,
    ],  # fmt: skip
    Field(discriminator="type"),
]

EVENT_TYPES: dict[str, type[EventBase]] = {cls.model_fields["type"].default: cls for cls in EVENT_CLASSES}

_EVENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(Event)

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
# (type, from_version) -> step to from_version + 1. Filled as schemas evolve; the chain must reach current.
UPCASTERS: dict[tuple[str, int], Upcaster] = {
    ("portfolio.equity_sampled", 1): upcast_equity_sampled_v1,
}


class EventDecodeError(ValueError):
    """The bytes are not an event this code can read; `reason` says why, for the dead-letter record."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def encode(event: EventBase) -> bytes:
    """The canonical JSON of an event: `model_dump_json()`'s text as UTF-8, taken straight from the serializer
    (`model_dump_json` decodes these very bytes to a str; encoding it back would copy them twice)."""
    return event.__pydantic_serializer__.to_json(event)


def decode(data: bytes | str) -> EventBase:
    # Fast path: current-version events validate straight from JSON; anything else takes the checked path.
    try:
        event: EventBase = _EVENT_ADAPTER.validate_json(data)
        if event.schema_version == type(event).SCHEMA_VERSION:
            return event
    except ValidationError:
        pass
    try:
        raw = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EventDecodeError(f"not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise EventDecodeError(f"an event is a JSON object, got {type(raw).__name__}")
    return decode_mapping(raw)


def decode_mapping(raw: dict[str, Any]) -> EventBase:
    event_type = raw.get("type")
    if not isinstance(event_type, str) or event_type not in EVENT_TYPES:
        raise EventDecodeError(f"unknown event type {event_type!r}")
    cls = EVENT_TYPES[event_type]
    version = raw.get("schema_version", 1)
    if not isinstance(version, int) or version < 1:
        raise EventDecodeError(f"{event_type}: schema_version must be a positive integer, got {version!r}")
    if version > cls.SCHEMA_VERSION:
        raise EventDecodeError(
            f"{event_type}: schema_version {version} is newer than this code reads ({cls.SCHEMA_VERSION});"
            " upgrade the consumer"
        )
    while version < cls.SCHEMA_VERSION:
        step = UPCASTERS.get((event_type, version))
        if step is None:
            raise EventDecodeError(f"{event_type}: no upcaster from schema_version {version}")
        raw = {**step(raw), "schema_version": version + 1}
        version += 1
    try:
        event: EventBase = _EVENT_ADAPTER.validate_python(raw)
    except ValidationError as exc:
        raise EventDecodeError(f"{event_type}: invalid fields: {_summarize(exc)}") from exc
    return event


def _summarize(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])


class Digest:
    """SHA-256 over the canonical bytes of events, each followed by a newline: equal digests, equal events."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.count = 0

    def add(self, canonical: bytes) -> None:
        self._hash.update(canonical)
        self._hash.update(b"\n")
        self.count += 1

    def add_events(self, events: Iterable[EventBase]) -> None:
        for event in events:
            self.add(encode(event))

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema per event type, for docs/events and for outside consumers of the topics."""
    return {name: cls.model_json_schema(mode="serialization") for name, cls in sorted(EVENT_TYPES.items())}
