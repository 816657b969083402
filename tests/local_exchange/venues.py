"""Which market data each venue serves, and from which capture (`captures` overrides the defaults)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from tests.local_exchange.capture import COINM_CAPTURE, SPOT_CAPTURE, USDM_CAPTURE
from tests.local_exchange.server import Installer, VenueServer

DEFAULT_CAPTURES = {
    "binance": SPOT_CAPTURE,
    "binanceusdm": USDM_CAPTURE,
    "binancecoinm": COINM_CAPTURE,
    "bybit": SPOT_CAPTURE,
    "kraken": USDM_CAPTURE,
    "coinbase": SPOT_CAPTURE,
}


BINANCE_MARKETS = {"binance": "spot", "binanceusdm": "usdm", "binancecoinm": "coinm"}


def market_data_installer(captures: Mapping[str, Path], limit: int | None) -> Installer:
    def install(venue: VenueServer) -> None:
        from tests.local_exchange.binance import install_binance
        from tests.local_exchange.bybit import install_bybit
        from tests.local_exchange.coinbase import install_coinbase
        from tests.local_exchange.kraken import install_kraken

        capture = captures.get(venue.name, DEFAULT_CAPTURES.get(venue.name))
        if capture is None:
            raise ValueError(f"local exchange: no market data for venue {venue.name!r} "
                             f"(serves {', '.join(DEFAULT_CAPTURES)})")  # fmt: skip
        if venue.name in BINANCE_MARKETS:
            install_binance(venue, capture, market=BINANCE_MARKETS[venue.name], limit=limit)
        elif venue.name == "bybit":
            install_bybit(venue, capture, limit=limit)
        elif venue.name == "kraken":
            install_kraken(venue, capture, limit=limit)
        elif venue.name == "coinbase":
            install_coinbase(venue, capture, limit=limit)
        else:
            raise ValueError(f"local exchange: no market data for venue {venue.name!r}")

    return install
