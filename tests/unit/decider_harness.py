"""Runs one decider the way the kernel does (decide, evolve, derived events fed back), for rule tests."""

from __future__ import annotations

from collections import deque
from typing import Any

from domain.decider import Decider
from domain.events import Envelope, EventBase, input_event_id


class DeciderHarness:
    def __init__(self, decider: Decider[Any]) -> None:
        self.decider = decider
        self.state: Any = decider.initial_state()
        self.seq = 0

    def env(self, t_ns: int = 0) -> Envelope:
        """The envelope of the next input, at event time `t_ns`."""
        self.seq += 1
        return Envelope(event_id=input_event_id("test", "in", self.seq), session_id="test", sequence=self.seq,
                        event_time_ns=t_ns, ingest_time_ns=t_ns, source="test")  # fmt: skip

    def feed(self, event: EventBase) -> list[EventBase]:
        """Every event derived from `event`, breadth first, with the state updated as the kernel would."""
        out: list[EventBase] = []
        queue: deque[EventBase] = deque([event])
        while queue:
            current = queue.popleft()
            derived = self.decider.decide(self.state, current)
            self.state = self.decider.evolve(self.state, current)
            out.extend(derived)
            queue.extend(derived)
        return out
