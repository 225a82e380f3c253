"""Running the whole asset graph in-process over a landing folder, into a DuckDB file."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
from dagster import DagsterInstance, io_manager, materialize

from lakehouse_assets.assets.bronze import bronze_landing, build_bronze
from lakehouse_assets.assets.gold import gold_assets
from lakehouse_assets.assets.silver import build_silver, silver_assets
from lakehouse_assets.checks.reconcile import build_files_reconcile, files_reconcile
from lakehouse_assets.checks.warnings import warning_checks
from lakehouse_assets.resources import LandingZone, warehouse_io_manager
from lakehouse_assets.runs import range_tags
from lakehouse_assets.schemas.tables import specs_for
from lakehouse_assets.sources import SourceTable
from lakehouse_assets.storage.io_manager import WarehouseIOManager
from lakehouse_assets.storage.warehouse import DuckDBWarehouse

ALL_ASSETS = [bronze_landing, *silver_assets, *gold_assets, files_reconcile, *warning_checks]


def assets_for(tables: tuple[SourceTable, ...]) -> list:
    """The asset graph for other declarations (e.g. a table that has gained a column)."""
    return [build_bronze(tables), *(build_silver(t) for t in tables), *gold_assets,
            build_files_reconcile(tables), *warning_checks]


def io_manager_for(tables: tuple[SourceTable, ...]):
    """The warehouse IO manager for other declarations: their tables' specs (the product's
    holds those of sources.py)."""

    @io_manager(required_resource_keys={"warehouse"})
    def redeclared_io_manager(context) -> WarehouseIOManager:
        return WarehouseIOManager(context.resources.warehouse, specs_for(tables))

    return redeclared_io_manager


def resources(landing: Path, warehouse: Path, tables: tuple[SourceTable, ...] | None = None) -> dict:
    """Resources of a run over this landing folder and DuckDB file (of other declarations:
    `tables`)."""
    return {"landing": LandingZone(uri=str(landing)), "warehouse": DuckDBWarehouse(path=str(warehouse)),
            "io_manager": warehouse_io_manager if tables is None else io_manager_for(tables)}


def run_pipeline(landing: Path, warehouse: Path, first: str, last: str, instance=None, assets=None,
                 selection=None, tags: dict | None = None, tables: tuple[SourceTable, ...] | None = None):
    """Materialize the assets for first...last in one run; returns the Dagster result. With
    `tables`, the asset graph and IO manager of those declarations (assets_for(tables))."""
    from datetime import date

    return materialize(
        assets or (assets_for(tables) if tables else ALL_ASSETS),
        selection=selection,
        resources=resources(landing, warehouse, tables),
        instance=instance or DagsterInstance.ephemeral(),
        tags={**range_tags(date.fromisoformat(first), date.fromisoformat(last)), **(tags or {})},
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
