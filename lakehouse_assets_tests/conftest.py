"""Settings every test runs with, the test tiers, and the fixtures shared between modules."""

import os

# Tests pick partitions from 2024-01-01 on, whatever the developer's shell says, and read files
# the moment they are written (no settling time); set before lakehouse_assets reads settings.
os.environ["LAKEHOUSE_PARTITIONS_START"] = "2024-01-01"
os.environ["LAKEHOUSE_SETTLE_SECONDS"] = "0"

from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

TIERS = ("unit", "pipeline", "system")


def pytest_collection_modifyitems(config, items):
    """A test of no tier counts as `system`: the fast tiers (-m "not system") only run tests
    whose module says they are fast."""
    for item in items:
        if not any(item.get_closest_marker(t) for t in TIERS):
            item.add_marker(pytest.mark.system)


@pytest.fixture
def scratch_session():
    """A fresh warehouse session in memory (the DuckDB backend), for SQL-level tests."""
    from lakehouse_assets_tests.silver_merge import scratch_session as open_scratch

    session = open_scratch()
    yield session
    session.close()


@pytest.fixture
def tiny_landing(tmp_path) -> Path:
    """One tenant's customer and two paid orders, 2024-11-28...2024-12-01 (gold_fixture.tiny_zone)."""
    from lakehouse_assets_tests.gold_fixture import tiny_zone

    return tiny_zone(tmp_path / "landing")


@pytest.fixture(scope="session")
def small_zone(tmp_path_factory) -> Iterator[tuple[Path, object]]:
    """A generated landing zone of 9 days (2024-11-24...2024-12-02), clean: (root, summary).
    Shared, read-only: a module that lands files works on a copy (assets/test_end_to_end.py)."""
    from lakehouse_assets.sample_data import generate_landing_zone

    root = tmp_path_factory.mktemp("small-zone") / "landing"
    summary = generate_landing_zone(root, scale=0.02, seed=7, dirty_rate=0.0, history_days=7, cdc_days=2)
    yield root, summary
