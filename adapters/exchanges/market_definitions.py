"""`InstrumentDefined` from an exchange's own market metadata, as ccxt loads it (`exchange.markets[symbol]`).

ccxt gives numbers as floats; each is read back through its shortest repr (`1e-05` -> `0.00001`), which is
the decimal the exchange published (ccxt parsed it from the exchange's text). Our instrument is the
exchange's market id (`BTCUSDT`, `XBTUSDT`), as the file importers name it. Tick and lot sizes are ccxt's
`precision` (tick-size mode for every exchange we support), the minimum notional its `limits.cost.min`
(0 when none), fees its `maker`/`taker` rates (the venue's default tier) in basis points.

Fees: Binance's and Bybit's market metadata carry none, so ccxt fills in built-in defaults, and those can be
stale (ccxt 4.5.90's `binancecoinm` maker is 1 bp; Binance publishes 2 bps for COIN-M Regular). Where our
instrument specification file (`adapters/instruments/specs.toml`, each figure sourced from the venue's
published schedule) specifies the instrument, its fee rates are used and a difference is logged; tick, lot,
minimum notional and contract size always come from the exchange.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from adapters.instruments.catalog import InstrumentCatalog, UnknownInstrument
from domain.events import Envelope, InstrumentDefined

log = logging.getLogger(__name__)

_BPS = Decimal(10_000)


class MarketMetadataError(ValueError):
    """The exchange's metadata lacks what an instrument definition needs; the message names the market."""


def decimal_of(value: Any) -> Decimal:
    """A ccxt number (float, int or numeric string) as the decimal it was parsed from."""
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(str(value))


def instrument_definition(market: dict[str, Any], venue: str, envelope: Envelope) -> InstrumentDefined:
    symbol = market.get("symbol")
    try:
        kind = (
            "spot"
            if market.get("spot")
            else "linear"
            if market.get("linear")
            else "inverse"
            if market.get("inverse")
            else None
        )
        if kind is None:
            raise MarketMetadataError(f"{venue} {symbol}: neither spot nor a linear or inverse contract")
        missing = [k for k in ("price", "amount") if market["precision"].get(k) is None]
        missing += [k for k in ("maker", "taker") if market.get(k) is None]
        if missing:
            raise MarketMetadataError(f"{venue} {symbol}: the market metadata has no {', '.join(missing)}")
        min_cost = (market.get("limits") or {}).get("cost", {}).get("min")
        return InstrumentDefined(
            envelope=envelope, venue=venue, instrument=market["id"], base=market["base"], quote=market["quote"],
            settlement=market.get("settle") or market["quote"], kind=kind,
            contract_size=decimal_of(market.get("contractSize") or 1),
            tick_size=decimal_of(market["precision"]["price"]), lot_size=decimal_of(market["precision"]["amount"]),
            min_notional=decimal_of(min_cost or 0), maker_fee_bps=decimal_of(market["maker"]) * _BPS,
            taker_fee_bps=decimal_of(market["taker"]) * _BPS,
        )  # fmt: skip
    except KeyError as exc:
        raise MarketMetadataError(f"{venue} {symbol}: the market metadata has no {exc.args[0]!r}") from exc


def with_published_fees(
    market: dict[str, Any], venue: str, catalog: InstrumentCatalog
) -> Callable[[Envelope], InstrumentDefined]:
    """The instrument's definition from the exchange's metadata, with the published fee rates of `catalog`
    where it specifies the instrument."""
    try:
        published = catalog.definition(venue, market["id"], "exchange metadata")
    except UnknownInstrument:
        return lambda envelope: instrument_definition(market, venue, envelope)

    def define(envelope: Envelope) -> InstrumentDefined:
        live, spec = instrument_definition(market, venue, envelope), published(envelope)
        fees = {"maker_fee_bps": spec.maker_fee_bps, "taker_fee_bps": spec.taker_fee_bps}
        if (live.maker_fee_bps, live.taker_fee_bps) != (spec.maker_fee_bps, spec.taker_fee_bps):
            log.warning("%s %s: ccxt's default fees %s/%s bps differ from the published %s/%s bps (%s): using "
                        "the published ones", venue, market["id"], live.maker_fee_bps, live.taker_fee_bps,
                        spec.maker_fee_bps, spec.taker_fee_bps, ", ".join(catalog.files))  # fmt: skip
        return live.model_copy(update=fees)

    return define
