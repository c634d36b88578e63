"""The unit tier runs without a database: a test here that asks for one fails at set-up."""

from __future__ import annotations

import pytest

DATABASE_FIXTURES = frozenset({"db", "_scratch_db", "engine", "handbook_engine"})


@pytest.fixture(autouse=True)
def _no_database(request: pytest.FixtureRequest) -> None:
    wanted = DATABASE_FIXTURES.intersection(request.fixturenames)
    if wanted:
        pytest.fail(f"unit tests run without a database; move this test to tests/integration ({sorted(wanted)})")
