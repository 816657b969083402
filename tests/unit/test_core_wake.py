"""The compiled market core behind the `MarketCore` port (`adapters.market_core`) against the pure-Python
reference core (`application.fast_run.ReferenceMarketCore`): for the same rows and wake specs both must return
the same rows (the very input events), skip the same number, and show the same market view at every wake, on
every shared Binance capture and on hypothesis streams with specs placed exactly on their thresholds."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from itertools import islice

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters import market_core
from application.fast_run import ReferenceMarketCore
from domain.book import SyncStatus
from domain.events import BookDelta, BookResyncNeeded, BookSnapshot, EventBase, derive_envelope
from domain.wake import (
    ALWAYS,
    NEVER,
    Always,
    BookNotClean,
    CrossEdge,
    Hurdle,
    LevelTouched,
    Ratio,
    RowKind,
    WakeSpec,
    ratio,
)
from tests.unit.test_core_books import capture_events, streams  # noqa: F401  (the captures fixture)

pytestmark = pytest.mark.unit


def summary(view: object, event: EventBase) -> tuple[object, ...]:
    """What the deciders can read of `event`'s key (and every key's valid quote), with books as text."""
    key = (event.venue, event.instrument)  # type: ignore[attr-defined]
    quotes = tuple(id(getattr(view, name)(*key)) for name in ("quote", "priced_quote", "valid_quote",
                                                               "prior_valid_quote", "trade"))  # fmt: skip
    valid = tuple((k, id(q)) for k, q in view.valid_quotes())  # type: ignore[attr-defined]
    book = view.book(*key)  # type: ignore[attr-defined]
    levels = None if book is None else (
        book.in_sync, book.has_snapshot, book.applied_update_id, book.applied_time_ns,
        [(str(p), str(q)) for p, q in islice(book.bids.walk(), 5)],
        [(str(p), str(q)) for p, q in islice(book.asks.walk(), 5)])  # fmt: skip
    return quotes, valid, levels, view.book_outcome(*key)  # type: ignore[attr-defined]


def gated(
    core: object, specs: list[WakeSpec], resync_after: Callable[[EventBase], bool]
) -> list[tuple[EventBase, tuple[object, ...]]]:
    """Drive a core as the kernel does: apply each returned row (and after some, a derived resync of its book),
    recording (row, what the view shows then)."""
    for owner, spec in enumerate(specs):
        core.set_wake(owner, spec)  # type: ignore[attr-defined]
    woken = []
    while (event := core.next_wake()) is not None:  # type: ignore[attr-defined]
        view = core.view  # type: ignore[attr-defined]
        view.apply(event)
        if resync_after(event):
            view.apply(BookResyncNeeded(envelope=derive_envelope(event.envelope, "book", 0), venue=event.venue,  # type: ignore[attr-defined]
                                        instrument=event.instrument, expected_update_id=0,  # type: ignore[attr-defined]
                                        received_first_update_id=0, reason="test"))  # fmt: skip
        woken.append((event, summary(view, event)))
    return woken


def run_both(events: list[EventBase], specs: list[WakeSpec], resync_every: int = 0) -> int:
    """The compiled core returns every row the reference returns, with the same view there; it may add only
    rows that put their book out of sync (it wakes on those to word their outcome), which the reference ran
    as skipped. Returns how many rows the reference woke on."""

    def resync_after(event: EventBase) -> bool:
        return (
            bool(resync_every)
            and isinstance(event, BookDelta | BookSnapshot)
            and event.envelope.sequence % resync_every == 0
        )

    observed: tuple[list[EventBase], list[EventBase]] = ([], [])
    ref = ReferenceMarketCore(events, [observed[0].append])
    want = gated(ref, specs, resync_after)
    woken_ids = {id(e) for e, _ in want}
    compiled = market_core.CompiledMarketCore(events, [observed[1].append], batch=97)
    got = gated(compiled, specs, lambda e: id(e) in woken_ids and resync_after(e))
    extra = [(e, s) for e, s in got if id(e) not in woken_ids]
    assert [(id(e), s) for e, s in got if id(e) in woken_ids] == [(id(e), s) for e, s in want]
    for (
        event,
        seen,
    ) in extra:  # the looser wakes: rows whose book went out of sync, which the reference skipped
        assert isinstance(event, BookDelta | BookSnapshot)
        assert seen[3].status is SyncStatus.OUT_OF_SYNC, (event, seen[3])
    extra_ids = {id(e) for e, _ in extra}
    assert [e for e in observed[0] if id(e) not in extra_ids] == observed[1]
    assert (compiled.skipped + len(extra), compiled.last_time_ns) == (ref.skipped, ref.last_time_ns)
    return len(want)


def cross(
    instrument: str, venues: tuple[str, str], bps: Fraction, max_age_ns: int, min_size: str
) -> CrossEdge:
    b, s = venues
    hurdles = (
        Hurdle(b, s, Ratio(bps.numerator, bps.denominator)),
        Hurdle(s, b, Ratio(bps.numerator, bps.denominator)),
    )
    return CrossEdge(instrument, hurdles, max_age_ns, ratio(Decimal(min_size)))


# ---- every shared capture ----------------------------------------------------------------------------

SPOT, USDM, COINM = ("binance-spot", "BTCUSDT"), ("binance-usdm", "BTCUSDT"), ("binance-coinm", "BTCUSD_PERP")


def capture_specs() -> list[WakeSpec]:
    """The kinds the deciders declare, with thresholds where this data sits (the spot-USD-M basis is a few
    bps, so 3.2 bps wakes often and 6 bps rarely), a timer and a cooldown inside the session."""
    return [
        WakeSpec((BookNotClean(),)),
        WakeSpec(
            (cross("BTCUSDT", ("binance-spot", "binance-usdm"), Fraction(16, 5), 500_000_000, "0.001"),),
            not_before_ns=1_723_161_400_000_000_000,
        ),  # fmt: skip
        WakeSpec((cross("BTCUSDT", ("binance-spot", "binance-usdm"), Fraction(6), 10**18, "0"),)),
        WakeSpec((LevelTouched(USDM, ratio(Decimal("61000")), ratio(Decimal("61900"))),)),
        WakeSpec(
            (Always(frozenset({RowKind.TRADE}), frozenset({COINM})),), timer_at_ns=1_723_161_500_000_000_000
        ),
        NEVER,
    ]


CAPTURE_SLICE = 60_000
"""Merged messages of all five captures (all three feeds, both sequence rules) run through both cores; the
reference core evaluates every spec in Python per row, so the whole session would take minutes here (the
books and views are compared on every message of every capture in `test_core_books`)."""


def test_compiled_core_equals_the_reference_on_every_capture(capture_events: list[EventBase]) -> None:  # noqa: F811
    events = capture_events[:CAPTURE_SLICE]
    assert {e.venue for e in events} == {SPOT[0], USDM[0], COINM[0]}  # type: ignore[attr-defined]
    woken = run_both(events, capture_specs(), resync_every=50)
    assert 0 < woken < len(events) // 2


def test_every_row_wakes_with_always(capture_events: list[EventBase]) -> None:  # noqa: F811
    events = capture_events[:3_000]
    assert run_both(events, [ALWAYS]) == len(events)


# ---- hypothesis streams on the thresholds ------------------------------------------------------------


@st.composite
def specs(draw: st.DrawFn) -> list[WakeSpec]:
    """Specs whose thresholds sit on the generated grid (prices 95..105 in steps of 1, times from 1000 by
    0/1/5): an edge equal to the hurdle, an age equal to the limit, a time equal to the cooldown end."""
    out = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["cross", "touched", "not_clean", "always", "never"]))
        timer = draw(st.one_of(st.none(), st.integers(1_000, 1_200)))
        not_before = draw(st.one_of(st.none(), st.integers(1_000, 1_200)))
        if kind == "cross":
            # edge (bid - ask) / ask in bps: ask 100, bid 101 is exactly 100 bps
            bps = draw(
                st.sampled_from(
                    [Fraction(100), Fraction(0), Fraction(-100), Fraction(10000, 99), Fraction(1, 3)]
                )
            )
            predicate: object = cross(
                "X",
                ("spot", "fut"),
                bps,
                draw(st.integers(0, 20)),
                draw(st.sampled_from(["0", "0.5", "1", "2"])),
            )
        elif kind == "touched":
            low = draw(st.one_of(st.none(), st.integers(94, 106)))
            high = draw(st.one_of(st.none(), st.integers(94, 106)))
            key = draw(st.sampled_from([("spot", "X"), ("fut", "X")]))
            predicate = LevelTouched(
                key, None if low is None else Ratio(low, 1), None if high is None else Ratio(high * 3, 3)
            )
        elif kind == "not_clean":
            predicate = BookNotClean(draw(st.one_of(st.none(), st.just(frozenset({("fut", "X")})))))
        elif kind == "always":
            kinds = frozenset(draw(st.sets(st.sampled_from(list(RowKind)), max_size=2)))
            predicate = Always(kinds, draw(st.one_of(st.none(), st.just(frozenset({("spot", "X")})))))
        else:
            predicate = None
        out.append(
            WakeSpec(() if predicate is None else (predicate,), not_before_ns=not_before, timer_at_ns=timer)
        )  # type: ignore[arg-type]
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(), specs(), st.sampled_from([0, 1, 3]))
def test_compiled_core_equals_the_reference_on_generated_streams(
    events: list[EventBase], wake_specs: list[WakeSpec], resync_every: int
) -> None:
    run_both(events, wake_specs, resync_every)
