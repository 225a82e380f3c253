"""Running the whole asset graph in-process over a landing folder, into a fresh DuckDB file."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
from dagster import DagsterInstance, materialize
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from lakehouse_assets.assets.bronze import bronze_landing
from lakehouse_assets.assets.gold import gold_assets
from lakehouse_assets.assets.silver import silver_assets
from lakehouse_assets.checks.warnings import warning_checks
from lakehouse_assets.resources.landing import LandingZone
from lakehouse_assets.storage.duckdb_io import LakehouseDuckDBIOManager

ALL_ASSETS = [bronze_landing, *silver_assets, *gold_assets, *warning_checks]


def run_pipeline(landing: Path, warehouse: Path, first: str, last: str, instance=None):
    """Materialize every asset for first...last in one run; returns the Dagster result."""
    return materialize(
        ALL_ASSETS,
        resources={
            "landing": LandingZone(uri=str(landing)),
            "io_manager": LakehouseDuckDBIOManager(database=str(warehouse)),
        },
        instance=instance or DagsterInstance.ephemeral(),
        tags={ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last},
        raise_on_error=False,
    )


def table(warehouse: Path, name: str, order_by: str | None = None) -> pl.DataFrame:
    """A warehouse table (e.g. 'gold.daily_revenue') as polars."""
    schema, tbl = name.split(".")
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        order = f" ORDER BY {order_by}" if order_by else ""
        return con.sql(f'SELECT * FROM "{schema}"."{tbl}"{order}').pl()
    finally:
        con.close()
