"""The kernel: one event loop for backtest, replay and live; only the clock and the venues change.

Two clocks (as in hftbacktest): the engine runs on the local clock, the time it receives things (recorded
market data's receive time); a venue acts on its own clock. A venue stamps each order event with the local
time the engine learns of it (venue time + response latency; the venue time is in `exchange_time_ns`), so
what the deciders derive from it (a hedge after a fill) is stamped and sent at that time and reaches the
venue one order latency later: a round trip costs both latencies.

Per input event, in a fixed phase order:
1. venue events whose local time is up to the input's event time are released, earliest first;
2. venue matching: each venue (in name order) sees the market event and may fill resting orders;
3. the input is applied to the market view (`domain.market_view`: what deciders read of the market), then
   the input and every event derived from it run breadth-first through the deciders in their order (book,
   strategy, risk, orders, portfolio); each derived event is reported to `on_derived`;
4. execution: an order command whose risk check passed is sent to its venue; a cancel goes straight there.
Nothing here reads a wall clock or iterates an unordered collection, so the same inputs give the same
derived events, byte for byte. Every step runs in the domain's one Decimal context (`decimal_context`), so a
caller's `decimal.getcontext()` never changes a result.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from application.ports import MarketState, Venue
from domain.decider import Decider
from domain.events import (
    BookResyncNeeded,
    CancelOrder,
    EventBase,
    OrderRejected,
    PlaceOrder,
    RiskCheckPassed,
    RiskCheckRejected,
    derive_envelope,
)
from domain.market_view import ReferenceMarketView
from domain.values import decimal_context
from domain.wake import ALWAYS, WakeSpec

EXECUTION_SOURCE = "execution"


class SimulatedClock:
    """Engine time driven by event time; never goes backwards."""

    def __init__(self, start_ns: int = 0) -> None:
        self._now_ns = start_ns

    def now_ns(self) -> int:
        return self._now_ns

    def advance_to(self, time_ns: int) -> None:
        if time_ns > self._now_ns:
            self._now_ns = time_ns


def _detached(event: EventBase) -> None:
    raise RuntimeError(f"kernel restored from a snapshot but not attached: {event.type} has nowhere to go")


class _Slot:
    __slots__ = ("consumes", "decider", "state")

    def __init__(self, decider: Decider[Any]) -> None:
        self.decider = decider
        self.state = decider.initial_state()
        self.consumes: tuple[type, ...] | None = getattr(decider, "consumes", None)

    def wake(self) -> WakeSpec:
        wake = getattr(self.decider, "wake", None)
        return ALWAYS if wake is None else wake(self.state)


_EXECUTED = (PlaceOrder, RiskCheckRejected, RiskCheckPassed, CancelOrder)


class Kernel:
    def __init__(
        self,
        deciders: Sequence[Decider[Any]],
        venues: Mapping[str, Venue],
        on_derived: Callable[[EventBase], None],
        clock: SimulatedClock | None = None,
        market: MarketState | None = None,
    ) -> None:
        self._slots = [_Slot(d) for d in deciders]
        self.market: MarketState = market or ReferenceMarketView()
        """The market view the deciders read; a `MarketCore`'s view when a core runs the market rows."""
        self._venues = [venues[name] for name in sorted(venues)]
        self._venue_by_name = dict(venues)
        self._on_derived = on_derived
        self.clock = clock or SimulatedClock()
        self._awaiting_risk: dict[Any, PlaceOrder] = {}
        self._routes: dict[type, tuple[list[_Slot], bool]] = {}
        self.inputs = 0
        self.derived = 0
        self._skipped = 0

    def __getstate__(self) -> dict[str, Any]:
        # The output callback belongs to whoever runs the kernel (it is re-attached on restore), not to its state.
        return {key: value for key, value in self.__dict__.items() if key != "_on_derived"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._on_derived = _detached

    def attach(self, on_derived: Callable[[EventBase], None]) -> None:
        """Route derived events to `on_derived` (after restoring a snapshot)."""
        self._on_derived = on_derived

    def states(self) -> dict[str, Any]:
        """Decider states by name, for reports and tests (read only)."""
        return {slot.decider.name: slot.state for slot in self._slots}

    def feed(self, event: EventBase) -> None:
        time_ns = event.envelope.event_time_ns
        with decimal_context():
            self._release_due(time_ns)
            self.clock.advance_to(time_ns)
            self.inputs += 1
            for venue in self._venues:
                self._cascade(venue.on_market(event))
            self.market.apply(event)
            self._cascade((event,), inputs=1)

    def skipped(self, total: int, until_ns: int) -> None:
        """A core has run `total` market rows so far without calling in (no decider or venue could act on
        them), the last at `until_ns`: count them as inputs."""
        self.inputs += total - self._skipped
        self._skipped = total
        self.clock.advance_to(until_ns)

    def wake_specs(self) -> list[WakeSpec]:
        """Each owner's wake spec as of now: the deciders in kernel order, then the venues in name order
        (a venue without `wake` is woken on every row)."""
        specs = [slot.wake() for slot in self._slots]
        for venue in self._venues:
            wake = getattr(venue, "wake", None)
            specs.append(ALWAYS if wake is None else wake())
        return specs

    def feed_all(self, events: Iterable[EventBase]) -> None:
        for event in events:
            self.feed(event)

    def release_due(self, until_ns: int) -> None:
        """Run every venue event due up to `until_ns`, earliest first (ties: venue name order)."""
        with decimal_context():
            self._release_due(until_ns)

    def _release_due(self, until_ns: int) -> None:
        while True:
            due: list[tuple[int, int, EventBase]] = []
            for index, venue in enumerate(self._venues):
                due.extend((e.envelope.event_time_ns, index, e) for e in venue.drain(until_ns))
            if not due:
                return
            due.sort(key=lambda item: (item[0], item[1]))
            for time_ns, _, venue_event in due:
                self.clock.advance_to(time_ns)
                self._cascade((venue_event,))

    def venue_counters(self) -> dict[str, Any]:
        """Each venue's counters (`Venue.counters`), by venue name, for the run's report."""
        return {venue.name: dict(venue.counters()) for venue in self._venues}

    def _cascade(self, roots: Iterable[EventBase], inputs: int = 0) -> None:
        queue = deque(roots)
        while queue:
            event = queue.popleft()
            if inputs:
                inputs -= 1
            else:
                self.derived += 1
                self._on_derived(event)
                if type(event) is BookResyncNeeded:
                    self.market.apply(event)
            slots, executed = self._route(type(event))
            market = self.market
            for slot in slots:
                queue.extend(slot.decider.decide(slot.state, event, market))
                slot.state = slot.decider.evolve(slot.state, event, market)
            if executed:
                queue.extend(self._execute(event))

    def _route(self, event_type: type) -> tuple[list[_Slot], bool]:
        """The deciders that consume this event type (in their order), and whether execution acts on it."""
        route = self._routes.get(event_type)
        if route is None:
            slots = [s for s in self._slots if s.consumes is None or issubclass(event_type, s.consumes)]
            route = self._routes[event_type] = (slots, issubclass(event_type, _EXECUTED))
        return route

    def _execute(self, event: EventBase) -> list[EventBase]:
        if isinstance(event, PlaceOrder):
            self._awaiting_risk[event.order_id] = event
            return []
        if isinstance(event, RiskCheckRejected):
            self._awaiting_risk.pop(event.order_id, None)
            return []
        if isinstance(event, RiskCheckPassed):
            command = self._awaiting_risk.pop(event.order_id, None)
            return [] if command is None else self._submit(command, command.venue, event)
        if isinstance(event, CancelOrder):
            return self._submit(event, event.venue, event)
        return []

    def _submit(
        self, command: PlaceOrder | CancelOrder, venue_name: str, cause: EventBase
    ) -> list[EventBase]:
        venue = self._venue_by_name.get(venue_name)
        if venue is not None:
            return venue.submit(command)
        return [
            OrderRejected(
                envelope=derive_envelope(cause.envelope, EXECUTION_SOURCE, 0),
                order_id=command.order_id,
                venue=venue_name,
                reason=f"unknown venue {venue_name!r}",
            )
        ]
