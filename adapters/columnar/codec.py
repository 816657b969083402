"""Events <-> columnar rows (layout in `schema`): `RowBuilder` turns market-data events into rows, `materialise`
turns the rows of a file back into the exact events (ids of the session reading them).

The round trip is exact by construction and checked where it matters: an import builds rows from the events
it would have stored, and `cse migrate` compares every materialised event's canonical bytes with the stored
ones before it drops a SQLite row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
from pydantic import BaseModel

from adapters.columnar import schema as s
from adapters.columnar.amounts import amount_parts, to_decimal
from adapters.columnar.arrow import (
    Gather,
    arrow_from_list,
    arrow_of,
    numpy_of,
    on_system_memory,
    one_chunk,
    take,
)
from domain.events import (
    BookDelta,
    BookSnapshot,
    Envelope,
    EventBase,
    QuoteTick,
    TradeTick,
    decode,
    encode,
    input_event_id,
)
from domain.values import Side

_AGGRESSOR = {Side.BUY: s.AGGRESSOR_BUY, Side.SELL: s.AGGRESSOR_SELL}
_CLASS_OF_KIND: dict[int, type[EventBase]] = {s.KIND_QUOTE: QuoteTick, s.KIND_TRADE: TradeTick,
                                              s.KIND_DELTA: BookDelta, s.KIND_SNAPSHOT: BookSnapshot}  # fmt: skip
EVENT_TYPES: tuple[str, ...] = tuple(
    _CLASS_OF_KIND[k].model_fields["type"].default if k in _CLASS_OF_KIND else ""
    for k in range(max(_CLASS_OF_KIND) + 1)
)
"""The event type of each market-data row kind (`schema.KIND_*` as index; "" for none)."""
_SIDE_OF = {s.AGGRESSOR_BUY: Side.BUY, s.AGGRESSOR_SELL: Side.SELL}
_ROW_CHUNK = 65_536
"""Rows converted to Python objects at a time: memory stays flat whatever the file's length."""


