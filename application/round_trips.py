"""Round trips: what a trader counts as trades, matched FIFO on fills, fees included.

Inventory is kept per (venue, instrument): the two legs of a spread are two inventories, because each venue
holds its own position and margin. A fill in the direction of the open inventory (or from flat) opens a lot
(quantity, price, its fee). A fill against it closes the oldest lots first (FIFO); that fill is ONE round
trip: its quantity is what it closed, its entry price the quantity-weighted price of the lots (or parts of
lots) it closed, its fees the closed lots' fees pro rata plus the exit fill's fee pro rata, and

    pnl = (exit_price - entry_price) * quantity * (+1 long, -1 short) - fees.

What the fill has left over after flattening opens a lot the other way (a flip) with the rest of its fee.
A position still open at the end is not a round trip: it is end inventory, marked at the last mid.

Quantities are in the instrument's units (contracts for futures). Spot and linear contracts of
`contract_size` base units: the formula above times `contract_size`. Inverse contracts (each worth
`contract_size` units of the quote currency, settled in the base coin, e.g. Binance COIN-M): the entry price
is the harmonic mean of the closed lots' prices, the PnL in the base coin is quantity * contract_size *
(1/entry - 1/exit) * direction, valued in the quote currency at the exit price; fees are passed in quote.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal

from domain.events import OrderFillEvent
from domain.values import ZERO, canonical_amount, decimal_context

ONE = Decimal(1)


@dataclass(frozen=True)
class RoundTrip:
    venue: str
    instrument: str
    direction: str
    """"long" (bought, then sold) or "short" (sold, then bought back)."""
    quantity: Decimal
    entry_time_ns: int
    """Time of the oldest lot closed."""
    exit_time_ns: int
    entry_price: Decimal
    exit_price: Decimal
    fees: Decimal
    pnl: Decimal

    def as_dict(self) -> dict[str, str | int]:
        return {"venue": self.venue, "instrument": self.instrument, "direction": self.direction,
                "quantity": canonical_amount(self.quantity), "entry_time_ns": self.entry_time_ns,
                "exit_time_ns": self.exit_time_ns, "entry_price": canonical_amount(self.entry_price),
                "exit_price": canonical_amount(self.exit_price), "fees": canonical_amount(self.fees), "pnl": canonical_amount(self.pnl)}  # fmt: skip


@dataclass
class _Lot:
    quantity: Decimal
    """Signed: positive long, negative short."""
    price: Decimal
    fee: Decimal
    time_ns: int


@dataclass
class RoundTripBook:
    """Feed fills in event order (`add`); `trips` grows as inventory is closed, `lots` is what is open."""

    trips: list[RoundTrip] = field(default_factory=list)
    lots: dict[tuple[str, str], deque[_Lot]] = field(default_factory=dict)

    def add(self, fill: OrderFillEvent, fee: Decimal, contract_size: Decimal = ONE,
            inverse: bool = False) -> RoundTrip | None:  # fmt: skip
        """Match one fill (`fee` in the quote currency); returns the round trip it completed, if any."""
        with decimal_context():
            return self._add(fill, fee, contract_size, inverse)

    def _add(
        self, fill: OrderFillEvent, fee: Decimal, contract_size: Decimal, inverse: bool
    ) -> RoundTrip | None:
        lots = self.lots.setdefault((fill.venue, fill.instrument), deque())
        sign = fill.side.sign
        remaining = fill.quantity
        closed = entry_value = entry_fees = ZERO
        first_entry = fill.envelope.event_time_ns
        while remaining > 0 and lots and lots[0].quantity * sign < 0:
            lot = lots[0]
            take = min(remaining, abs(lot.quantity))
            share = take / abs(lot.quantity)
            lot_fee = lot.fee * share
            if closed == 0:
                first_entry = lot.time_ns
            closed += take
            entry_value += take / lot.price if inverse else take * lot.price
            entry_fees += lot_fee
            remaining -= take
            if take == abs(lot.quantity):
                lots.popleft()
            else:
                lot.quantity += take * sign
                lot.fee -= lot_fee
        exit_fee = fee * closed / fill.quantity if closed else ZERO
        if remaining > 0:
            lots.append(_Lot(remaining * sign, fill.price, fee - exit_fee, fill.envelope.event_time_ns))
        if closed == 0:
            return None
        direction = -sign  # a sell (-1) closes a long (+1)
        if inverse:
            entry_price = closed / entry_value
            gross = (entry_value * fill.price - closed) * contract_size * direction  # exact but for 1/entry
        else:
            entry_price = entry_value / closed
            gross = (fill.price * closed - entry_value) * contract_size * direction
        fees = entry_fees + exit_fee
        trip = RoundTrip(fill.venue, fill.instrument, "long" if direction > 0 else "short", closed, first_entry,
                         fill.envelope.event_time_ns, entry_price, fill.price, fees, gross - fees)  # fmt: skip
        self.trips.append(trip)
        return trip

    def open_quantity(self, venue: str, instrument: str) -> Decimal:
        return sum((lot.quantity for lot in self.lots.get((venue, instrument), ())), ZERO)
