"""Arrow arrays and memory for the columnar files, measured on the 2-core VMs we run on (`cse import` of the
two shipped captures: 3.8 s before these, 1.2 s after).

- `pa.array` and `to_numpy` import pandas on their first call (~0.4 s of a command's time): arrays are built
  here from NumPy buffers and Python lists through `pa.Array.from_buffers`, and read back through their
  buffers, which never do.
- pyarrow's default pool (mimalloc) takes ~19 ms per MB of memory it has not used before (huge pages on
  these VMs), NumPy's huge-page advice for big arrays about as much, against ~1 ms for the system allocator:
  the big one-off tables of an import are built and written `on_system_memory`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import pyarrow as pa


def arrow_of(values: np.ndarray) -> pa.Array:
    """A NumPy array of integers as an Arrow array sharing its memory."""
    values = np.ascontiguousarray(values)
    type_ = {np.dtype(t): pa_type for t, pa_type in _TYPES}[values.dtype]
    return pa.Array.from_buffers(type_, len(values), [None, pa.py_buffer(values)])


_TYPES = ((np.int8, pa.int8()), (np.int16, pa.int16()), (np.int32, pa.int32()), (np.int64, pa.int64()),
          (np.uint32, pa.uint32()), (np.uint64, pa.uint64()))  # fmt: skip


def arrow_from_list(values: Sequence[Any], type_: pa.DataType) -> pa.Array:
    """`pa.array(values, type_)` for the columnar schema's types: integers, bool, utf8, binary (None: null),
    dictionaries of utf8 (no null)."""
    n = len(values)
    if pa.types.is_dictionary(type_):  # its dictionary in the order of first appearance, as a cast gives
        distinct = list(dict.fromkeys(values))
        codes = np.array([distinct.index(v) for v in values], dtype=_integer_dtype(type_.index_type))
        return pa.DictionaryArray.from_arrays(arrow_of(codes), arrow_from_list(distinct, type_.value_type))
    nulls = [v is None for v in values]
    validity = (
        pa.py_buffer(np.packbits(~np.array(nulls, np.bool_), bitorder="little")) if any(nulls) else None
    )
    if pa.types.is_string(type_) or pa.types.is_binary(type_):
        data = [b"" if v is None else (v.encode() if isinstance(v, str) else bytes(v)) for v in values]
        offsets = np.zeros(n + 1, np.int32)
        np.cumsum([len(d) for d in data], out=offsets[1:])
        return pa.Array.from_buffers(
            type_, n, [validity, pa.py_buffer(offsets), pa.py_buffer(b"".join(data))]
        )
    filled = [0 if v is None else v for v in values]
    if pa.types.is_boolean(type_):
        bits = np.packbits(np.array(filled, np.bool_), bitorder="little")
        return pa.Array.from_buffers(type_, n, [validity, pa.py_buffer(bits)])
    # NumPy raises OverflowError for a value its type cannot hold, as pa.array does.
    array = np.array(filled, dtype=_integer_dtype(type_))
    return pa.Array.from_buffers(type_, n, [validity, pa.py_buffer(array)])


def numpy_of(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The values of an integer array without nulls as NumPy, sharing its memory when in one chunk."""
    column = one_chunk(column)
    if column.null_count:
        raise ValueError(f"integer column with {column.null_count} nulls")
    dtype = _integer_dtype(column.type)
    return np.frombuffer(column.buffers()[1], dtype, count=len(column), offset=column.offset * dtype.itemsize)


