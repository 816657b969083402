"""The committed SDL is the schema the code serves; every live subscription field is routed to the hub."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.api.schema import LIVE_FIELDS, schema
from adapters.entrypoints.api_commands import sdl

pytestmark = pytest.mark.unit

SDL = Path(__file__).resolve().parents[2] / "docs" / "graphql" / "schema.graphql"


def test_committed_sdl_matches_the_code() -> None:
    assert SDL.read_text() == sdl(), "regenerate with: cse serve --print-schema > docs/graphql/schema.graphql"


def test_every_live_field_is_a_subscription_of_the_schema() -> None:
    fields = set(schema._schema.subscription_type.fields)  # type: ignore[union-attr]
    assert set(LIVE_FIELDS) <= fields and fields - set(LIVE_FIELDS) == {"backtestProgress"}
