"""A per-venue circuit breaker: closed -> open after repeated failures -> half-open probe -> closed.

Failures are what says the venue is unwell, not that it refused an order: timeouts, HTTP 429 and 5xx,
connection errors (ccxt's NetworkError family). A rejected order is an answer, so it counts as a success.
Time comes from the caller (the live venue's clock), so the breaker itself is a plain state machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

BreakerState = Literal["closed", "open", "half_open"]


@dataclass(frozen=True)
class BreakerConfig:
    failure_threshold: int = 3
    """Failures in a row that open the breaker."""
    open_for_ns: int = 5_000_000_000
    """How long it stays open before a probe (half-open)."""


@dataclass(frozen=True)
class Transition:
    state: BreakerState
    failures: int
    reason: str


class CircuitBreaker:
    def __init__(self, config: BreakerConfig | None = None) -> None:
        self.config = config or BreakerConfig()
        if self.config.failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self.state: BreakerState = "closed"
        self.failures = 0
        self.opened_at_ns = 0
        self.opened = 0
        """Times it opened (the venue's counters)."""

    def restore(self, state: BreakerState, failures: int, at_ns: int) -> None:
        """The state a restarted session recorded last (its time counts as when it opened)."""
        self.state, self.failures, self.opened_at_ns = state, failures, at_ns

    @property
    def allows_orders(self) -> bool:
        return self.state == "closed"

    def probe_due(self, now_ns: int) -> Transition | None:
        """Open long enough: goes half-open (the caller then probes and reports the outcome)."""
        if self.state != "open" or now_ns - self.opened_at_ns < self.config.open_for_ns:
            return None
        self.state = "half_open"
        return Transition("half_open", self.failures, "probing the venue")

    def success(self, what: str) -> Transition | None:
        """A request was answered; closes a half-open breaker."""
        was = self.state
        self.failures = 0
        if was == "closed":
            return None
        self.state = "closed"
        return Transition("closed", 0, f"{what} answered")

    def failure(self, now_ns: int, reason: str) -> Transition | None:
        """A request failed; opens the breaker at the threshold, or again after a failed probe."""
        self.failures += 1
        if self.state == "half_open" or (
            self.state == "closed" and self.failures >= self.config.failure_threshold
        ):
            self.state = "open"
            self.opened_at_ns = now_ns
            self.opened += 1
            return Transition("open", self.failures, reason)
        return None
