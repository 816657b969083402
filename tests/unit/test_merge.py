"""The k-way merge: (time, priority, sequence) order, determinism, streaming, and refusal of unsorted input."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from application.merge import UnsortedInputError, merge_by_time, merge_events, merge_pairs
from domain.events import Envelope, QuoteTick

pytestmark = pytest.mark.unit


def pairs(stream: str, *times: int) -> list[tuple[int, str]]:
    return [(t, f"{stream}{i}") for i, t in enumerate(times)]


def test_orders_by_time() -> None:
    out = merge_pairs({"a": pairs("a", 1, 4, 6), "b": pairs("b", 2, 3, 7)}, ["a", "b"])
    assert [m.item[1] for m in out] == ["a0", "b0", "b1", "a1", "a2", "b2"]


def test_equal_times_follow_priority_not_mapping_order() -> None:
    sources = {"low": pairs("low", 5), "high": pairs("high", 5), "mid": pairs("mid", 5)}
    out = list(merge_pairs(sources, ["high", "mid", "low"]))
    assert [m.stream for m in out] == ["high", "mid", "low"]
    out = list(merge_pairs(sources, ["low", "mid", "high"]))
    assert [m.stream for m in out] == ["low", "mid", "high"]


def test_equal_times_within_a_stream_keep_sequence() -> None:
    out = list(merge_pairs({"a": pairs("a", 1, 1, 1), "b": pairs("b", 1, 1)}, ["b", "a"]))
    assert [(m.stream, m.sequence) for m in out] == [("b", 0), ("b", 1), ("a", 0), ("a", 1), ("a", 2)]
    assert [m.item[1] for m in out] == ["b0", "b1", "a0", "a1", "a2"]


def test_refuses_unsorted_input_naming_stream_position_and_times() -> None:
    out = merge_pairs({"a": pairs("a", 1, 2), "b": pairs("b", 1, 5, 3, 9)}, ["a", "b"])
    with pytest.raises(UnsortedInputError) as info:
        list(out)
    err = info.value
    assert (err.stream, err.position, err.previous_time_ns, err.time_ns) == ("b", 2, 5, 3)
    assert "'b'" in str(err) and "3" in str(err) and "5" in str(err)


def test_every_source_needs_a_priority() -> None:
    with pytest.raises(ValueError, match="without a priority"):
        list(merge_pairs({"a": [], "x": []}, ["a"]))
    with pytest.raises(ValueError, match="twice"):
        list(merge_pairs({"a": []}, ["a", "a"]))


def test_empty_and_absent_streams() -> None:
    assert list(merge_pairs({"a": [], "b": []}, ["a", "b", "c"])) == []
    assert [m.item for m in merge_pairs({"a": [], "b": pairs("b", 1)}, ["a", "b"])] == [(1, "b0")]


def test_streaming_pulls_at_most_one_item_ahead_per_stream() -> None:
    pulled = {"a": 0, "b": 0}

    def counting(name: str) -> Iterator[tuple[int, str]]:
        for t in itertools.count():
            pulled[name] += 1
            yield (t * 2 + (name == "b"), name)

    out = merge_pairs({"a": counting("a"), "b": counting("b")}, ["a", "b"])
    first = list(itertools.islice(out, 1000))
    assert [m.time_ns for m in first] == list(range(1000))
    assert max(pulled.values()) <= 501


def quote(t: int, source: str) -> QuoteTick:
    env = Envelope(
        event_id=uuid.uuid4(), session_id="s", sequence=0, event_time_ns=t, ingest_time_ns=t, source=source
    )
    one = Decimal(1)
    return QuoteTick(
        envelope=env, venue=source, instrument="X", bid_price=one, bid_size=one, ask_price=one, ask_size=one
    )


def test_merges_decoded_events_on_envelope_time() -> None:
    spot = [quote(10, "spot"), quote(30, "spot")]
    perp = [quote(10, "perp"), quote(20, "perp")]
    out = list(merge_events({"spot": spot, "perp": perp}, ["perp", "spot"]))
    assert [(m.time_ns, m.item.venue) for m in out] == [
        (10, "perp"),
        (10, "spot"),
        (20, "perp"),
        (30, "spot"),
    ]


def test_generic_key_function() -> None:
    out = merge_by_time({"a": [1, 3], "b": [2]}, ["a", "b"], time_of=lambda x: x * 100)
    assert [m.item for m in out] == [1, 2, 3]


@given(st.lists(st.lists(st.integers(0, 20), max_size=15), min_size=1, max_size=5))
def test_output_is_the_sorted_union(streams: list[list[int]]) -> None:
    sources = {f"s{i}": [(t, (i, j)) for j, t in enumerate(sorted(ts))] for i, ts in enumerate(streams)}
    priority = [f"s{i}" for i in reversed(range(len(streams)))]
    out = list(merge_pairs(sources, priority))
    keys = [(m.time_ns, priority.index(m.stream), m.sequence) for m in out]
    assert keys == sorted(keys)
    assert sorted(m.item for m in out) == sorted(p for s in sources.values() for p in s)
