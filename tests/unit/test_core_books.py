"""Differential tests: the compiled core's books, market views and venue book view against the Python
reference (`domain.book.SyncedBook`, the simulated venue's own market view) after every message, on every
shared Binance capture (spot, USD-M, COIN-M, merged as a session merges them) and on hypothesis streams."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import cse_core  # built by `make install`: a missing build fails here, it is never skipped
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.importers.binance_ws import import_binance_ws
from adapters.simulated_venue import SimulatedVenue
from adapters.sqlite_event_log import SqliteEventLog
from application.merge import merge_events
from domain.book import SyncedBook
from domain.events import BookDelta, BookSnapshot, Envelope, EventBase, QuoteTick, TradeTick, input_event_id
from domain.events.codec import decode
from domain.values import Side
from tests.unit.core_support import book_state, columns_of, level, outcome, side_levels

pytestmark = pytest.mark.unit

DATA = Path(os.environ.get("CSE_SHARED_DATA") or Path(__file__).parents[2].parent / "shared" / "data")
HFT = DATA / "hftbacktest"
CAPTURES = ("spot/btcusdt_20240808.gz", "spot/btcusdt_20240809.gz", "usdm/btcusdt_20240808.gz",
            "cm/btcusd_perp_20240808.gz", "cm/btcusd_perp_20240809.gz")  # fmt: skip
VENUE_FALLBACK = {"": 0, "book out of sync": 1, "book older than the ticker": 2}
FULL_COMPARE_EVERY = 2_000
"""Messages between comparisons of whole books (every message compares the top levels and the state)."""


class Reference:
    """The Python side: one `SyncedBook` per key (the view's book), the last quote/valid quote/trade rows,
    and one simulated venue per venue name holding its own view of the book."""

    def __init__(self, keys: list[tuple[str, str]]) -> None:
        self.books: dict[int, SyncedBook] = {}
        self.rows: dict[tuple[int, str], int] = {}
        self.venues = {venue: SimulatedVenue(venue) for venue in sorted({v for v, _ in keys})}
        self.keys = keys

    def apply(self, key: int, row: int, event: EventBase) -> tuple[int, int, int, int, int] | None:
        venue = self.venues[self.keys[key][0]]
        venue._on_book(event) if isinstance(event, BookDelta | BookSnapshot | QuoteTick) else None
        if isinstance(event, QuoteTick):
            self.rows[(key, "quote")] = row
            if (key, "valid_quote") in self.rows:
                self.rows[(key, "prior_valid_quote")] = self.rows[(key, "valid_quote")]
            else:
                self.rows.pop((key, "prior_valid_quote"), None)
            if event.bid_price > 0 and event.ask_price > 0:
                self.rows[(key, "priced_quote")] = row
            if event.bid_price > 0 and event.ask_price >= event.bid_price:
                self.rows[(key, "valid_quote")] = row
        elif isinstance(event, TradeTick):
            self.rows[(key, "trade")] = row
        elif isinstance(event, BookDelta | BookSnapshot):
            book = self.books.get(key)
            if book is None:
                book = self.books[key] = SyncedBook(*self.keys[key])
            return outcome(book.apply(event))
        return None


def check_message(
    core: object, ref: Reference, key: int, event: EventBase, message: tuple, expected: object, full: bool
) -> None:  # type: ignore[type-arg]
    _, _, got_key, _, _, got_outcome, _ = message
    assert got_key == key
    assert (None if got_outcome is None else got_outcome[:5]) == expected
    book = ref.books.get(key)
    assert core.book_state(key) == (None if book is None else book_state(book))  # type: ignore[attr-defined]
    if book is not None and (expected is not None or full):
        depth = None if full else 2
        for is_bid in (True, False):
            assert core.book_levels(key, is_bid, depth) == side_levels(book, is_bid, depth)  # type: ignore[attr-defined]
    for which in ("quote", "priced_quote", "valid_quote", "prior_valid_quote", "trade"):
        assert core.view_row(key, which) == ref.rows.get((key, which)), which  # type: ignore[attr-defined]
    venue, instrument = ref.keys[key]
    market = ref.venues[venue].markets.get(instrument)
    if market is None or (expected is None and not isinstance(event, QuoteTick) and not full):
        return
    reason = market.liquidity.fallback_reason()
    assert core.venue_fallback(key) == VENUE_FALLBACK[reason]  # type: ignore[attr-defined]
    for is_bid in (True, False):
        want = [
            level(p, q)
            for _, (p, q) in zip(range(1 << 62 if full else 2), market.liquidity.levels(is_bid, reason), strict=False)
        ]
        assert core.venue_levels(key, is_bid, VENUE_FALLBACK[reason], None if full else 2) == want  # type: ignore[attr-defined]


def run_differential(events: list[EventBase], batch: int = 50_000) -> int:
    keys = sorted({(e.venue, e.instrument) for e in events})  # type: ignore[attr-defined]
    core = cse_core.MarketCore()
    key_of = {k: core.add_key(*k) for k in keys}
    for k in keys:
        core.track_venue(key_of[k])
    for start in range(0, len(events), batch):
        core.append(columns_of(events[start : start + batch], key_of))
    ref = Reference(keys)
    row = 0
    for n, event in enumerate(events):
        key = key_of[(event.venue, event.instrument)]  # type: ignore[attr-defined]
        expected = ref.apply(key, row, event)
        message = core.step()
        assert message is not None
        assert message[0] == row, f"message {n} starts at row {message[0]}, expected {row}"
        try:
            full = (n + 1) % FULL_COMPARE_EVERY == 0 or n == len(events) - 1
            check_message(
                core, ref, key, event, message, expected, full or (expected is not None and expected[0] != 0)
            )
        except AssertionError as exc:
            raise AssertionError(
                f"message {n} ({type(event).__name__} {event.envelope.event_time_ns}): {exc}"
            ) from exc
        row = message[1]
    assert core.step() is None
    assert core.messages == len(events)
    return row


# ---- every shared capture ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def capture_events(tmp_path_factory: pytest.TempPathFactory) -> list[EventBase]:
    missing = [c for c in CAPTURES if not (HFT / c).is_file()]
    assert not missing, f"recorded captures missing under {HFT}: {missing}"
    log = SqliteEventLog(tmp_path_factory.mktemp("core") / "events.db")
    import_binance_ws(log, "s", [HFT / c for c in CAPTURES], code_version=lambda: "test", echo=None)
    streams = [s for s in log.streams("s") if s.startswith("md.")]
    sources = {s: (decode(r.record.payload) for r in log.read("s", s)) for s in streams}
    merged = [m.item for m in merge_events(sources, streams)]
    return [e for e in merged if isinstance(e, BookDelta | BookSnapshot | QuoteTick | TradeTick)]


def test_captures_cover_every_feed_and_rule(capture_events: list[EventBase]) -> None:
    venues = {e.venue for e in capture_events}  # type: ignore[attr-defined]
    assert venues == {"binance-spot", "binance-usdm", "binance-coinm"}
    futures = [
        e for e in capture_events if isinstance(e, BookDelta) and e.previous_final_update_id is not None
    ]
    spot = [e for e in capture_events if isinstance(e, BookDelta) and e.previous_final_update_id is None]
    assert futures and spot


def test_core_matches_the_reference_on_every_capture(capture_events: list[EventBase]) -> None:
    rows = run_differential(capture_events)
    assert rows > len(capture_events)  # depth updates are one row per level


def test_snapshot_restore_mid_session_continues_identically(capture_events: list[EventBase]) -> None:
    events = capture_events[:20_000]
    keys = sorted({(e.venue, e.instrument) for e in events})  # type: ignore[attr-defined]
    whole, first = cse_core.MarketCore(), cse_core.MarketCore()
    key_of = {k: whole.add_key(*k) for k in keys}
    for k in keys:
        first.add_key(*k), whole.track_venue(key_of[k]), first.track_venue(key_of[k])
    cut = 12_000
    whole.append(columns_of(events, key_of))
    first.append(columns_of(events[:cut], key_of))
    first.run_all()
    second = cse_core.MarketCore.restore(first.snapshot())
    assert second.snapshot() == first.snapshot()
    second.append(columns_of(events[cut:], key_of))
    assert whole.run_all() == len(events)
    assert second.run_all() == len(events) - cut
    assert second.snapshot() == whole.snapshot()
    with pytest.raises(ValueError, match="truncated"):
        cse_core.MarketCore.restore(first.snapshot()[:-3])


# ---- hypothesis streams ------------------------------------------------------------------------------

VENUES = (("spot", "X"), ("fut", "X"))


def env(seq: int, time_ns: int) -> Envelope:
    return Envelope(event_id=input_event_id("s", "md", seq), session_id="s", sequence=seq, source="test",
                    event_time_ns=time_ns, ingest_time_ns=time_ns)  # fmt: skip


# Prices on a small grid written with mixed exponents ("100", "100.0", "100.00"), so equal prices in
# different forms meet in one book; bids and asks overlap a little, so some deltas would cross; sizes include
# 0 (removal); a few prices are non-positive and a few sizes negative (invalid levels).
def priced(low: int, high: int) -> st.SearchStrategy[Decimal]:
    forms = (lambda t: Decimal(t), lambda t: Decimal(f"{t}.0"), lambda t: Decimal(f"{t}.00"))
    return st.builds(lambda t, f: forms[f](t), st.integers(low, high), st.integers(0, 2))


price = priced(95, 105)
size = st.sampled_from(
    [Decimal(0), Decimal(0), Decimal("0.5"), Decimal("1"), Decimal("2.000"), Decimal("0.10")]
)
bad = st.sampled_from([(Decimal(0), Decimal(1)), (Decimal("-1"), Decimal(1)), (Decimal(100), Decimal("-1"))])


def side_levels_of(low: int, high: int) -> st.SearchStrategy[tuple[tuple[Decimal, Decimal], ...]]:
    good = st.tuples(priced(low, high), size)
    return st.lists(st.one_of(*[good] * 150, bad), max_size=4).map(tuple)


bid_levels, ask_levels = side_levels_of(94, 101), side_levels_of(99, 106)


@st.composite
def streams(draw: st.DrawFn) -> list[EventBase]:
    events: list[EventBase] = []
    time_ns = 1_000
    last_id = {v: draw(st.integers(0, 5)) for v, _ in VENUES}
    for seq in range(draw(st.integers(1, 60))):
        venue, instrument = draw(st.sampled_from(VENUES))
        time_ns += draw(st.sampled_from([0, 0, 1, 5]))  # equal timestamps are common
        what = draw(st.sampled_from(["delta"] * 8 + ["snapshot", "quote", "quote", "trade"]))
        e = env(seq, time_ns)
        if what == "delta":
            # next in sequence, a duplicate, stale, or after a gap
            step = draw(st.sampled_from([1] * 12 + [0, -2, 3]))
            first = last_id[venue] + step
            final = first + draw(st.integers(0, 3))
            last_id[venue] = max(last_id[venue], final)
            pu = None if venue == "spot" else first - draw(st.sampled_from([1] * 8 + [2]))
            events.append(BookDelta(envelope=e, venue=venue, instrument=instrument, first_update_id=first,
                                    final_update_id=final, previous_final_update_id=pu,
                                    bids=draw(bid_levels), asks=draw(ask_levels)))  # fmt: skip
        elif what == "snapshot":
            last = last_id[venue] + draw(st.integers(-4, 1))
            bids = tuple((Decimal(p), Decimal(1)) for p in draw(st.lists(st.integers(90, 99), max_size=5)))
            asks = tuple((Decimal(p), Decimal(1)) for p in draw(st.lists(st.integers(100, 110), max_size=5)))
            if draw(st.integers(0, 7)) == 0:  # now and then a bad or crossing snapshot
                bids += draw(bid_levels)
            events.append(BookSnapshot(envelope=e, venue=venue, instrument=instrument, last_update_id=last,
                                       bids=bids, asks=asks))  # fmt: skip
        elif what == "quote":
            bid, ask = (
                draw(price),
                draw(st.one_of(price, price, price, st.sampled_from([Decimal(0), Decimal(-1)]))),
            )
            uid = draw(st.one_of(st.none(), st.integers(0, last_id[venue] + 3)))
            events.append(QuoteTick(envelope=e, venue=venue, instrument=instrument, bid_price=bid,
                                    bid_size=draw(size), ask_price=ask, ask_size=draw(size),
                                    venue_update_id=uid))  # fmt: skip
        else:
            events.append(TradeTick(envelope=e, venue=venue, instrument=instrument, price=draw(price),
                                    size=Decimal("0.5"), aggressor_side=draw(st.sampled_from(Side)),
                                    venue_trade_id=str(seq)))  # fmt: skip
    return events


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_core_matches_the_reference_on_generated_streams(events: list[EventBase]) -> None:
    run_differential(events, batch=7)


def test_bad_columns_are_refused_naming_the_column() -> None:
    core = cse_core.MarketCore()
    key = core.add_key("v", "i")
    cols = columns_of([QuoteTick(envelope=env(0, 1), venue="v", instrument="i", bid_price=Decimal(1),
                                 bid_size=Decimal(1), ask_price=Decimal(2), ask_size=Decimal(1))], {("v", "i"): key})  # fmt: skip
    bad = dict(cols, price_m=cols["price_m"][:0])
    with pytest.raises(ValueError, match="price_m"):
        core.append(bad)
    with pytest.raises(KeyError, match="aggressor"):
        core.append({k: v for k, v in cols.items() if k != "aggressor"})
    with pytest.raises(ValueError, match="never registered"):
        core.append(dict(cols, key=cols["key"] + 5))
    unfinished = dict(cols, msg_end=cols["msg_end"] * 0)
    with pytest.raises(ValueError, match="msg_end"):
        core.append(unfinished)
    assert core.step() is None
