"""Fees mean one thing: a venue charges the exchange's published tier from the session's InstrumentDefined
(adapters/instruments/specs.toml, sourced), unless the run configuration overrides that venue; the report says
per venue which rates were charged and where they came from, and a venue with neither is refused by name.

Every fee below is computed by hand from the published schedules cited in specs.toml:
    Binance spot BTCUSDT, Regular user: maker 0.1000% / taker 0.1000% (10 / 10 bps)
    Binance COIN-M BTCUSD_PERP, Regular user: maker 0.0200% / taker 0.0500% (2 / 5 bps), 100 USD a contract
"""

from __future__ import annotations

import json
import uuid
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from adapters.entrypoints.cli import main
from adapters.entrypoints.commands import SAMPLES, UserError, load_run_config, simulated_venues
from adapters.instruments.catalog import load_catalog
from adapters.simulated_venue import SimulatedVenue
from adapters.sqlite_event_log import SqliteEventLog
from application.ports import LogRecord
from application.replay import session_markers
from application.run_config import RunConfig
from application.session_run import RunParameters
from domain.events import (
    BookSnapshot,
    Envelope,
    EventBase,
    InstrumentDefined,
    OrderFillEvent,
    PlaceOrder,
    encode,
    input_event_id,
)
from domain.values import Liquidity, OrderType, Side

pytestmark = pytest.mark.unit

T0 = 1_000_000_000


def envelope(stream: str, sequence: int, t: int = T0, session: str = "s") -> Envelope:
    return Envelope(event_id=input_event_id(session, stream, sequence), session_id=session, sequence=sequence,
                    event_time_ns=t, ingest_time_ns=t, source="test")  # fmt: skip


def spec(venue: str, instrument: str, session: str = "s") -> InstrumentDefined:
    """The shipped specification, as the importer writes it first in `md.<venue>.<instrument>`."""
    stream = f"md.{venue}.{instrument}"
    return load_catalog().definition(venue, instrument, "test")(envelope(stream, 0, T0 - 1, session))


def book(venue: str, instrument: str, ask: str, size: str, session: str = "s") -> BookSnapshot:
    bid = str(D(ask) - 1)
    return BookSnapshot(envelope=envelope(f"md.{venue}.{instrument}", 1, T0, session), venue=venue,
                        instrument=instrument, last_update_id=1, bids=((D(bid), D(size)),),
                        asks=((D(ask), D(size)),))  # fmt: skip


def run_config(instrument: str, venues: dict[str, dict[str, str]], **strategy: Any) -> dict[str, Any]:
    return {"venues": venues,
            "strategy": {"strategy_id": "s", "instrument": instrument, "max_order_quantity": "10",
                         "max_notional_per_trade": "100000", "min_size": "0.001", "quantity_step": "0.001",
                         **strategy}}  # fmt: skip


def market_buy(venue: str, instrument: str, quantity: str) -> PlaceOrder:
    return PlaceOrder(envelope=envelope("orders", 2, T0), order_id=uuid.UUID(int=1), account="default",
                      strategy_id="s", venue=venue, instrument=instrument, side=Side.BUY,
                      order_type=OrderType.MARKET, quantity=D(quantity))  # fmt: skip


def taker_fill(simulated: SimulatedVenue, instrument: str, ask: str, quantity: str) -> OrderFillEvent:
    """One market buy on the venue, against a one-level book."""
    venue = simulated.name
    simulated.on_market(spec(venue, instrument))
    simulated.on_market(book(venue, instrument, ask, "1000"))
    out: list[EventBase] = simulated.submit(market_buy(venue, instrument, quantity))
    out += simulated.drain(T0 + 10**9)
    (fill,) = [e for e in out if isinstance(e, OrderFillEvent)]
    assert fill.liquidity is Liquidity.TAKER
    return fill


# ---- the rates charged, by hand -----------------------------------------------------------------------------


