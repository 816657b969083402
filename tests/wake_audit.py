"""The soundness audit of wake specs, and the two ways of running a stream that must agree.

`audit_run` runs every input through the kernel (the reference path) and, on each market row, evaluates every
owner's spec first (`domain.wake.evaluate`, the view as before the row). The soundness rule says: where an
owner's spec is false, its `decide` of that row returned [] and its `evolve` of that row changed nothing (the
state compared pickled); a venue whose spec is false released nothing at that row and answered nothing to it.
Every breach is returned as a readable line. `full_run` and `gated_run` give the derived events (canonical
bytes) of the ungated kernel and of the `next_wake` loop over the pure-Python core.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from application.engine import Kernel
from application.fast_run import ReferenceMarketCore, run_gated
from application.ports import Venue
from domain.decider import Decider
from domain.events import EventBase, encode
from domain.market_view import MarketView
from domain.wake import evaluate, row_kind


class _AuditedDecider:
    """Passes through to `inner`; notes whether `decide` derived anything from the row being watched."""

    def __init__(self, inner: Decider[Any]) -> None:
        self.inner = inner
        self.name = inner.name
        if hasattr(inner, "consumes"):
            self.consumes = inner.consumes
        self.watched: EventBase | None = None
        self.acted = False
        self.check_state = False
        """Set while the watched row's spec is false: `evolve` of that row must change nothing."""
        self.changed = False

    def initial_state(self) -> Any:
        return self.inner.initial_state()

    def wake(self, state: Any) -> Any:
        wake = getattr(self.inner, "wake", None)
        return None if wake is None else wake(state)

    def decide(self, state: Any, event: EventBase, view: MarketView) -> list[EventBase]:
        out = self.inner.decide(state, event, view)
        if out and event is self.watched:
            self.acted = True
        return out

    def evolve(self, state: Any, event: EventBase, view: MarketView) -> Any:
        if not (self.check_state and event is self.watched):
            return self.inner.evolve(state, event, view)
        before = pickle.dumps(state)
        state = self.inner.evolve(state, event, view)
        self.changed = pickle.dumps(state) != before
        return state


class _AuditedVenue:
    """Passes through to `inner`; notes whether the venue released or answered anything while watched."""

    def __init__(self, inner: Venue) -> None:
        self.inner = inner
        self.name = inner.name
        self.watching = False
        self.acted = False

    def _note(self, out: list[EventBase]) -> list[EventBase]:
        if out and self.watching:
            self.acted = True
        return out

    def submit(self, command: EventBase) -> list[EventBase]:
        return self.inner.submit(command)

    def on_market(self, event: EventBase) -> list[EventBase]:
        return self._note(self.inner.on_market(event))

    def drain(self, until_ns: int) -> list[EventBase]:
        return self._note(self.inner.drain(until_ns))

    def counters(self) -> Mapping[str, Any]:
        return self.inner.counters()

    def wake(self) -> Any:
        return self.inner.wake()  # type: ignore[attr-defined]


@dataclass
class Audit:
    rows: int = 0
    woken: int = 0
    """Market rows on which some owner's spec was true."""
    acted: int = 0
    """Market rows on which some owner really acted (derived or released something)."""
    breaches: list[str] = field(default_factory=list)


def audit_run(deciders: Sequence[Decider[Any]], venues: Mapping[str, Venue], inputs: Sequence[EventBase],
              check_states: bool = True) -> tuple[Audit, list[bytes]]:  # fmt: skip
    """The reference run of `inputs`, audited (module docstring); also returns its derived events."""
    audited = [_AuditedDecider(d) for d in deciders]
    proxies = {name: _AuditedVenue(venue) for name, venue in venues.items()}
    out: list[bytes] = []
    kernel = Kernel(audited, proxies, lambda e: out.append(encode(e)))
    owners: list[Any] = [*audited, *(proxies[name] for name in sorted(proxies))]
    audit = Audit()
    for event in inputs:
        if row_kind(event) is None:
            kernel.feed(event)
            continue
        audit.rows += 1
        verdicts = [evaluate(spec, kernel.market, event) for spec in kernel.wake_specs()]
        audit.woken += any(verdicts)
        for owner, woken in zip(owners, verdicts, strict=True):
            owner.acted = False
            if isinstance(owner, _AuditedDecider):
                owner.watched, owner.check_state, owner.changed = event, check_states and not woken, False
            else:
                owner.watching = True
        kernel.feed(event)
        for owner, woken in zip(owners, verdicts, strict=True):
            if owner.acted and not woken:
                audit.breaches.append(f"{owner.name} acted on {event.type} at {event.envelope.event_time_ns} "
                                      f"(sequence {event.envelope.sequence}) with its wake spec false")  # fmt: skip
            if isinstance(owner, _AuditedDecider) and owner.changed:
                audit.breaches.append(f"{owner.name} changed its state on {event.type} at "
                                      f"{event.envelope.event_time_ns} with its wake spec false")  # fmt: skip
        audit.acted += any(owner.acted for owner in owners)
        for owner in owners:
            if isinstance(owner, _AuditedDecider):
                owner.watched, owner.check_state = None, False
            else:
                owner.watching = False
    kernel.release_due(kernel.clock.now_ns())
    return audit, out


VenueFactory = Callable[[], Mapping[str, Venue]]


def full_run(deciders: Sequence[Decider[Any]], venues: Mapping[str, Venue], inputs: Sequence[EventBase]) -> list[bytes]:
    out: list[bytes] = []
    kernel = Kernel(deciders, venues, lambda e: out.append(encode(e)))
    for event in inputs:
        kernel.feed(event)
    kernel.release_due(kernel.clock.now_ns())
    return out


def gated_run(deciders: Sequence[Decider[Any]], venues: Mapping[str, Venue], inputs: Sequence[EventBase]
              ) -> tuple[list[bytes], int]:  # fmt: skip
    """The derived events of the `next_wake` loop over the reference core, and the rows it skipped."""
    out: list[bytes] = []
    observers = [venue.observe for _, venue in sorted(venues.items())]  # type: ignore[attr-defined]
    core = ReferenceMarketCore(inputs, observers)
    kernel = Kernel(deciders, venues, lambda e: out.append(encode(e)), market=core.view)
    run_gated(kernel, core)
    return out, core.skipped
