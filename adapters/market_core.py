"""The compiled market core (`cse_core`, Rust, `core/`) behind the `application.ports.MarketCore` port.

Rows. The run's input events are turned into the core's integer columns in batches (`RowBuilder`: one row
per book level, quote or trade, amounts as (int64 mantissa, int8 exponent) exactly as written; any other
event is one `KIND_EVENT` row, which always comes back to Python). Rust runs the books, the market view and
the wake specs (`domain.wake`, same kinds, exact integer arithmetic) and stops only at rows where some owner
could act; the row returned is the very event object of the input, unapplied, and `view.apply` folds it in.

View. Every value the deciders read is the reference's: quotes and trades are the input events of the rows
the core's view points at; the L2 book is rebuilt as a `domain.book.SyncedBook` from the core's integer
levels (cached until the core moves); a book outcome that is out of sync gets its reason from the reference
rules (`SyncedBook.check`) on the book as it was just before the row, so resync events are byte-identical.

Venues. A simulated venue that can keep its liquidity elsewhere (`SimulatedVenue.keep_liquidity_in`) keeps it
here: the core holds each of its keys' venue book (`track_venue`, Rust's `VenueBook`, tested against `OwnBook`
row by row), so no skipped row goes back to Python for it. The venue takes a woken row before the market view
does (`Kernel.feed`), through `apply_held_venue`. Skipped rows go to the observers of any other venue, in order,
exactly as the reference core hands them over.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from decimal import Decimal

import numpy as np

from adapters.columnar.inputs import FileInputs
from adapters.simulated_venue import FALLBACK_OUT_OF_SYNC, FALLBACK_STALE, VenueLiquidity
from application.fast_run import RowObserver, events_of, observers
from application.ports import InputColumns, MarketCore, Venue
from domain.book import BookKey, OutOfSyncCause, SyncedBook, SyncOutcome, SyncStatus
from domain.events import (
    BookDelta,
    BookResyncNeeded,
    BookSnapshot,
    EventBase,
    Level,
    QuoteTick,
    TradeTick,
)
from domain.values import Side
from domain.wake import (
    Always,
    BookNotClean,
    CrossEdge,
    LevelTouched,
    Never,
    Predicate,
    Ratio,
    RowKind,
    WakeSpec,
)

try:
    from cse_core import MarketCore as _RustCore
except ImportError as exc:  # the composition root reports it (`bootstrap.market_core`), never falls back
    raise ImportError(
        f"the compiled core cse_core is not built ({exc}): run `make install` (needs cargo)"
    ) from exc

BATCH = 4_096
"""Input events pulled from the run's iterator per batch. Reading ahead of the row the kernel runs is exact:
nothing a run derives or reports depends on when an input is pulled (the backtest metrics read mids from the
kernel's market view, not from the inputs they are shown)."""
COLUMN_SLICE = 1 << 16
"""Rows of a columnar file converted and appended to the core at a time: memory stays flat."""
KIND_EVENT = 9
_NO_KEY: BookKey = ("", "")
"""The key of rows that are not market data of a (venue, instrument)."""
_STATUS = (SyncStatus.APPLIED, SyncStatus.BUFFERED, SyncStatus.STALE, SyncStatus.OUT_OF_SYNC)
_CAUSE = (None, OutOfSyncCause.GAP, OutOfSyncCause.CROSSED, OutOfSyncCause.INVALID)
_I128 = 1 << 126
"""Ratios beyond this go to Rust as a looser predicate instead (conservative: a wake more, never fewer)."""

_INT64 = ("event_time_ns", "price_m", "size_m", "ask_price_m", "ask_size_m", "first_update_id",
          "final_update_id", "previous_update_id")  # fmt: skip
_INT8 = ("kind", "side", "price_e", "size_e", "ask_price_e", "ask_size_e", "aggressor")
_FLAGS = ("msg_end", "final_update_id_valid", "previous_update_id_valid")
_DTYPES = {**dict.fromkeys(_INT64, np.int64), **dict.fromkeys(_INT8, np.int8), **dict.fromkeys(_FLAGS, np.uint8),
           "key": np.uint32}  # fmt: skip
_LEVEL_FIXED = ("key", "kind", "event_time_ns", "first_update_id", "final_update_id", "final_update_id_valid",
                "previous_update_id", "previous_update_id_valid", "ask_price_m", "ask_price_e", "ask_size_m",
                "ask_size_e", "aggressor")  # fmt: skip


def parts(value: Decimal) -> tuple[int, int]:
    """(mantissa, exponent) of a Decimal exactly as written: `Decimal("61800.30")` -> (6180030, -2)."""
    exponent = value.as_tuple().exponent
    if not isinstance(exponent, int):
        raise ValueError(f"not a finite amount: {value}")
    return int(value.scaleb(-exponent)), exponent


def amount(mantissa: int, exponent: int) -> Decimal:
    """The Decimal of a (mantissa, exponent) pair, keeping the exponent."""
    return Decimal(mantissa).scaleb(exponent)


class RowBuilder:
    """Events as the core's input columns (`cse_core._core.pyi`), one row per level, quote or trade."""

    def __init__(self, key_of: dict[BookKey, int]) -> None:
        self.key_of = key_of
        self.rows = 0
        self.cols: dict[str, list[int]] = {name: [] for name in _DTYPES}

    def _row(self, key: int, kind: int, time_ns: int, **values: int) -> None:
        values.update(key=key, kind=kind, event_time_ns=time_ns, msg_end=1)
        get = values.get
        for name, column in self.cols.items():
            column.append(get(name, 0))
        self.rows += 1

    def add(self, event: EventBase, key: int) -> None:
        """Append `event`'s rows (key: its registered (venue, instrument))."""
        time_ns = event.envelope.event_time_ns
        if isinstance(event, QuoteTick):
            bm, be = parts(event.bid_price)
            bsm, bse = parts(event.bid_size)
            am, ae = parts(event.ask_price)
            asm, ase = parts(event.ask_size)
            uid = event.venue_update_id
            self._row(key, RowKind.QUOTE, time_ns, price_m=bm, price_e=be, size_m=bsm, size_e=bse,
                      ask_price_m=am, ask_price_e=ae, ask_size_m=asm, ask_size_e=ase,
                      final_update_id=uid or 0, final_update_id_valid=int(uid is not None))  # fmt: skip
        elif isinstance(event, TradeTick):
            pm, pe = parts(event.price)
            sm, se = parts(event.size)
            self._row(key, RowKind.TRADE, time_ns, price_m=pm, price_e=pe, size_m=sm, size_e=se,
                      aggressor=1 if event.aggressor_side is Side.BUY else 2)  # fmt: skip
        elif isinstance(event, BookDelta | BookSnapshot):
            self._book(event, key, time_ns)
        else:
            self._row(key, KIND_EVENT, time_ns)

    def _book(self, event: BookDelta | BookSnapshot, key: int, time_ns: int) -> None:
        ids: dict[str, int]
        if isinstance(event, BookDelta):
            kind, pu = RowKind.DELTA, event.previous_final_update_id
            ids = {"first_update_id": event.first_update_id, "final_update_id": event.final_update_id,
                   "final_update_id_valid": 1, "previous_update_id": pu or 0,
                   "previous_update_id_valid": int(pu is not None)}  # fmt: skip
        else:
            kind = RowKind.SNAPSHOT
            ids = {"final_update_id": event.last_update_id, "final_update_id_valid": 1}
        n = len(event.bids) + len(event.asks)
        if n == 0:
            self._row(key, kind, time_ns, **ids)
            return
        cols = self.cols
        amounts = [(*parts(p), *parts(q)) for p, q in (*event.bids, *event.asks)]
        for name, values in zip(
            ("price_m", "price_e", "size_m", "size_e"), zip(*amounts, strict=True), strict=True
        ):
            cols[name].extend(values)
        cols["side"].extend([1] * len(event.bids) + [2] * len(event.asks))
        cols["msg_end"].extend([0] * (n - 1) + [1])
        fixed = {"key": key, "kind": kind, "event_time_ns": time_ns, **ids}
        for name in _LEVEL_FIXED:
            cols[name].extend([fixed.get(name, 0)] * n)
        self.rows += n

    def columns(self) -> dict[str, np.ndarray]:
        return {name: np.asarray(values, dtype=_DTYPES[name]) for name, values in self.cols.items()}


def _ratio(r: Ratio) -> tuple[int, int] | None:
    return (r.num, r.den) if abs(r.num) < _I128 and r.den < _I128 else None


class CompiledMarketCore:
    """`MarketCore` on the Rust core; see the module docstring."""

    def __init__(
        self,
        rows: Iterable[EventBase] | InputColumns,
        observers: Sequence[RowObserver] = (),
        batch: int = BATCH,
        venue_books: Iterable[str] = (),
    ) -> None:
        """`rows`: the input events, or a columnar file's (`FileInputs`: appended as columns, and only the
        messages that reach Python are built, unless an observer must see every row). `venue_books`: the
        venues whose liquidity the core keeps (`venue_liquidity`)."""
        self._core = _RustCore()
        self._core.wake_out_of_sync = True  # their outcome is worded by the reference rules (CompiledView)
        self._keys: dict[BookKey, int] = {}
        self.names: list[BookKey] = []
        """(venue, instrument) by key."""
        self._venue_books = frozenset(venue_books)
        self._key(_NO_KEY)
        self._columns = rows if isinstance(rows, FileInputs) and not observers else None
        self._rows: Iterator[EventBase] = iter(events_of(rows) if self._columns is None else ())
        self._column_rows = 0
        """Rows of `_columns` appended to the core so far."""
        self._observers = tuple(observers)
        self._batch = batch
        self._queued: deque[EventBase] = deque()
        """Events read and not yet run, in order (the first has ordinal `_next_ordinal`)."""
        self._next_ordinal = 0
        self._by_row: dict[int, EventBase] = {}
        """Quotes and trades by first row: what the view may point at."""
        self._next_row = 0
        self._held: EventBase | None = None
        self._specs: dict[int, WakeSpec] = {}
        self.view = CompiledView(self)

    def __getstate__(self) -> dict[str, object]:
        """Pickled between wakes (a worker's snapshot): the Rust core pickles through its own snapshot, which
        holds no wake specs, so the restored core takes every owner's spec again (`run_queued` declares)."""
        if self._held is not None or self._queued:
            raise ValueError("a market core is pickled between wakes, with no row held or queued")
        return {**self.__dict__, "_specs": {}}

    # ---- MarketCore ----------------------------------------------------------------------------------

    def next_wake(self) -> EventBase | None:
        self._held = None
        if self._columns is not None:
            return self._next_wake_in_columns(self._columns)
        while True:
            found = self._core.next_wake()
            if found is not None:
                ordinal = found[0]
                self._skip_until(ordinal)
                event = self._queued.popleft()
                self._next_ordinal += 1
                self._held = event
                return event
            self._skip_until(self._next_ordinal + len(self._queued))
            if not self._feed():
                return None

    def _next_wake_in_columns(self, columns: FileInputs) -> EventBase | None:
        while (found := self._core.next_wake()) is None:
            if self._column_rows >= columns.rows:
                return None
            stop = columns.slice_stop(self._column_rows, COLUMN_SLICE)
            self._core.append(columns.core_columns(self._column_rows, stop, self._key_of_names))
            self._column_rows = stop
        self._held = columns.message(found[1])
        return self._held

    def _key_of_names(self, venue: str, instrument: str) -> int:
        return self._key((venue, instrument))

    def event_at(self, row: int) -> EventBase:
        """The input event whose first row is `row` (one the view points at)."""
        return self._by_row[row] if self._columns is None else self._columns.message(row)

    def set_wake(self, owner: int, spec: WakeSpec) -> None:
        if self._specs.get(owner) == spec:
            return
        self._specs[owner] = spec
        self._core.set_wake(owner, self._predicates(spec), spec.not_before_ns, spec.timer_at_ns)

    @property
    def skipped(self) -> int:
        return int(self._core.skipped)

    @property
    def last_time_ns(self) -> int:
        return int(self._core.last_time_ns)

    # ---- rows --------------------------------------------------------------------------------------

    def _key(self, key: BookKey) -> int:
        found = self._keys.get(key)
        if found is None:
            found = self._keys[key] = self._core.add_key(*key)
            self.names.append(key)
            if key[0] in self._venue_books:
                self._core.track_venue(found)
        return found

    def venue_liquidity(self, venue: str, instrument: str) -> VenueLiquidity:
        """The venue's liquidity of `instrument` as this core keeps it (a `LiquiditySource`)."""
        if venue not in self._venue_books:
            raise ValueError(f"the core keeps no venue book for {venue}")
        return CoreVenueBook(self._core, self._key((venue, instrument)))

    def key_of(self, event: EventBase) -> int:
        venue, instrument = getattr(event, "venue", None), getattr(event, "instrument", None)
        if not isinstance(venue, str) or not isinstance(instrument, str):
            return self._keys[_NO_KEY]
        return self._key((venue, instrument))

    def _feed(self) -> bool:
        """Queue the next batch of input events as rows; False at the end of the input (so far: a
        `RowInbox` may get more)."""
        builder = RowBuilder(self._keys)
        queued, by_row = self._queued, self._by_row
        for _, event in zip(range(self._batch), self._rows, strict=False):
            if isinstance(event, QuoteTick | TradeTick):
                by_row[self._next_row + builder.rows] = event
            builder.add(event, self.key_of(event))
            queued.append(event)
        if not builder.rows:
            return False
        self._next_row += builder.rows
        self._core.append(builder.columns())
        self._forget_unreferenced()
        return True

    def _forget_unreferenced(self) -> None:
        """Keep only the quote/trade events the view still points at, and those not yet run."""
        keep = {
            row
            for key in self._keys.values()
            for which in _VIEWS
            if (row := self._core.view_row(key, which)) is not None
        }
        position = self._core.position
        self._by_row = {row: e for row, e in self._by_row.items() if row in keep or row >= position}

    def _skip_until(self, ordinal: int) -> None:
        """Hand the events before `ordinal` (run by the core without waking anyone) to the observers."""
        queued, observers = self._queued, self._observers
        while self._next_ordinal < ordinal:
            event = queued.popleft()
            self._next_ordinal += 1
            for observe in observers:
                observe(event)

    # ---- specs -------------------------------------------------------------------------------------

    def _predicates(self, spec: WakeSpec) -> list[tuple[object, ...]]:
        return [self._predicate(p) for p in spec.predicates]

    def _predicate(self, p: Predicate) -> tuple[object, ...]:
        if isinstance(p, Always):
            mask = sum(1 << int(kind) for kind in p.kinds)
            return ("always", mask, None if p.keys is None else sorted(self._key(k) for k in p.keys))
        if isinstance(p, CrossEdge):
            min_size = _ratio(p.min_size)
            hurdles = [(self._key((h.buy_venue, p.instrument)), self._key((h.sell_venue, p.instrument)), _ratio(h.bps))
                       for h in p.hurdles]  # fmt: skip
            if min_size is None or any(h[2] is None for h in hurdles):
                return ("always", 1 << RowKind.QUOTE, None)  # looser, never stricter
            return (
                "cross",
                p.instrument,
                [(b, s, *r) for b, s, r in hurdles if r is not None],
                p.max_age_ns,
                min_size,
            )
        if isinstance(p, BookNotClean):
            return ("not_clean", None if p.keys is None else sorted(self._key(k) for k in p.keys))
        if isinstance(p, LevelTouched):
            key = self._key(p.key)
            below = None if p.at_or_below is None else _ratio(p.at_or_below)
            above = None if p.at_or_above is None else _ratio(p.at_or_above)
            if (p.at_or_below is not None and below is None) or (p.at_or_above is not None and above is None):
                return ("always", 0, [key])
            return ("touched", key, below, above)
        assert isinstance(p, Never), p
        return ("never",)

    # ---- applying the returned row ------------------------------------------------------------------

    def apply(self, event: EventBase) -> None:
        """`view.apply`: the held row (once), or a `BookResyncNeeded` (its book out of sync)."""
        if event is self._held:
            self._held = None
            if isinstance(event, BookDelta | BookSnapshot):
                self.view.before_book_row(event, self.key_of(event))
            self._core.apply_held()
            self.view.moved()
        if isinstance(event, BookResyncNeeded):  # recorded (a returned row) or derived
            self._core.mark_out_of_sync(self._key((event.venue, event.instrument)))
            self.view.moved()


_VIEWS = ("quote", "priced_quote", "valid_quote", "prior_valid_quote", "trade")


class CompiledView:
    """The `MarketState` of the compiled core: the reference view's values, read from Rust (module docstring)."""

    def __init__(self, owner: CompiledMarketCore) -> None:
        self._owner = owner
        self._core = owner._core
        self._books: dict[int, SyncedBook | None] = {}
        self._outcomes: dict[int, SyncOutcome] = {}
        """Out-of-sync outcomes with the reference's reason, by key (until the key's next book row)."""
        self._scratch: tuple[int, SyncedBook, BookDelta | BookSnapshot] | None = None

    def apply(self, event: EventBase) -> None:
        self._owner.apply(event)

    def moved(self) -> None:
        self._books.clear()

    def before_book_row(self, event: BookDelta | BookSnapshot, key: int) -> None:
        """Just before a returned book row is applied: keep the book as it is, for the reason of an out-of-sync
        outcome (the reference's own rules word it)."""
        self._outcomes.pop(key, None)
        if self._core.held_out_of_sync():
            self._scratch = (key, self._book(key, with_buffer=True) or SyncedBook(*self._names(key)), event)

    def _names(self, key: int) -> BookKey:
        return self._owner.names[key]

    def _event(self, key: BookKey, which: str) -> EventBase | None:
        index = self._owner._keys.get(key)
        if index is None:
            return None
        row = self._core.view_row(index, which)
        return None if row is None else self._owner.event_at(row)

    def quote(self, venue: str, instrument: str) -> QuoteTick | None:
        return self._event((venue, instrument), "quote")  # type: ignore[return-value]

    def priced_quote(self, venue: str, instrument: str) -> QuoteTick | None:
        return self._event((venue, instrument), "priced_quote")  # type: ignore[return-value]

    def valid_quote(self, venue: str, instrument: str) -> QuoteTick | None:
        return self._event((venue, instrument), "valid_quote")  # type: ignore[return-value]

    def prior_valid_quote(self, venue: str, instrument: str) -> QuoteTick | None:
        return self._event((venue, instrument), "prior_valid_quote")  # type: ignore[return-value]

    def valid_quotes(self) -> Iterator[tuple[BookKey, QuoteTick]]:
        for key in sorted(self._owner._keys):
            quote = self._event(key, "valid_quote")
            if quote is not None:
                yield key, quote  # type: ignore[misc]

    def trade(self, venue: str, instrument: str) -> TradeTick | None:
        return self._event((venue, instrument), "trade")  # type: ignore[return-value]

    def book(self, venue: str, instrument: str) -> SyncedBook | None:
        index = self._owner._keys.get((venue, instrument))
        if index is None:
            return None
        if index not in self._books:
            self._books[index] = self._book(index)
        return self._books[index]

    def _book(self, key: int, with_buffer: bool = False) -> SyncedBook | None:
        state = self._core.book_state(key)
        if state is None:
            return None
        in_sync, has_snapshot, awaiting, applied_id, applied_time, deltas, _, overflows = state
        book = SyncedBook(*self._names(key), applied_update_id=applied_id, applied_time_ns=applied_time,
                          awaiting_first_delta=awaiting, in_sync=in_sync, has_snapshot=has_snapshot,
                          deltas_applied=deltas, buffer_overflows=overflows)  # fmt: skip
        for is_bid in (True, False):
            side = book.side(is_bid)
            levels = self._core.book_levels(key, is_bid)
            side.levels = {amount(pm, pe): amount(qm, qe) for pm, pe, qm, qe in levels}
            side.prices = sorted(side.levels)
        if with_buffer:
            book.buffer.extend(_delta(key, d) for d in self._core.book_buffer(key))
        return book

    def book_outcome(self, venue: str, instrument: str) -> SyncOutcome | None:
        index = self._owner._keys.get((venue, instrument))
        if index is None:
            return None
        raw = self._core.book_outcome(index)
        if raw is None:
            return None
        status, cause, expected, received, replayed, _ = raw
        if _STATUS[status] is not SyncStatus.OUT_OF_SYNC:
            return SyncOutcome(_STATUS[status], replayed=replayed)
        known = self._outcomes.get(index)
        if known is None:
            known = self._outcomes[index] = self._worded(index, (expected, received, replayed, _CAUSE[cause]))
        return known

    def _worded(self, key: int, numbers: tuple[int, int, int, OutOfSyncCause | None]) -> SyncOutcome:
        """The out-of-sync outcome as the reference words it: its rules on the book just before the row."""
        scratch = self._scratch
        if scratch is None or scratch[0] != key:
            raise RuntimeError(f"compiled core: no book row to word the out-of-sync outcome of key {key}")
        _, book, held = scratch
        outcome = book.apply(held)
        got = (outcome.expected_update_id, outcome.received_update_id, outcome.replayed, outcome.cause)
        if outcome.status is not SyncStatus.OUT_OF_SYNC or got != numbers:
            raise RuntimeError(f"compiled core diverged from domain.book on {held!r}: {numbers} vs {outcome}")
        return replace(outcome)


def _delta(
    key: int,
    raw: tuple[int, int, int | None, list[tuple[int, int, int, int]], list[tuple[int, int, int, int]]],
) -> BookDelta:
    """A buffered delta read back from the core, for the reference rules only (its envelope is never read)."""
    first, final, previous, bids, asks = raw
    return BookDelta.model_construct(
        venue="", instrument="", first_update_id=first, final_update_id=final, previous_final_update_id=previous,
        bids=tuple((amount(pm, pe), amount(qm, qe)) for pm, pe, qm, qe in bids),
        asks=tuple((amount(pm, pe), amount(qm, qe)) for pm, pe, qm, qe in asks),
    )  # fmt: skip


_FALLBACKS = ("", FALLBACK_OUT_OF_SYNC, FALLBACK_STALE)
"""Rust's `Fallback` codes, as the venue's reasons."""
_FALLBACK_CODE = {reason: code for code, reason in enumerate(_FALLBACKS)}
_FIRST_LEVELS = 16
"""Levels fetched first when the venue walks a side: most walks stop at the top."""


class CoreVenueBook:
    """`VenueLiquidity` of one (venue, instrument) kept by the compiled core (Rust `VenueBook`)."""

    __slots__ = ("_core", "_key")

    def __init__(self, core: _RustCore, key: int) -> None:
        self._core = core
        self._key = key

    def take(self, event: BookDelta | BookSnapshot | QuoteTick) -> bool:
        changed = self._core.apply_held_venue()
        if changed is None:
            raise RuntimeError(f"compiled core: the venue took {event.type} but no row is held")
        return bool(changed)

    def fallback_reason(self) -> str:
        return _FALLBACKS[self._core.venue_fallback(self._key)]

    def levels(self, bids: bool, reason: str) -> Iterator[Level]:
        code = _FALLBACK_CODE[reason]
        first = self._core.venue_levels(self._key, bids, code, _FIRST_LEVELS)
        for pm, pe, qm, qe in first:
            yield amount(pm, pe), amount(qm, qe)
        if len(first) == _FIRST_LEVELS:
            for pm, pe, qm, qe in self._core.venue_levels(self._key, bids, code)[_FIRST_LEVELS:]:
                yield amount(pm, pe), amount(qm, qe)

    def quantity_at(self, bids: bool, price: Decimal, reason: str) -> Decimal | None:
        found = self._core.venue_quantity_at(self._key, bids, parts(price), _FALLBACK_CODE[reason])
        return None if found is None else amount(*found)


def compiled_core(rows: Iterable[EventBase] | InputColumns, venues: Sequence[Venue]) -> MarketCore:
    """The `application.fast_run.CoreFactory` of the compiled core: simulated venues keep their liquidity in
    it; any other venue observes the skipped rows."""
    keeps = [v for v in venues if hasattr(v, "keep_liquidity_in")]
    others = observers([v for v in venues if v not in keeps])
    core = CompiledMarketCore(rows, others, venue_books=[v.name for v in keeps])
    for venue in keeps:
        venue.keep_liquidity_in(core.venue_liquidity)  # type: ignore[attr-defined]
    return core
