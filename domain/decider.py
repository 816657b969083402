"""The shape every stateful piece of trading logic takes, so one kernel runs them all (backtest and live).

`decide` looks at the state, an event and the market view (`domain.market_view`: last quotes, trades and
books, including the event being decided on) and returns the events it derives; it never mutates. `evolve`
folds an event (input or derived) into the state. For speed, `evolve` may update the state object in place
and return it: the state belongs to the runner and nothing else holds it. Both are pure functions of their
arguments: no I/O, no clock (time comes from `event.envelope.event_time_ns`), no unseeded randomness.
Derived events get their envelope from `derive_envelope(cause.envelope, self.name, index)`.

Optional: a class attribute `consumes`, a tuple of event classes. A decider that has one promises that for
any other event `decide` returns [] and `evolve` changes nothing, so the kernel skips it for those events
(most inputs are quotes, which most deciders ignore). Without it, the decider sees every event.

Market state is never copied into a state: it is read from the view. Optional: `wake(state) -> WakeSpec`
(`domain.wake`) declares on which market rows the decider could act; a run may skip it on the others. Without
it, the decider is woken on every market row.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from domain.events import EventBase
from domain.market_view import MarketView

S = TypeVar("S")


class Decider(Protocol[S]):
    name: str
    """Stable id of this decider instance; part of every derived event id, so never change it casually."""

    def initial_state(self) -> S: ...

    def decide(self, state: S, event: EventBase, view: MarketView) -> list[EventBase]: ...

    def evolve(self, state: S, event: EventBase, view: MarketView) -> S: ...