def test_coinm_taker_fill_is_charged_the_specs_5_bps_in_btc_on_the_face_value() -> None:
    coinm = spec("binance-coinm", "BTCUSD_PERP")
    config = RunConfig.model_validate(
        run_config("BTCUSD_PERP", {"binance-coinm": {}, "other": {"maker_bps": "1", "taker_bps": "3"}}),
        context={"instruments": {("binance-coinm", "BTCUSD_PERP"): coinm}},
    )
    charged = config.venues["binance-coinm"]
    assert (charged.maker_bps, charged.taker_bps, charged.source) == (2, 5, "instrument spec")
    fill = taker_fill(simulated_venues(config)["binance-coinm"], "BTCUSD_PERP", "62500", "10")
    # 10 contracts x 100 USD = 1000 USD of face value = 1000 / 62500 = 0.016 BTC; 5 bps of it = 0.000008 BTC
    assert (fill.price, fill.quantity) == (D("62500"), D("10"))
    assert (fill.fee, fill.fee_currency) == (D("0.000008"), "BTC")
    assert config.strategy.taker_fee_bps == {"binance-coinm": 5, "other": 3}  # it prices what is charged


def test_spot_fill_is_charged_the_specs_10_bps_in_usdt() -> None:
    specs = {(v, "BTCUSDT"): spec(v, "BTCUSDT") for v in ("binance-spot", "binance-usdm")}
    config = RunConfig.model_validate(
        run_config("BTCUSDT", {"binance-spot": {}, "binance-usdm": {}}), context={"instruments": specs}
    )
    assert {v: (f.maker_bps, f.taker_bps, f.source) for v, f in config.venues.items()} == {
        "binance-spot": (10, 10, "instrument spec"), "binance-usdm": (2, 5, "instrument spec")}  # fmt: skip
    fill = taker_fill(simulated_venues(config)["binance-spot"], "BTCUSDT", "60000.00", "0.01")
    # 0.01 BTC x 60000 USDT = 600 USDT; 10 bps of it = 0.6 USDT
    assert (fill.fee, fill.fee_currency) == (D("0.6"), "USDT")


def test_a_simulated_venue_without_configured_rates_charges_the_instruments_own() -> None:
    """Used on its own (no run configuration), the venue charges the tier its InstrumentDefined publishes;
    there is no venue-name table and no 10 bps for a venue nobody specified."""
    fill = taker_fill(SimulatedVenue("binance-coinm"), "BTCUSD_PERP", "50000", "1")
    assert fill.fee == D(100) / D(50000) * D(5) / D(10_000)  # 0.000001 BTC


def test_half_an_override_is_refused() -> None:
    with pytest.raises(ValueError, match="venues.binance-spot sets taker_bps only: set both maker_bps and "):
        RunConfig.model_validate(
            run_config("BTCUSDT", {"binance-spot": {"taker_bps": "4"}, "binance-usdm": {}})
        )


def test_a_config_that_names_every_rate_needs_no_session() -> None:
    """The demo restates the published tiers: streaming workers, which have no input session, can use it."""
    config = load_run_config(SAMPLES / "spread-demo.toml")
    assert {v: (f.maker_bps, f.taker_bps, f.source) for v, f in config.venues.items()} == {
        "binance-spot": (10, 10, "config"), "binance-usdm": (2, 5, "config")}  # fmt: skip


