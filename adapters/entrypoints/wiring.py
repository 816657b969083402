"""Parts the composition root builds from the settings and hands to the services."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from adapters.observability import metrics as m
from adapters.settings import Settings
from projections.influx import InfluxConfig
from projections.projector import ProjectionMetrics
from streams.topics import TopicConfig


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
