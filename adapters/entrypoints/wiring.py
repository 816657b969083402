"""Parts the composition root hands to services: the Prometheus metrics of the projections."""

from __future__ import annotations

from adapters.observability import metrics as m
from projections.projector import ProjectionMetrics


def projection_metrics() -> ProjectionMetrics:
    return ProjectionMetrics(
        lag=m.PROJECTION_LAG,
        dead_letters=m.PROJECTION_DEAD_LETTERS,
        records=m.PROJECTION_RECORDS,
        retries=m.PROJECTION_RETRIES,
    )
