"""Fixtures for tests that need services: a throw-away PostgreSQL server for the session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.pg_server import running_postgres


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """SQLAlchemy URL of the empty database `calibench_test` on a scratch PostgreSQL server."""
    with running_postgres() as url:
        yield url
