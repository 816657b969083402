"""The parts every command is built from, made from the settings: the event log, the venues, the topic and
InfluxDB configurations, the read-model database, the projectors' metrics, the worker's Faust app. Commands
(and tests, with their own parts) call these; nothing below the composition root reads the settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from adapters.observability import metrics as m
from adapters.settings import Settings
from adapters.simulated_venue import FeeSchedule, SimulatedVenueConfig, build_simulated_venues
from adapters.sqlite_event_log import SqliteEventLog
from application.fast_run import CoreFactory, reference_core
from application.ports import Venue
from application.run_config import RunConfig
from projections.influx import InfluxConfig
from projections.projector import ProjectionMetrics
from streams.topics import TopicConfig, Topics
from streams.worker import Instruments, PartitionKernels


def open_log(settings: Settings) -> SqliteEventLog:
    settings.event_log_path.parent.mkdir(parents=True, exist_ok=True)
    return SqliteEventLog(settings.event_log_path, catalog=settings.catalog_path)


def simulated_venues(config: RunConfig) -> Mapping[str, Venue]:
    venue_config = SimulatedVenueConfig(
        order_latency_ns=config.order_latency_ns,
        response_latency_ns=config.response_latency_ns,
        queue_model=config.queue_model,
        fees={name: FeeSchedule(f.maker_bps, f.taker_bps) for name, f in config.venues.items()},
    )
    return build_simulated_venues(sorted(config.venues), venue_config)


def projection_metrics() -> ProjectionMetrics:
    return ProjectionMetrics(
        lag=m.PROJECTION_LAG,
        dead_letters=m.PROJECTION_DEAD_LETTERS,
        records=m.PROJECTION_RECORDS,
        retries=m.PROJECTION_RETRIES,
    )


def influx_config(settings: Settings) -> InfluxConfig:
    return InfluxConfig(
        url=settings.influx_url,
        database=settings.influx_db,
        retention_policy=settings.influx_rp,
        retention=settings.influx_retention,
        shard_duration=settings.influx_shard_duration,
        batch_points=settings.influx_batch_points,
        max_in_flight=settings.influx_max_in_flight,
    )


def topic_config(settings: Settings, **overrides: Any) -> TopicConfig:
    """What `cse topics create` creates: the settings, with the command line's non-None overrides."""
    base = TopicConfig(prefix=settings.topic_prefix, partitions=settings.kafka_partitions,
                       replication=settings.kafka_replication, retention_ms=settings.kafka_retention_ms)  # fmt: skip
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})


def read_models_url(settings: Settings, target: str) -> str:
    """PostgreSQL (`--target postgres`) or the embedded SQLite read models in $CSE_HOME."""
    if target == "postgres":
        return settings.database_url
    settings.home.mkdir(parents=True, exist_ok=True)
    return f"sqlite+aiosqlite:///{settings.home / 'read_models.sqlite'}"


def worker_app(settings: Settings, config: RunConfig, topics: Topics, app_id: str, version: str,
               instruments: Instruments | None = None,
               core: CoreFactory | None = None) -> tuple[Any, PartitionKernels]:  # fmt: skip
    """The Faust app of `cse worker`: the kernels on the md topic with the simulated venues and their market
    `core` (`market_core`), snapshot and session-timeout settings, and the worker's instruments."""
    from streams.app import build_app

    return build_app(config, simulated_venues, settings.kafka_bootstrap, topics, app_id=app_id,
                     code_version=version, instruments=instruments, snapshot_every=settings.worker_snapshot_every,
                     session_timeout_s=settings.worker_session_timeout_s, batch_size=settings.worker_batch_size,
                     batch_within_s=settings.worker_batch_within_s, core=core)  # fmt: skip


class CoreUnavailable(RuntimeError):
    """The compiled core was asked for (`CSE_CORE=compiled`) and is not importable."""


def market_core(settings: Settings, reference: bool = False) -> CoreFactory | None:
    """The market core a run uses: None with `--reference` (every input through the kernel), else the one
    `CSE_CORE` names. The compiled core is never replaced silently by the reference: a missing build is an error."""
    if reference:
        return None
    if settings.core == "reference":
        return reference_core
    try:
        from adapters.market_core import compiled_core  # imports cse_core, built by `make install` from core/
    except ImportError as exc:
        raise CoreUnavailable(
            f"CSE_CORE=compiled but the compiled core is not installed ({exc}): build it with `make install` "
            "(needs cargo), or run with CSE_CORE=reference"
        ) from exc
    return compiled_core
