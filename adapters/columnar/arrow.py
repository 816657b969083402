"""Arrow arrays and memory for the columnar files, measured on the 2-core VMs we run on (`cse import` of the
two shipped captures: 3.8 s before these, 1.2 s after).

- `pa.array` and `to_numpy` import pandas on their first call (~0.4 s of a command's time): arrays are built
  here from NumPy buffers and Python lists through `pa.Array.from_buffers`, and read back through their
  buffers, which never do.
- pyarrow's default pool (mimalloc) takes ~19 ms per MB of memory it has not used before (huge-page
  compaction on these VMs) against ~1 ms for the system allocator: the big one-off tables of an import are
  built and written `on_system_memory`.
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
    """`pa.array(values, type_)` for the columnar schema's types: integers, bool, utf8, binary (None: null)."""
    n = len(values)
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
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if column.null_count:
        raise ValueError(f"integer column with {column.null_count} nulls")
    dtype = _integer_dtype(column.type)
    return np.frombuffer(column.buffers()[1], dtype, count=len(column), offset=column.offset * dtype.itemsize)


def flags_of(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The values of a bool array without nulls as a NumPy bool array."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if column.null_count:
        raise ValueError(f"bool column with {column.null_count} nulls")
    bits = np.frombuffer(column.buffers()[1], np.uint8)
    return np.unpackbits(bits, count=column.offset + len(column), bitorder="little")[column.offset :].astype(
        np.bool_
    )


def _integer_dtype(type_: pa.DataType) -> np.dtype[Any]:
    if not pa.types.is_integer(type_):
        raise TypeError(f"not an integer type: {type_}")
    return np.dtype(f"{'i' if pa.types.is_signed_integer(type_) else 'u'}{type_.bit_width // 8}")


@contextmanager
def on_system_memory() -> Iterator[None]:
    """Arrow allocations inside come from the system allocator (each buffer frees to the pool it came from)."""
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(previous)
