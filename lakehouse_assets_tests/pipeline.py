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

from lakehouse_assets.assets.bronze import bronze_landing, build_bronze
from lakehouse_assets.assets.gold import gold_assets
from lakehouse_assets.assets.silver import build_silver, silver_assets
from lakehouse_assets.checks.reconcile import build_files_reconcile, files_reconcile
from lakehouse_assets.checks.warnings import warning_checks
from lakehouse_assets.resources.landing import LandingZone
from lakehouse_assets.sources import SourceTable
from lakehouse_assets.storage.duckdb_io import LakehouseDuckDBIOManager

ALL_ASSETS = [bronze_landing, *silver_assets, *gold_assets, files_reconcile, *warning_checks]


def assets_for(tables: tuple[SourceTable, ...]) -> list:
    """The asset graph for other declarations (e.g. a table that has gained a column)."""
    return [build_bronze(tables), *(build_silver(t) for t in tables), *gold_assets,
            build_files_reconcile(tables), *warning_checks]


def run_pipeline(landing: Path, warehouse: Path, first: str, last: str, instance=None, assets=None):
    """Materialize every asset for first...last in one run; returns the Dagster result."""
    return materialize(
        assets or ALL_ASSETS,
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
