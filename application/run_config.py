"""What a run is configured with (read from TOML/JSON), and the deciders built from it in kernel order."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from domain.book_decider import BookDecider
from domain.decider import Decider
from domain.events import InstrumentDefined
from domain.orders import OrdersDecider
from domain.portfolio import PortfolioConfig, PortfolioDecider
from domain.risk import RiskDecider
from domain.spread_strategy import SpreadStrategy, SpreadStrategyConfig
from domain.values import Amount, RiskLimits

QueueModelName = Literal["risk_averse", "prob_power2", "prob_power3", "prob_log"]
"""How the simulated venue estimates a resting order's queue position (docs/simulated-venue.md)."""
QUEUE_MODELS: tuple[str, ...] = get_args(QueueModelName)


FeeSource = Literal["config", "instrument spec"]
"""Where a venue's charged rates come from: the run configuration's override, or the exchange's published tier
in the InstrumentDefined that opens the session's market data of the strategy's instrument on that venue."""

InstrumentSpecs = Mapping[tuple[str, str], InstrumentDefined]
"""(venue, instrument) -> the session's specification: the validation context `instruments` of a RunConfig."""


class VenueFees(BaseModel):
    """The rates a venue charges. In a configuration file both may be left out (then they are the instrument
    specification's, resolved from the session when the run starts) or both set (an override); `source` is
    written by that resolution and recorded with the run, so a replay charges the same without re-resolving."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    maker_bps: Amount
    """Negative for a maker rebate."""
    taker_bps: Amount = Field(ge=0)
    source: FeeSource = "config"


def resolve_venue_fees(
    venues: Mapping[str, Any], instrument: str, specs: InstrumentSpecs | None
) -> dict[str, Any]:
    """Raw `[venues]` entries with their rates resolved: the configured override (both rates) wins, else the
    session's InstrumentDefined of `instrument` on the venue; neither is an error naming the venue."""
    resolved: dict[str, Any] = {}
    for name, entry in venues.items():
        if isinstance(entry, VenueFees) or not isinstance(entry, Mapping):
            resolved[name] = entry  # already resolved, or not a table: the field's validation names it
            continue
        given = [key for key in ("maker_bps", "taker_bps") if entry.get(key) is not None]
        if len(given) == 1:
            raise ValueError(f"venues.{name} sets {given[0]} only: set both maker_bps and taker_bps, or neither "
                             f"to charge the rates of the instrument specification")  # fmt: skip
        if given:
            resolved[name] = {"source": "config", **entry}
            continue
        spec = (specs or {}).get((name, instrument))
        if spec is None:
            if specs is None:
                where = "(no input session to take them from)"
            else:
                defined = ", ".join(f"{i} on {v}" for v, i in sorted(specs)) or "nothing"
                where = f"in the input session (it defines {defined})"
            raise ValueError(
                f"venue {name!r} has no fees: no maker_bps/taker_bps under [venues.{name}] and no instrument "
                f"specification (InstrumentDefined) of {instrument} on {name} {where}"
            )
        resolved[name] = {**entry, "maker_bps": spec.maker_fee_bps, "taker_bps": spec.taker_fee_bps,
                          "source": "instrument spec"}  # fmt: skip
    return resolved


class RunConfig(BaseModel):
    """One run. `venues` names every venue with the fees it charges (the instrument specification's unless
    overridden); the strategy's taker fees default to them, so the strategy prices its edge with the fees the
    venue will charge unless its config sets `taker_fee_bps` (the report then says so).

    Validated as a whole before anything runs: unknown keys, wrong enum values (the error lists the allowed
    ones), non-positive limits and the cross-field checks below fail with a message naming the field, since
    each of them would otherwise make a run trade nothing, or something else than meant, without a word."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    account: str = "default"
    quote_currency: str = "USDT"
    starting_equity: Amount = Field(default=Decimal("100000"), gt=0)
    """Split evenly across the venues as quote-currency cash."""
    venues: dict[str, VenueFees] = Field(min_length=1)
    strategy: SpreadStrategyConfig
    risk: RiskLimits = RiskLimits()
    order_latency_ns: int = Field(default=5_000_000, ge=0)
    response_latency_ns: int = Field(default=5_000_000, ge=0)
    queue_model: QueueModelName = "risk_averse"
    equity_sample_interval_ns: int = Field(default=60_000_000_000, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _resolve_fees(cls, data: Any, info: ValidationInfo) -> Any:
        """Venue rates resolved (`resolve_venue_fees`, with the session's specifications from the validation
        context `instruments`), then the strategy's taker fees defaulted to the charged ones."""
        if not isinstance(data, dict) or not isinstance(data.get("strategy"), dict):
            return data
        strategy = dict(data["strategy"])
        venues = data.get("venues", {})
        if isinstance(venues, Mapping) and isinstance(strategy.get("instrument"), str):
            specs = (info.context or {}).get("instruments")
            venues = resolve_venue_fees(venues, strategy["instrument"], specs)
        strategy.setdefault("account", data.get("account", "default"))
        strategy.setdefault("venues", list(venues))
        if "taker_fee_bps" not in strategy and isinstance(venues, Mapping):
            # A venue without taker_bps gets no entry here: the venues' own validation names the missing field.
            taker = {name: fees.taker_bps if isinstance(fees, VenueFees) else dict(fees).get("taker_bps")
                     for name, fees in venues.items()}  # fmt: skip
            strategy["taker_fee_bps"] = {name: fee for name, fee in taker.items() if fee is not None}
        return {**data, "venues": venues, "strategy": strategy}

    @model_validator(mode="after")
    def _cross_checks(self) -> RunConfig:
        strategy = self.strategy
        unknown = [v for v in strategy.venues if v not in self.venues]
        if unknown:
            raise ValueError(f"strategy.venues {unknown} have no [venues] entry")
        if strategy.account != self.account:
            # Risk runs for the run's account only: the strategy's orders would never be checked, and the run
            # would stall after its first signal.
            raise ValueError(
                f"strategy.account {strategy.account!r} is not the run's account {self.account!r}; "
                "leave strategy.account out or set it to the run's account"
            )
        return self

    def initial_cash(self) -> tuple[tuple[str, str, Decimal], ...]:
        share = self.starting_equity / len(self.venues)
        return tuple((venue, self.quote_currency, share) for venue in sorted(self.venues))


def build_deciders(config: RunConfig) -> list[Decider[Any]]:
    """Kernel order: market data, strategy, risk, order lifecycle, portfolio."""
    portfolio = PortfolioConfig(
        account=config.account,
        quote_currency=config.quote_currency,
        initial_cash=config.initial_cash(),
        sample_interval_ns=config.equity_sample_interval_ns,
    )
    return [
        BookDecider(),
        SpreadStrategy(config.strategy),
        RiskDecider(config.account, config.risk, book_instruments=(config.strategy.instrument,)),
        OrdersDecider(),
        PortfolioDecider(portfolio),
    ]