class RowBuilder:
    """Accumulates the rows of market-data events, in the order added; `table` sorts them into engine order.
    Rows are packed into Arrow every `_ROW_CHUNK` rows, so an import holds them compactly."""

    def __init__(self) -> None:
        self._pending: list[tuple[Any, ...]] = []
        self._packed: list[pa.Table] = []
        self._rows = 0

    def __len__(self) -> int:
        return self._rows

    def add(self, stream: str, event: EventBase) -> None:
        """Rows of one event of `stream`. Raises `AmountOverflow` (nothing added) for an amount that does
        not fit; the caller names the input."""
        env = event.envelope
        common = (stream, env.sequence, env.event_time_ns, env.ingest_time_ns, env.source)
        if isinstance(event, QuoteTick):
            bid_p, bid_s = amount_parts(event.bid_price), amount_parts(event.bid_size)
            ask_p, ask_s = amount_parts(event.ask_price), amount_parts(event.ask_size)
            self._row(common, s.KIND_QUOTE, event, s.SIDE_NONE, bid_p, bid_s, ask=(ask_p, ask_s),
                      ids=(None, event.venue_update_id, None), time=event.exchange_time_ns)  # fmt: skip
        elif isinstance(event, TradeTick):
            price, size = amount_parts(event.price), amount_parts(event.size)
            self._row(common, s.KIND_TRADE, event, s.SIDE_NONE, price, size, time=event.exchange_time_ns,
                      trade=(event.venue_trade_id, _AGGRESSOR[event.aggressor_side]))  # fmt: skip
        elif isinstance(event, BookDelta | BookSnapshot):
            if isinstance(event, BookDelta):
                kind, time = s.KIND_DELTA, event.exchange_time_ns
                ids = (event.first_update_id, event.final_update_id, event.previous_final_update_id)
            else:
                kind, time, ids = s.KIND_SNAPSHOT, None, (None, event.last_update_id, None)
            levels = [(s.SIDE_BID, amount_parts(p), amount_parts(q)) for p, q in event.bids]
            levels += [(s.SIDE_ASK, amount_parts(p), amount_parts(q)) for p, q in event.asks]
            last = max(len(levels) - 1, 0)
            for i, (side, price, size) in enumerate(levels or [(s.SIDE_NONE, (0, 0), (0, 0))]):
                self._row(common, kind, event, side, price, size, ids=ids, time=time, end=i == last)
        else:
            self._row(common, s.KIND_EVENT, event, s.SIDE_NONE, (0, 0), (0, 0), payload=encode(event))
        if len(self._pending) >= _ROW_CHUNK:
            self._pack()

    def _row(
        self, common: tuple[str, int, int, int, str], kind: int, event: Any, side: int, price: tuple[int, int],
        size: tuple[int, int], *, ask: tuple[tuple[int, int], tuple[int, int]] = ((0, 0), (0, 0)),
        ids: tuple[int | None, int | None, int | None] = (None, None, None), time: int | None = None,
        trade: tuple[str | None, int] = (None, s.AGGRESSOR_NONE), payload: bytes | None = None, end: bool = True,
    ) -> None:  # fmt: skip
        stream, sequence, event_time, ingest_time, source = common
        self._pending.append((
            stream, sequence, kind, end, event_time, ingest_time, time, source,
            getattr(event, "venue", ""), getattr(event, "instrument", ""), side,
            price[0], price[1], size[0], size[1], ask[0][0], ask[0][1], ask[1][0], ask[1][1],
            ids[0], ids[1], ids[2], trade[0], trade[1], payload,
        ))  # fmt: skip
        self._rows += 1

    def add_columns(
        self, streams: Sequence[tuple[str, str, str]], stream: np.ndarray, sequence: np.ndarray, source: str,
        columns: Mapping[str, pa.Array],
    ) -> None:  # fmt: skip
        """Rows given as columns (a compiled parser's), after those added so far: `streams[i]` is (name, venue,
        instrument) of stream index i, numbered in the order of their first row; `stream` and `sequence` per
        row; `columns` every other column of the schema but `source`, `venue` and `instrument`."""
        self._pack()
        index = stream.astype(np.int16)
        names, venues, instruments = (list(values) for values in zip(*streams, strict=True))
        stream_names = arrow_from_list(names, pa.utf8())
        derived = {
            "stream": pa.DictionaryArray.from_arrays(arrow_of(stream.astype(np.int32)), stream_names),
            "sequence": arrow_of(sequence.astype(np.int64)),
            "source": _text(np.zeros(len(index), np.int16), [source]),
            "venue": _text(index, venues),
            "instrument": _text(index, instruments),
        }
        arrays = [derived[f.name] if f.name in derived else columns[f.name] for f in _PACKED]
        self._packed.append(pa.Table.from_arrays(arrays, schema=_PACKED))
        self._rows += len(index)

    def _pack(self) -> None:
        """The pending rows as Arrow (stream still by name: indices are fixed when the file is built)."""
        if self._pending:
            arrays = [
                arrow_from_list(values, f.type)
                for f, values in zip(_PACKED, zip(*self._pending, strict=True), strict=True)
            ]
            self._packed.append(pa.Table.from_arrays(arrays, schema=_PACKED))
            self._pending = []

    def table(self, existing: pa.Table | None = None) -> pa.Table:
        """These rows (after `existing`'s, when given), in engine order: (event time, stream name,
        sequence), a message's rows in their order."""
        with on_system_memory():
            return self._table(existing)

    def _table(self, existing: pa.Table | None) -> pa.Table:
        self._pack()
        parts = list(self._packed)
        if existing is not None:
            old_names = arrow_from_list(s.streams_of(existing.schema), pa.utf8())
            codes = arrow_of(numpy_of(existing["stream"]).astype(np.int32))
            parts.insert(0, existing.set_column(0, _PACKED.field(0), pa.DictionaryArray.from_arrays(codes, old_names))
                         .replace_schema_metadata(None))  # fmt: skip
        # Joined without copying; joining a dictionary column's chunks unifies their dictionaries in the
        # order of first appearance.
        rows = pa.concat_tables(parts)
        streams = one_chunk(rows["stream"])
        codes = numpy_of(streams.indices)
        values = streams.dictionary.to_pylist()
        used = np.flatnonzero(np.bincount(codes, minlength=len(values)))
        names = sorted(values[i] for i in used)
        rank = np.zeros(len(values), dtype=np.int16)
        rank[used] = [names.index(values[i]) for i in used]
        index = rank[codes]
        order = engine_order(numpy_of(rows["event_time_ns"]), index, numpy_of(rows["sequence"]))
        gather = Gather([len(c) for c in rows["sequence"].chunks], order)
        columns = [take(arrow_of(index), order), *(gather.take(rows[f.name]) for f in s.FIELDS[1:])]
        return pa.Table.from_arrays(columns, schema=s.schema(names))


