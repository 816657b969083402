"""Fixtures for tests that talk to the real servers.

Start them with ``bash deploy/local/with-services.sh <cmd>`` (or
``deploy/local/services.sh start``), which exports the variables below.  The
defaults match deploy/local.  No fixture skips: an unreachable server makes
the tests fail.
"""

from __future__ import annotations

import os
import uuid

import pytest


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    return os.environ.get("CSE_KAFKA_BOOTSTRAP", "127.0.0.1:9092")


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    return os.environ.get("CSE_PG_DSN", "postgresql+asyncpg://postgres@127.0.0.1:55432/cse")


@pytest.fixture(scope="session")
def influx_url() -> str:
    return os.environ.get("CSE_INFLUX_URL", "http://127.0.0.1:8086")


@pytest.fixture(scope="session")
def influx_db() -> str:
    return os.environ.get("CSE_INFLUX_DB", "cse")


@pytest.fixture
def unique_name() -> str:
    """A fresh suffix for topics, tables, databases and consumer groups."""
    return uuid.uuid4().hex[:12]
