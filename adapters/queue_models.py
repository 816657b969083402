"""Queue-position models for resting orders of the simulated venue (after hftbacktest's `QueueModel`s).

A level-2 feed shows how much rests at a price, not who is ahead of us, so the quantity ahead of a resting
order (`front`, our orders excluded) is an estimate:

* at arrival it is the whole recorded quantity at the order's price (we join at the back);
* a trade at the order's price with the aggressor on the other side takes `qty` from the front, first;
* a level decrease that no trade explains is a cancellation somewhere in the queue: the models differ here.

`risk_averse`: a cancellation only moves us forward when the level shrinks below `front`
(`front = min(front, new level)`): every cancellation is assumed behind us.

`prob_power2`, `prob_power3`, `prob_log` (hftbacktest's `ProbQueueModel` with `PowerProbQueueFunc(n)` and
`LogProbQueueFunc`): a decrease `chg` (net of the trades already counted at the level since the last level
change) is split between the quantity ahead and behind us, the part behind with probability
`p = f(back) / (f(back) + f(front))`, f(x) = x**n or ln(1 + x); then
`front = min(front - (1 - p) * chg + min(back - p * chg, 0), new level)`.

Exact Decimal arithmetic; `ln` and the division round in the current Decimal context, so the same
inputs give the same positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from application.run_config import QUEUE_MODELS, QueueModelName

_ZERO = Decimal(0)
_ONE = Decimal(1)


@dataclass(slots=True)
class QueuePosition:
    front: Decimal
    """Recorded quantity estimated ahead of the order at its price (negative: the trades reached us)."""
    traded: Decimal = _ZERO
    """Trade quantity at the level since its last recorded change (not to be counted again as a cancel)."""


@dataclass(frozen=True, slots=True)
class QueueModel:
    name: QueueModelName = "risk_averse"

    def __post_init__(self) -> None:
        if self.name not in QUEUE_MODELS:
            raise ValueError(f"unknown queue model {self.name!r}; choose one of {', '.join(QUEUE_MODELS)}")

    def trade(self, position: QueuePosition, quantity: Decimal) -> None:
        position.front -= quantity
        position.traded += quantity

    def depth(self, position: QueuePosition, previous: Decimal, new: Decimal) -> None:
        """The recorded quantity at the order's price changed from `previous` to `new`."""
        change = previous - new - position.traded
        position.traded = _ZERO
        if self.name == "risk_averse" or change <= _ZERO:
            position.front = min(position.front, new)  # growth joins behind us
            return
        front = max(position.front, _ZERO)
        back = max(previous - front, _ZERO)
        p = self._behind_probability(front, back)
        estimate = front - (_ONE - p) * change + min(back - p * change, _ZERO)
        position.front = min(estimate, new)

    def _behind_probability(self, front: Decimal, back: Decimal) -> Decimal:
        if self.name == "prob_log":
            f_back, f_front = (_ONE + back).ln(), (_ONE + front).ln()
        else:
            n = 2 if self.name == "prob_power2" else 3
            f_back, f_front = back**n, front**n
        total = f_back + f_front
        return _ONE if total == _ZERO else f_back / total
