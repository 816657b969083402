"""The event catalogue. Import events from here; `codec` holds the canonical encoding."""

from domain.events.base import EventBase
from domain.events.codec import (
    EVENT_TYPES,
    Digest,
    Event,
    EventDecodeError,
    decode,
    decode_mapping,
    encode,
    json_schemas,
)
from domain.events.commands import (
    CancelOrder,
    EngageKillSwitch,
    PlaceOrder,
    ReleaseKillSwitch,
    StartStrategy,
    StopStrategy,
    UpdateRiskLimits,
)
from domain.events.envelope import Envelope, derive_envelope, input_event_id
from domain.events.market import (
    BookDelta,
    BookResyncNeeded,
    BookSnapshot,
    InstrumentDefined,
    Level,
    QuoteTick,
    TradeTick,
)
from domain.events.orders import (
    OrderAccepted,
    OrderCanceled,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderFillEvent,
    OrderPartiallyFilled,
    OrderRejected,
    OrderTransitionRefused,
)
from domain.events.portfolio import CurrencyValuation, EquitySampled
from domain.events.risk import (
    DrawdownBreached,
    KillSwitchEngaged,
    KillSwitchReleased,
    RiskCheckPassed,
    RiskCheckRejected,
)
from domain.events.session import InputsMerged, SessionEnded, SessionStarted
from domain.events.signals import ModelScored, SpreadOpportunityDetected

__all__ = [
    "EVENT_TYPES", "BookDelta", "BookResyncNeeded", "BookSnapshot", "CancelOrder", "Digest", "DrawdownBreached",
    "CurrencyValuation", "EngageKillSwitch", "Envelope", "InstrumentDefined", "EquitySampled", "Event", "EventBase", "EventDecodeError", "KillSwitchEngaged",
    "KillSwitchReleased", "Level", "ModelScored", "OrderAccepted", "OrderCanceled", "OrderEvent", "OrderExpired",
    "OrderFillEvent", "OrderFilled", "OrderPartiallyFilled", "OrderRejected", "OrderTransitionRefused",
    "PlaceOrder", "QuoteTick", "ReleaseKillSwitch", "RiskCheckPassed", "RiskCheckRejected", "SessionEnded",
    "SessionStarted", "InputsMerged", "SpreadOpportunityDetected", "StartStrategy", "StopStrategy", "TradeTick",
    "UpdateRiskLimits", "decode", "decode_mapping", "derive_envelope", "encode", "input_event_id",
    "json_schemas",
]  # fmt: skip