def one_chunk(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The column as one array: its only chunk as it is, else its chunks joined."""
    if isinstance(column, pa.Array):
        return column
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def flags_of(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The values of a bool array without nulls as a NumPy bool array."""
    column = one_chunk(column)
    if column.null_count:
        raise ValueError(f"bool column with {column.null_count} nulls")
    return _bits(column.buffers()[1], column.offset, len(column))


def _integer_dtype(type_: pa.DataType) -> np.dtype[Any]:
    if not pa.types.is_integer(type_):
        raise TypeError(f"not an integer type: {type_}")
    return np.dtype(f"{'i' if pa.types.is_signed_integer(type_) else 'u'}{type_.bit_width // 8}")


def take(array: pa.Array, order: np.ndarray) -> pa.Array:
    """`array.take(order)` for the columnar schema's types, in NumPy (pyarrow's kernels import
    `pyarrow.compute`, ~0.15 s of a command's time)."""
    n = len(order)
    validity = None
    if array.null_count:
        valid = _bits(array.buffers()[0], array.offset, len(array))
        validity = pa.py_buffer(np.packbits(valid[order], bitorder="little"))
    type_ = array.type
    if pa.types.is_dictionary(type_):
        return pa.DictionaryArray.from_arrays(take(array.indices, order), array.dictionary)
    if pa.types.is_boolean(type_):
        bits = np.packbits(_bits(array.buffers()[1], array.offset, len(array))[order], bitorder="little")
        return pa.Array.from_buffers(type_, n, [validity, pa.py_buffer(bits)])
    if pa.types.is_string(type_) or pa.types.is_binary(type_):
        _, offsets_buffer, data_buffer = array.buffers()
        offsets = np.frombuffer(offsets_buffer, np.int32, count=len(array) + 1, offset=array.offset * 4)
        data = np.frombuffer(data_buffer, np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
        starts = offsets[order]
        lengths = offsets[order + 1] - starts
        new_offsets = np.zeros(n + 1, np.int32)
        np.cumsum(lengths, out=new_offsets[1:])
        picked = data[np.repeat(starts - new_offsets[:-1], lengths) + np.arange(int(new_offsets[-1]))]
        return pa.Array.from_buffers(type_, n, [validity, pa.py_buffer(new_offsets), pa.py_buffer(picked)])
    dtype = _integer_dtype(type_)
    values = np.frombuffer(array.buffers()[1], dtype, count=len(array), offset=array.offset * dtype.itemsize)
    return pa.Array.from_buffers(type_, n, [validity, pa.py_buffer(values[order])])


class Gather:
    """`take` over the chunks of columns that share one chunk layout (the parts of a table joined without
    copying): which output rows each chunk fills and from which of its rows, worked out once for all."""

    def __init__(self, lengths: Sequence[int], order: np.ndarray) -> None:
        self.lengths = list(lengths)
        self.order = order
        starts = np.cumsum([0, *self.lengths])
        chunk = np.searchsorted(starts[1:], order, side="right")
        self._parts: list[tuple[np.ndarray, slice | np.ndarray]] = []
        for k, length in enumerate(self.lengths):
            at = np.flatnonzero(chunk == k)
            rows = order[at] - starts[k]
            # A chunk taken whole and in its order (a file's block of one stream) is copied, not gathered.
            whole = len(rows) == length and (length < 2 or bool(np.all(rows[1:] > rows[:-1])))
            self._parts.append((at, slice(None) if whole else rows))

    def take(self, column: pa.ChunkedArray) -> pa.Array:
        """`column.take(order)`; integer columns go chunk by chunk, others are joined first."""
        chunks = column.chunks
        if not pa.types.is_integer(column.type) or [len(c) for c in chunks] != self.lengths:
            return take(one_chunk(column), self.order)
        dtype = _integer_dtype(column.type)
        out = np.empty(len(self.order), dtype)
        valid = np.empty(len(self.order), np.bool_) if column.null_count else None
        for chunk, (at, rows) in zip(chunks, self._parts, strict=True):
            values = np.frombuffer(
                chunk.buffers()[1], dtype, count=len(chunk), offset=chunk.offset * dtype.itemsize
            )
            out[at] = values[rows]
            if valid is not None:
                valid[at] = (
                    _bits(chunk.buffers()[0], chunk.offset, len(chunk))[rows] if chunk.null_count else True
                )
        validity = None if valid is None else pa.py_buffer(np.packbits(valid, bitorder="little"))
        return pa.Array.from_buffers(column.type, len(out), [validity, pa.py_buffer(out)])


def _bits(buffer: pa.Buffer, offset: int, length: int) -> np.ndarray:
    return np.unpackbits(np.frombuffer(buffer, np.uint8), count=offset + length, bitorder="little")[
        offset:
    ].astype(np.bool_)


@contextmanager
def on_system_memory() -> Iterator[None]:
    """Arrow allocations inside come from the system allocator (each buffer frees to the pool it came from),
    and NumPy gives its big arrays no huge-page advice (which costs the same as mimalloc's here)."""
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    advise = _numpy_hugepage(False)
    try:
        yield
    finally:
        _numpy_hugepage(advise)
        pa.set_memory_pool(previous)


def use_system_memory() -> None:
    """`on_system_memory` for the whole process (the command line sets it once at start): a run reads its
    columnar file a batch at a time, and every batch and converted slice is fresh memory."""
    pa.set_memory_pool(pa.system_memory_pool())
    _numpy_hugepage(False)


def _numpy_hugepage(on: bool) -> bool:
    """Set NumPy's huge-page advice for big arrays (Linux), returning the previous setting."""
    setter = getattr(getattr(np, "_core", None), "multiarray", None)
    setter = getattr(setter, "_set_madvise_hugepage", None)
    return bool(setter(on)) if setter is not None else on