def test_a_venue_without_rates_is_refused_by_name_without_a_session(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text('[venues.binance-spot]\nmaker_bps = "10"\ntaker_bps = "10"\n[venues.binance-usdm]\n'
                    '[strategy]\nstrategy_id = "s"\ninstrument = "BTCUSDT"\nmax_order_quantity = "1"\n'
                    'max_notional_per_trade = "1000"\n')  # fmt: skip
    with pytest.raises(UserError, match=r"venue 'binance-usdm' has no fees: no maker_bps/taker_bps under "
                       r"\[venues.binance-usdm\] .* \(no input session to take them from\)"):  # fmt: skip
        load_run_config(path)


# ---- the whole path: cse backtest resolves from the session, records, reports ---------------------------------


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A session `in` holding, per venue, the InstrumentDefined the importer writes and one book."""
    monkeypatch.setenv("CSE_HOME", str(tmp_path))
    with SqliteEventLog(tmp_path / "events.sqlite") as log:
        for venue, ask in (("binance-spot", "60000.00"), ("binance-usdm", "60010.0")):
            stream = f"md.{venue}.BTCUSDT"
            events: list[EventBase] = [spec(venue, "BTCUSDT", "in"), book(venue, "BTCUSDT", ask, "1", "in")]
            log.append("in", [LogRecord(stream, stream, e.type, e.envelope.event_time_ns, encode(e))
                              for e in events])  # fmt: skip
    return tmp_path


def backtest(
    home: Path, config: str, run_id: str, capsys: pytest.CaptureFixture[str]
) -> tuple[int, Any, str]:
    path = home / f"{run_id}.toml"
    path.write_text(config)
    code = main(["backtest", "--session", "in", "--config", str(path), "--id", run_id])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else None), err


STRATEGY = '[strategy]\nstrategy_id = "s"\ninstrument = "BTCUSDT"\nmax_order_quantity = "1"\n' \
           'max_notional_per_trade = "1000"\n'  # fmt: skip


def test_a_config_override_wins_and_is_reported_with_the_source_of_every_rate(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = '[venues.binance-spot]\nmaker_bps = "7.5"\ntaker_bps = "7.5"\n[venues.binance-usdm]\n' + STRATEGY
    code, summary, err = backtest(home, config, "bt", capsys)
    assert code == 0, err
    assert summary["fee_rates"] == {
        "binance-spot": {"maker_bps": "7.5", "taker_bps": "7.5", "source": "config"},
        "binance-usdm": {"maker_bps": "2", "taker_bps": "5", "source": "instrument spec"},
    }
    assert summary["strategy_prices_edge_with"] == "the charged taker rates"
    assert "binance-spot charged maker 7.5 / taker 7.5 bps (config)" in err
    assert "binance-usdm charged maker 2 / taker 5 bps (instrument spec)" in err
    # The resolved rates are recorded with the run: a replay charges them without resolving again.
    with SqliteEventLog(home / "events.sqlite") as log:
        started, _ = session_markers(log, "bt")
    assert started is not None
    recorded = RunParameters.from_json(started.parameters).config
    assert {v: (str(f.maker_bps), str(f.taker_bps), f.source) for v, f in recorded.venues.items()} == {
        "binance-spot": ("7.5", "7.5", "config"), "binance-usdm": ("2", "5", "instrument spec")}  # fmt: skip
    assert recorded.strategy.taker_fee_bps == {"binance-spot": D("7.5"), "binance-usdm": D(5)}
    assert main(["replay", "bt", "--verify"]) == 0


def test_a_strategy_pricing_other_taker_rates_than_charged_is_reported(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = ("[venues.binance-spot]\n[venues.binance-usdm]\n" + STRATEGY
              + '[strategy.taker_fee_bps]\nbinance-spot = "1"\nbinance-usdm = "5"\n')  # fmt: skip
    code, summary, err = backtest(home, config, "bt", capsys)
    assert code == 0, err
    assert summary["strategy_prices_edge_with"] == (
        "strategy.taker_fee_bps from the config, not the charged taker rates: binance-spot 1 (charged 10)"
    )
    assert "the strategy priced its edge with strategy.taker_fee_bps from the config" in err


def test_a_venue_with_no_spec_and_no_config_is_refused_before_the_run_naming_it(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = "[venues.binance-spot]\n[venues.kraken]\n" + STRATEGY
    code, _, err = backtest(home, config, "bt", capsys)
    assert code == 2
    assert ("venue 'kraken' has no fees: no maker_bps/taker_bps under [venues.kraken] and no instrument "
            "specification (InstrumentDefined) of BTCUSDT on kraken in the input session (it defines BTCUSDT on "
            "binance-spot, BTCUSDT on binance-usdm)") in err  # fmt: skip
    with SqliteEventLog(home / "events.sqlite") as log:
        assert log.sessions() == ["in"]  # nothing of the refused run is stored
