"""A text progress bar on stderr, redrawn at most a few times a second (no dependency, quiet when piped)."""

from __future__ import annotations

import sys
import time
from typing import Protocol


class Progress(Protocol):
    """What a run reports its progress to: counts of events done, then `close` (returns seconds taken)."""

    def __call__(self, count: int) -> None: ...

    def close(self) -> float: ...


class ProgressBar:
    def __init__(self, total: int, label: str, width: int = 30) -> None:
        self.total = max(total, 1)
        self.label = label
        self.width = width
        self.done = 0
        self._started = time.perf_counter()
        self._last_draw = 0.0
        self._enabled = sys.stderr.isatty()

    def __call__(self, count: int) -> None:
        self.done += count
        now = time.perf_counter()
        if self._enabled and now - self._last_draw > 0.2:
            self._last_draw = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        fraction = min(self.done / self.total, 1.0)
        filled = int(fraction * self.width)
        rate = self.done / max(now - self._started, 1e-9)
        bar = "#" * filled + "-" * (self.width - filled)
        sys.stderr.write(f"\r{self.label} [{bar}] {fraction:6.1%} {self.done:,} events {rate:,.0f}/s")
        sys.stderr.flush()

    def close(self) -> float:
        elapsed = time.perf_counter() - self._started
        if self._enabled:
            self._draw(time.perf_counter())
            sys.stderr.write("\n")
        return elapsed
