"""Default maker/taker fees per venue from ccxt's market metadata (the exchange classes' static fee tables,
no network), used where a run configuration does not set them."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt

# Our venue name -> (ccxt exchange id, ccxt fee section): "trading" for spot, "linear"/"inverse" for futures.
VENUE_FEE_SOURCES: dict[str, tuple[str, str]] = {
    "binance-spot": ("binance", "trading"),
    "binance-usdm": ("binance", "linear"),
    "binance-coinm": ("binance", "inverse"),
    "bybit-spot": ("bybit", "trading"),
    "coinbase": ("coinbase", "trading"),
    "kraken": ("kraken", "trading"),
}


def ccxt_fees_bps(venue: str) -> tuple[Decimal, Decimal]:
    """(maker, taker) in bps for `venue`; KeyError naming the known venues if there is no mapping."""
    if venue not in VENUE_FEE_SOURCES:
        raise KeyError(f"no ccxt fee defaults for venue {venue!r}; set maker_bps and taker_bps "
                       f"(known: {', '.join(sorted(VENUE_FEE_SOURCES))})")  # fmt: skip
    exchange_id, section = VENUE_FEE_SOURCES[venue]
    fees: dict[str, Any] = getattr(ccxt, exchange_id)().fees
    table = fees["trading"] if section == "trading" else fees[section]["trading"]
    # str() first: ccxt keeps rates as floats, and Decimal(float) would carry binary noise into money.
    return Decimal(str(table["maker"])) * 10_000, Decimal(str(table["taker"])) * 10_000


def with_fee_defaults(raw: dict[str, Any]) -> dict[str, Any]:
    """A copy of a raw run configuration whose venues all have maker_bps and taker_bps."""
    venues = {}
    for name, fees in dict(raw.get("venues", {})).items():
        fees = dict(fees or {})
        if "maker_bps" not in fees or "taker_bps" not in fees:
            maker, taker = ccxt_fees_bps(name)
            fees.setdefault("maker_bps", str(maker))
            fees.setdefault("taker_bps", str(taker))
        venues[name] = fees
    return {**raw, "venues": venues}
