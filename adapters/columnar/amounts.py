"""Exact decimal amounts as (int64 mantissa, int8 exponent), in the canonical form the event codec writes.

The pair is what `decode(encode(event))` holds for an amount: canonical JSON writes plain notation without
trailing zeros after the point (`domain.values.canonical_amount`), so "61800.30000000" is (618003, -1) and
"0.00000000" is (0, 0). `to_decimal` gives back exactly that Decimal (same digits, same exponent).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from functools import lru_cache

from domain.values import canonical_amount

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
EXPONENT_MIN = -128


class AmountOverflow(ValueError):
    """An amount that (int64 mantissa, int8 exponent) cannot hold exactly."""


def parse_amount(text: str) -> tuple[int, int]:
    """(mantissa, exponent) of a decimal string as a source writes it ("61800.30000000", "-0.5", "1E-7")."""
    head, dot, tail = text.partition(".")
    if dot and "e" not in text and "E" not in text:
        tail = tail.rstrip("0")
        try:
            mantissa = int(head + tail) if (head + tail).lstrip("+-") else 0
        except ValueError:
            raise ValueError(f"not a decimal number: {text!r}") from None
        return _checked(mantissa, -len(tail) if mantissa else 0, text)
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not a decimal number: {text!r}") from None
    if not value.is_finite():
        raise ValueError(f"not a finite number: {text!r}")
    return amount_parts(value)


@lru_cache(maxsize=1 << 16)  # equal amounts have one canonical form, so a hit for 1.0 serves 1.00 rightly
def amount_parts(value: Decimal) -> tuple[int, int]:
    """(mantissa, exponent) of an amount in its canonical form."""
    text = canonical_amount(value)
    head, dot, tail = text.partition(".")
    mantissa = int(head + tail)
    return _checked(mantissa, -len(tail) if mantissa else 0, text)


def to_decimal(mantissa: int, exponent: int) -> Decimal:
    """The amount back, with its exponent: (618003, -1) -> Decimal("61800.3")."""
    return Decimal(f"{mantissa}E{exponent}")


def _checked(mantissa: int, exponent: int, text: str) -> tuple[int, int]:
    if not INT64_MIN <= mantissa <= INT64_MAX:
        raise AmountOverflow(
            f"amount {text} does not fit a 64-bit integer mantissa ({len(str(abs(mantissa)))} digits)"
        )
    if exponent < EXPONENT_MIN:
        raise AmountOverflow(f"amount {text} has {-exponent} decimal places, more than {-EXPONENT_MIN}")
    return mantissa, exponent
