"""CryptoSpreadEdge's compiled market core (Rust, `core/crates`): books, views, the venue's book view and wake
evaluation over columnar market-data rows. Amounts cross as (int64 mantissa, int8 exponent) pairs; Python
builds every Decimal. The reference implementation is `domain/` (book.py, market_view.py, wake.py)."""

from cse_core._core import FORMAT, MarketCore

__all__ = ["FORMAT", "MarketCore"]
