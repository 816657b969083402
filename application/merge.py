"""Deterministic k-way merge of ordered streams into one engine input sequence.

Order: (event_time_ns, source priority, sequence within its stream). Priority is the position of the
stream's name in the tuple the caller gives, so equal times always resolve the same way, whatever the
iteration order of the inputs. Streaming: one pending item per input stream is held (heapq), memory is flat.

Unsorted input is refused, not repaired: a stream whose time goes backwards raises `UnsortedInputError`
naming the stream, the position (0-based index within that stream) and both times.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")
E = TypeVar("E", bound="Timed")


class _HasEventTime(Protocol):
    @property
    def event_time_ns(self) -> int: ...


class Timed(Protocol):
    """Anything with `envelope.event_time_ns`: every `domain.events` event (kept structural so this module
    depends on nothing but the standard library)."""

    @property
    def envelope(self) -> _HasEventTime: ...


class UnsortedInputError(ValueError):
    def __init__(self, stream: str, position: int, previous_time_ns: int, time_ns: int) -> None:
        super().__init__(
            f"stream {stream!r} is not sorted by event time: item {position} has time {time_ns}"
            f" < {previous_time_ns} of item {position - 1}"
        )
        self.stream = stream
        self.position = position
        self.previous_time_ns = previous_time_ns
        self.time_ns = time_ns


@dataclass(frozen=True, slots=True)
class Merged(Generic[T]):
    """One merged item and where it came from: `sequence` is its 0-based position within `stream`."""

    time_ns: int
    stream: str
    sequence: int
    item: T


def merge_by_time(
    sources: Mapping[str, Iterable[T]],
    priority: Sequence[str],
    time_of: Callable[[T], int],
) -> Iterator[Merged[T]]:
    """Merge `sources` (stream name -> items ordered by `time_of`) by (time, priority, sequence).

    Every source must be named in `priority`; `priority` may name streams that are absent."""
    rank = {name: i for i, name in enumerate(priority)}
    if len(rank) != len(priority):
        raise ValueError(f"priority names a stream twice: {list(priority)}")
    missing = sorted(set(sources) - set(rank))
    if missing:
        raise ValueError(f"streams without a priority: {missing}")

    iterators: dict[str, Iterator[T]] = {name: iter(items) for name, items in sources.items()}
    # (time, priority, sequence, stream, item): the first three are unique per entry, so items are
    # never compared.
    heap: list[tuple[int, int, int, str, T]] = []
    for name, it in iterators.items():
        for item in it:
            heap.append((time_of(item), rank[name], 0, name, item))
            break
    heapq.heapify(heap)

    while heap:
        time_ns, prio, seq, name, item = heap[0]
        yield Merged(time_ns, name, seq, item)
        nxt: T | _EndMarker = next(iterators[name], _END)
        if isinstance(nxt, _EndMarker):
            heapq.heappop(heap)
            continue
        next_time = time_of(nxt)
        if next_time < time_ns:
            raise UnsortedInputError(name, seq + 1, time_ns, next_time)
        heapq.heapreplace(heap, (next_time, prio, seq + 1, name, nxt))


def merge_events(sources: Mapping[str, Iterable[E]], priority: Sequence[str]) -> Iterator[Merged[E]]:
    """`merge_by_time` for decoded events, on `envelope.event_time_ns`."""
    return merge_by_time(sources, priority, _event_time)


def merge_pairs(
    sources: Mapping[str, Iterable[tuple[int, T]]], priority: Sequence[str]
) -> Iterator[Merged[tuple[int, T]]]:
    """`merge_by_time` for (event_time_ns, item) pairs, e.g. (record.event_time_ns, record) from a log."""
    return merge_by_time(sources, priority, _pair_time)


def _event_time(event: Timed) -> int:
    return event.envelope.event_time_ns


def _pair_time(pair: tuple[int, object]) -> int:
    return pair[0]


class _EndMarker:
    pass


_END = _EndMarker()
