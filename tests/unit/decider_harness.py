"""Runs deciders the way the kernel does (decide, evolve, derived events fed back breadth first), for rule
tests. With several deciders, each event goes through all of them in their order, as in the kernel; there is
no venue: tests play the venue's answers by hand. The market view (`view`) takes each event before the
deciders do, as in the kernel."""

from __future__ import annotations

from collections import deque
from typing import Any

from domain.decider import Decider
from domain.events import Envelope, EventBase, input_event_id
from domain.market_view import ReferenceMarketView


class DeciderHarness:
    def __init__(self, decider: Decider[Any], *others: Decider[Any]) -> None:
        self.decider = decider
        self.deciders = [decider, *others]
        self.states: list[Any] = [d.initial_state() for d in self.deciders]
        self.seq = 0
        self.view = ReferenceMarketView()

    @property
    def state(self) -> Any:
        """The first decider's state."""
        return self.states[0]

    @state.setter
    def state(self, value: Any) -> None:
        self.states[0] = value

    def env(self, t_ns: int = 0) -> Envelope:
        """The envelope of the next input, at event time `t_ns`."""
        self.seq += 1
        return Envelope(event_id=input_event_id("test", "in", self.seq), session_id="test", sequence=self.seq,
                        event_time_ns=t_ns, ingest_time_ns=t_ns, source="test")  # fmt: skip

    def feed(self, event: EventBase) -> list[EventBase]:
        """Every event derived from `event`, breadth first, with the states updated as the kernel would."""
        out: list[EventBase] = []
        queue: deque[EventBase] = deque([event])
        while queue:
            current = queue.popleft()
            self.view.apply(current)
            for index, decider in enumerate(self.deciders):
                derived = decider.decide(self.states[index], current, self.view)
                self.states[index] = decider.evolve(self.states[index], current, self.view)
                out.extend(derived)
                queue.extend(derived)
        return out
