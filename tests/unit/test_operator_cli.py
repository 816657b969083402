"""`cse command` input parsing and limit updates: times to the nanosecond, limits validated as a whole."""

from __future__ import annotations

from decimal import Decimal

import pytest

from adapters.entrypoints.commands import UserError
from adapters.entrypoints.operator_cli import parse_time_ns
from application.operator_commands import updated_limits
from domain.values import RiskLimits


@pytest.mark.parametrize(("text", "expected"), [
    ("2024-08-08T23:54:38.123456789Z", 1_723_161_278_123_456_789),
    ("2024-08-08T23:54:38.5", 1_723_161_278_500_000_000),  # no zone: UTC
    ("2024-08-09T01:54:38+02:00", 1_723_161_278_000_000_000),
    ("1723161278000000001", 1_723_161_278_000_000_001),
])  # fmt: skip
def test_times_keep_nanoseconds(text: str, expected: int) -> None:
    assert parse_time_ns(text) == expected


@pytest.mark.parametrize("text", ["yesterday", "2024-13-01T00:00:00Z", "1960-01-01T00:00:00Z", "-5"])
def test_bad_times_are_named(text: str) -> None:
    with pytest.raises(UserError, match="--at"):
        parse_time_ns(text)


def test_limits_change_only_the_given_keys() -> None:
    base = RiskLimits(max_open_orders=7, price_collar_bps=Decimal("30"))
    new = updated_limits(base, {"max_position_per_asset_venue": "2.5"})
    assert new.max_position_per_asset_venue == Decimal("2.5")
    assert new.max_open_orders == 7 and new.price_collar_bps == Decimal("30")
    with pytest.raises(ValueError, match="unknown limit.*max_orders; allowed: drawdown_action, "):
        updated_limits(base, {"max_orders": "1"})
    with pytest.raises(ValueError, match="max_open_orders='1.5'"):
        updated_limits(base, {"max_open_orders": "1.5"})