def engine_order(time_ns: np.ndarray, stream: np.ndarray, sequence: np.ndarray) -> np.ndarray:
    """Row order by (event time, stream index, sequence), ties in row order: `np.lexsort((rows, sequence,
    stream, time_ns))`. Rows come stream by stream in sequence order, so a stable sort by stream then by time
    (radix, then merging sorted runs) already gives it; it is checked, and lexsort decides otherwise."""
    by_stream = np.argsort(stream, kind="stable")
    order = by_stream[np.argsort(time_ns[by_stream], kind="stable")]
    dt, dk, dq = (np.diff(column[order]) for column in (time_ns, stream, sequence))
    if np.all((dt > 0) | ((dt == 0) & ((dk > 0) | ((dk == 0) & (dq >= 0))))):
        return order
    return np.lexsort((np.arange(len(time_ns)), sequence, stream, time_ns))


def _text(index: np.ndarray, values: list[str]) -> pa.DictionaryArray:
    """`values[index]` as the schema's dictionary column, its dictionary in the order of first appearance."""
    distinct = list(dict.fromkeys(values))
    codes = np.array([distinct.index(v) for v in values], dtype=np.int16)
    return pa.DictionaryArray.from_arrays(arrow_of(codes[index]), arrow_from_list(distinct, pa.utf8()))


_PACKED = pa.schema([pa.field("stream", pa.dictionary(pa.int32(), pa.utf8())), *s.FIELDS[1:]])
"""Rows before `table`: the stream by name (a dictionary per part, unified when the parts are joined)."""


