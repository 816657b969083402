"""What an instrument's specification (`InstrumentDefined`) means for money: the one place the arithmetic of
spot, linear and inverse instruments lives (portfolio, read models, venue and risk use it).

Units: a fill of `q` contracts is `q * contract_size` units. For spot and linear instruments a unit is one
base unit (BTC) priced in the quote currency, so a quantity of units is worth `units * price` of the
settlement (= quote) currency. For inverse instruments a unit is one unit of the quote currency (USD), so
`units` are worth `units / price` of the settlement coin (BTC): Binance COIN-M BTCUSD_PERP, 10 contracts x
100 USD at 60,000 = 1000 / 60000 BTC. That value is rounded half-even to SETTLEMENT_QUANTUM (far below one
satoshi) so every later sum is exact and the read models, which store 18 places, agree digit for digit.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from domain.events.market import InstrumentDefined

SETTLEMENT_QUANTUM = Decimal("1e-12")
"""Rounding step of every computed settlement amount (inverse values, pro-rata cost of a partial close)."""

_ZERO = Decimal(0)


def is_spot(spec: InstrumentDefined) -> bool:
    return spec.kind == "spot"


def is_inverse(spec: InstrumentDefined) -> bool:
    return spec.kind == "inverse"


def units(spec: InstrumentDefined, contracts: Decimal) -> Decimal:
    """Base units (spot, linear) or quote-currency units (inverse) of `contracts`."""
    return contracts * spec.contract_size


def settlement_value(units_: Decimal, price: Decimal, inverse: bool) -> Decimal:
    """What `units_` (signed) are worth at `price`, in the settlement currency."""
    if inverse:
        return (units_ / price).quantize(SETTLEMENT_QUANTUM, rounding=ROUND_HALF_EVEN)
    return units_ * price


def notional(spec: InstrumentDefined, contracts: Decimal, price: Decimal) -> Decimal:
    """Order value in the quote currency (what `min_notional` is compared with): price x base units for spot
    and linear, the contracts' face value for inverse."""
    face = units(spec, contracts)
    return face if is_inverse(spec) else face * price


def unrealized_pnl(held: Decimal, cost: Decimal, mark: Decimal, inverse: bool) -> Decimal:
    """PnL in the settlement currency of `held` units carried at `cost` (signed), marked at `mark`.
    Inverse: long N units from P0 to P1 earns N/P0 - N/P1 (cost - value), the mirror of linear."""
    if held == _ZERO:
        return _ZERO
    value = settlement_value(held, mark, inverse)
    return cost - value if inverse else value - cost


def position_after_fill(
    held: Decimal, cost: Decimal, signed_units: Decimal, price: Decimal, inverse: bool = False
) -> tuple[Decimal, Decimal, Decimal]:
    """(units held, cost basis, realized PnL) after a fill of `signed_units` at `price` on a position of
    `held` units at `cost` (settlement currency, signed like the position). Average-cost method (for inverse
    contracts this is the harmonic-mean entry price Binance uses); closing part of a position removes its
    pro-rata cost, rounded to SETTLEMENT_QUANTUM. The one place position arithmetic lives: portfolio and read
    models both call it, so they agree to the last digit."""
    realized = _ZERO
    if held == _ZERO or (held > _ZERO) == (signed_units > _ZERO):
        cost += settlement_value(signed_units, price, inverse)
    else:
        quantity = abs(signed_units)
        closed = min(quantity, abs(held))
        if closed == abs(held):
            removed = cost
        else:
            removed = (cost * closed / abs(held)).quantize(SETTLEMENT_QUANTUM, rounding=ROUND_HALF_EVEN)
        proceeds = settlement_value(closed if held > _ZERO else -closed, price, inverse)
        realized = removed - proceeds if inverse else proceeds - removed
        cost -= removed
        opened = quantity - closed
        if opened > _ZERO:
            cost += settlement_value(opened if signed_units > _ZERO else -opened, price, inverse)
    held += signed_units
    if held == _ZERO:
        cost = _ZERO  # already exactly zero; guards against a stray digit from the division
    return held, cost, realized
