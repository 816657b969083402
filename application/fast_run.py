"""The gated run: a market core runs the market rows and returns to the kernel only where someone could act.

`run_gated` is the `next_wake` loop of `application.ports.MarketCore`: the core runs rows until some decider's
or venue's wake spec (`domain.wake`) is true on one, the kernel runs that row's full cascade exactly as an
ungated run would (`Kernel.feed`), every owner declares its spec again, and so on. A skipped row is one on
which, by each owner's soundness rule, nothing would have been derived and no state but the market's would
have changed: so a gated run derives the same events, byte for byte, as `Kernel.feed` on every row.

`ReferenceMarketCore` is the pure-Python core: the reference the compiled core (`cse_core`) must match, and
the way to test the loop without it. It evaluates specs with `domain.wake.evaluate`, keeps the market view
(`domain.market_view.ReferenceMarketView`) and hands each skipped row to the venues' `observe` (a simulated
venue keeps its own book of its own venue's rows).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence

from application.engine import Kernel
from application.ports import InputColumns, MarketCore, Venue
from domain.events import EventBase
from domain.market_view import ReferenceMarketView
from domain.wake import ALWAYS, WakeSpec, evaluate, row_kind

RowObserver = Callable[[EventBase], None]
CoreFactory = Callable[[Iterable[EventBase] | InputColumns, Sequence[Venue]], MarketCore]
"""Builds a run's market core from its rows (the exact input events, in run order, or the columns holding
them) and the run's venues in name order: what a venue knows of the market must follow the rows the core skips (a simulated venue's
`observe`, or its liquidity kept by the core itself)."""


class ReferenceMarketCore:
    """`MarketCore` in pure Python: every row is a Python event, specs are evaluated by the reference
    evaluator. Not fast; exact by construction, and what the compiled core is tested against."""

    def __init__(self, rows: Iterable[EventBase], observers: Sequence[RowObserver] = ()) -> None:
        self.view = ReferenceMarketView()
        self._rows = iter(rows)
        self._observers = tuple(observers)
        self._specs: list[WakeSpec] = []
        self._skipped = 0
        self._last_time_ns = -1

    def next_wake(self) -> EventBase | None:
        view, specs = self.view, self._specs
        for row in self._rows:
            self._last_time_ns = row.envelope.event_time_ns
            if row_kind(row) is None or any(evaluate(spec, view, row) for spec in specs):
                return row
            view.apply(row)
            for observe in self._observers:
                observe(row)
            self._skipped += 1
        return None

    def apply(self, event: EventBase) -> None:
        self.view.apply(event)

    def set_wake(self, owner: int, spec: WakeSpec) -> None:
        specs = self._specs
        while len(specs) <= owner:
            specs.append(ALWAYS)
        specs[owner] = spec

    @property
    def skipped(self) -> int:
        return self._skipped

    @property
    def last_time_ns(self) -> int:
        return self._last_time_ns


def reference_core(rows: Iterable[EventBase] | InputColumns, venues: Sequence[Venue]) -> MarketCore:
    return ReferenceMarketCore(events_of(rows), observers(venues))


def events_of(rows: Iterable[EventBase] | InputColumns) -> Iterable[EventBase]:
    """The input events of a run's rows (columns materialised message by message)."""
    if isinstance(rows, InputColumns):
        return (event for _, event in rows.events())
    return rows


def observers(venues: Sequence[Venue]) -> list[RowObserver]:
    """The venues' `observe` (a simulated venue keeps its own book of its venue's rows)."""
    return [observe for venue in venues if (observe := getattr(venue, "observe", None))]


def run_gated(kernel: Kernel, core: MarketCore) -> None:
    """Run every row of `core` through `kernel`, calling in only at wakes; the kernel must read the core's
    view (`Kernel(..., market=core.view)`). Ends with the kernel drained to the last row's time, as an
    ungated run ends."""
    run_queued(kernel, core)
    kernel.release_due(kernel.clock.now_ns())


def run_queued(kernel: Kernel, core: MarketCore, feed: Callable[[EventBase], None] | None = None) -> None:
    """Run the rows `core` has so far, calling `feed` (default `kernel.feed`) at each wake. A streaming
    worker calls it again after each batch it puts in the core's `RowInbox`: the rows and wakes are those of
    one run over all the rows, whatever the batches."""
    feed = feed or kernel.feed
    declare(kernel, core)  # also after a restore: a restored compiled core holds no specs
    while (event := core.next_wake()) is not None:
        feed(event)
        declare(kernel, core)
    kernel.skipped(core.skipped, core.last_time_ns)


class RowInbox:
    """The rows of a run that arrive in batches (a streaming worker): a core's row iterator that stops when
    it is empty and goes on once more rows are put in."""

    def __init__(self) -> None:
        self._rows: deque[EventBase] = deque()

    def put(self, event: EventBase) -> None:
        self._rows.append(event)

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> RowInbox:
        return self

    def __next__(self) -> EventBase:
        if not self._rows:
            raise StopIteration
        return self._rows.popleft()


def declare(kernel: Kernel, core: MarketCore) -> None:
    """Push every owner's current spec to the core (after each call into the kernel: only then can one change)."""
    for owner, spec in enumerate(kernel.wake_specs()):
        core.set_wake(owner, spec)