class Materialiser:
    """Events from the rows of one file: each message's envelope is rebuilt for `session_id` (id from
    (session, stream, sequence)), amounts become the Decimals they were."""

    def __init__(self, streams: list[str]) -> None:
        self._streams = streams
        self._amounts: dict[tuple[int, int], Decimal] = {}

    def events(self, table: pa.Table, session_id: str) -> Iterator[tuple[str, EventBase]]:
        """(stream, event) for every message of `table` (rows of whole messages), in row order."""
        ends = np.flatnonzero(table["msg_end"].to_numpy(zero_copy_only=False)) + 1
        start = 0
        for stop in _chunk_bounds(ends, _ROW_CHUNK):
            chunk = table.slice(start, stop - start)
            yield from self._chunk(chunk, session_id)
            start = stop

    def _chunk(self, chunk: pa.Table, session_id: str) -> Iterator[tuple[str, EventBase]]:
        # Vectorised per chunk: each distinct amount becomes a Decimal once, each level tuple is built in C;
        # the loop below only assembles messages. Events are built with `model_construct` (no validation):
        # every value already has the type validation would give, and the tests compare every materialised
        # event with the decoded stored one, field by field and byte for byte.
        c = {name: _pylist(chunk[name]) for name in _SCALARS}
        prices = self._amounts_of(chunk, "price")
        sizes = self._amounts_of(chunk, "size")
        side = chunk["side"].to_numpy()
        ends = np.flatnonzero(chunk["msg_end"].to_numpy(zero_copy_only=False)) + 1
        starts = np.concatenate(([0], ends[:-1]))
        bid_counts = np.add.reduceat((side == s.SIDE_BID).astype(np.int64), starts).tolist()
        level_counts = np.add.reduceat((side != s.SIDE_NONE).astype(np.int64), starts).tolist()
        return self._assemble(c, prices, sizes, starts.tolist(), bid_counts, level_counts, session_id)

    def message(self, c: dict[str, list[Any]], session_id: str) -> tuple[str, EventBase]:
        """(stream, event) of one message from its rows' values as Python lists (`_SCALARS` plus the amount
        mantissas/exponents and `side`; null as None): one message without a table's per-call costs."""
        prices = [self._amount(m, e) for m, e in zip(c["price_m"], c["price_e"], strict=True)]
        sizes = [self._amount(m, e) for m, e in zip(c["size_m"], c["size_e"], strict=True)]
        sides = c["side"]
        bids = sum(1 for side in sides if side == s.SIDE_BID)
        levels = sum(1 for side in sides if side != s.SIDE_NONE)
        return next(self._assemble(c, prices, sizes, [0], [bids], [levels], session_id))

    def _assemble(
        self,
        c: dict[str, list[Any]],
        prices: list[Decimal],
        sizes: list[Decimal],
        starts: list[int],
        bid_counts: list[int],
        level_counts: list[int],
        session_id: str,
    ) -> Iterator[tuple[str, EventBase]]:
        levels = list(zip(prices, sizes, strict=True))
        streams = self._streams
        envelope_of = _ENVELOPE
        for m, row in enumerate(starts):
            stream = streams[c["stream"][row]]
            sequence = c["sequence"][row]
            envelope = envelope_of(
                event_id=input_event_id(session_id, stream, sequence), causation_id=None, correlation_id=None,
                session_id=session_id, sequence=sequence, event_time_ns=c["event_time_ns"][row],
                ingest_time_ns=c["ingest_time_ns"][row], source=c["source"][row],
            )  # fmt: skip
            kind = c["kind"][row]
            event: EventBase
            if kind == s.KIND_DELTA or kind == s.KIND_SNAPSHOT:
                split = row + bid_counts[m]
                bids, asks = tuple(levels[row:split]), tuple(levels[split : row + level_counts[m]])
                if kind == s.KIND_DELTA:
                    event = _BOOKDELTA(
                        type="market.book_delta", schema_version=1, envelope=envelope, venue=c["venue"][row],
                        instrument=c["instrument"][row], first_update_id=c["first_update_id"][row],
                        final_update_id=c["final_update_id"][row],
                        previous_final_update_id=c["previous_update_id"][row], bids=bids, asks=asks,
                        exchange_time_ns=c["exchange_time_ns"][row],
                    )  # fmt: skip
                else:
                    event = _BOOKSNAPSHOT(
                        type="market.book_snapshot", schema_version=1, envelope=envelope, venue=c["venue"][row],
                        instrument=c["instrument"][row], last_update_id=c["final_update_id"][row], bids=bids,
                        asks=asks,
                    )  # fmt: skip
            elif kind == s.KIND_QUOTE:
                ask_price, ask_size = self._amount(c["ask_price_m"][row], c["ask_price_e"][row]), self._amount(
                    c["ask_size_m"][row], c["ask_size_e"][row])  # fmt: skip
                event = _QUOTETICK(
                    type="market.quote", schema_version=1, envelope=envelope, venue=c["venue"][row],
                    instrument=c["instrument"][row], bid_price=prices[row], bid_size=sizes[row],
                    ask_price=ask_price, ask_size=ask_size, venue_update_id=c["final_update_id"][row],
                    exchange_time_ns=c["exchange_time_ns"][row],
                )  # fmt: skip
            elif kind == s.KIND_TRADE:
                event = _TRADETICK(
                    type="market.trade", schema_version=1, envelope=envelope, venue=c["venue"][row],
                    instrument=c["instrument"][row], price=prices[row], size=sizes[row],
                    aggressor_side=_SIDE_OF[c["aggressor"][row]], venue_trade_id=c["trade_id"][row],
                    exchange_time_ns=c["exchange_time_ns"][row],
                )  # fmt: skip
            elif kind == s.KIND_EVENT:
                event = decode(c["payload"][row]).model_copy(update={"envelope": envelope})
            else:
                raise ValueError(f"row of unknown kind {kind} in stream {stream}")
            yield stream, event

    def _amounts_of(self, chunk: pa.Table, name: str) -> list[Decimal]:
        """The column pair `<name>_m`, `<name>_e` as Decimals, each distinct amount built once."""
        mantissas = chunk[f"{name}_m"].to_numpy()
        exponents = chunk[f"{name}_e"].to_numpy().astype(np.int64)
        if len(mantissas) and np.abs(mantissas).max() < 1 << 54:  # one int64 key per pair: a fast unique
            distinct, inverse = np.unique(mantissas * 256 + (exponents + 128), return_inverse=True)
            pairs = [(int(k) >> 8, (int(k) & 255) - 128) for k in distinct.tolist()]
        else:
            keys = list(zip(mantissas.tolist(), exponents.tolist(), strict=True))
            pairs = sorted(set(keys))
            inverse = np.array([pairs.index(k) for k in keys], dtype=np.int64)  # rare: 17+ digit amounts
        values = np.array([self._amount(m, e) for m, e in pairs] + [None], dtype=object)
        return values[inverse.reshape(-1)].tolist()  # type: ignore[no-any-return]

    def _amount(self, mantissa: int, exponent: int) -> Decimal:
        key = (mantissa, exponent)
        value = self._amounts.get(key)
        if value is None:
            if len(self._amounts) > 1 << 18:  # bounded: memory stays flat on long sessions
                self._amounts.clear()
            value = self._amounts[key] = to_decimal(mantissa, exponent)
        return value


def _constructor(cls: type[M]) -> Callable[..., M]:
    """`cls(**fields)` without validation, for fields that already have their validated types and are all
    given: what `model_construct` does, without its per-field alias and default handling (5x faster)."""
    every = frozenset(cls.model_fields)
    new = cls.__new__
    set_attribute = object.__setattr__

    def build(**fields: Any) -> M:
        instance = new(cls)
        set_attribute(instance, "__dict__", fields)
        set_attribute(instance, "__pydantic_fields_set__", set(every))
        set_attribute(instance, "__pydantic_extra__", None)
        set_attribute(instance, "__pydantic_private__", None)
        return instance

    return build


M = TypeVar("M", bound=BaseModel)
_ENVELOPE = _constructor(Envelope)
_BOOKDELTA = _constructor(BookDelta)
_BOOKSNAPSHOT = _constructor(BookSnapshot)
_QUOTETICK = _constructor(QuoteTick)
_TRADETICK = _constructor(TradeTick)
_SCALARS = ("stream", "sequence", "kind", "event_time_ns", "ingest_time_ns", "exchange_time_ns", "source", "venue",
            "instrument", "ask_price_m", "ask_price_e", "ask_size_m", "ask_size_e", "first_update_id",
            "final_update_id", "previous_update_id", "trade_id", "aggressor", "payload")  # fmt: skip


def _pylist(column: pa.ChunkedArray) -> list[Any]:
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if pa.types.is_integer(column.type) and column.null_count == 0:
        return column.to_numpy().tolist()  # type: ignore[no-any-return]
    return column.to_pylist()


def _chunk_bounds(ends: np.ndarray, size: int) -> Iterator[int]:
    """Row positions closing chunks of about `size` rows, each on a message end, the last the table's end."""
    if len(ends) == 0:
        return
    targets = np.arange(size, int(ends[-1]), size)
    picked = ends[np.searchsorted(ends, targets)] if len(targets) else ends[:0]
    last = 0
    for stop in [*picked.tolist(), int(ends[-1])]:
        if stop > last:
            yield stop
            last = stop
