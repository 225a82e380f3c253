"""Resources for the settings in force, chosen once (CONTRACT section 6): where the landing
zone is, which warehouse holds the tables, and the IO manager that writes them."""

from __future__ import annotations

from dagster import InitResourceContext, io_manager

from lakehouse_assets.resources.landing import LandingZone
from lakehouse_assets.settings import Settings
from lakehouse_assets.storage.io_manager import WarehouseIOManager
from lakehouse_assets.storage.warehouse import DuckDBWarehouse, Warehouse

__all__ = ["LandingZone", "resources_for", "warehouse_io_manager"]


@io_manager(required_resource_keys={"warehouse"},
            description="Writes each asset's rows to the warehouse, replacing exactly what it recomputed")
def warehouse_io_manager(context: InitResourceContext) -> WarehouseIOManager:
    # The run's warehouse resource itself (not a copy), so the assets' reads and the writes
    # share one session.
    from lakehouse_assets.schemas.tables import ALL_SPECS

    return WarehouseIOManager(context.resources.warehouse, ALL_SPECS)


def warehouse_for(settings: Settings) -> Warehouse:
    memory = settings.resource_value("LAKEHOUSE_MEMORY_LIMIT")
    if settings.environment == "aws":
        from lakehouse_assets.storage.iceberg_warehouse import IcebergWarehouse

        return IcebergWarehouse(
            warehouse_uri=settings.resource_value("LAKEHOUSE_WAREHOUSE_URI"),
            glue_database_prefix=settings.resource_value("LAKEHOUSE_GLUE_DATABASE_PREFIX"),
            region_name=settings.aws_region,
            endpoint_url=settings.aws_endpoint_url,
            memory_limit=memory,
        )
    return DuckDBWarehouse(path=settings.resource_value("LAKEHOUSE_DUCKDB_PATH"), memory_limit=memory)


def landing_for(settings: Settings) -> LandingZone:
    uri = settings.resource_value("LAKEHOUSE_LANDING_URI")
    if settings.landing_on_s3:
        # Imported only here: dagster-aws takes over a second to import.
        from lakehouse_assets.resources.aws import S3LandingZone, s3_resource

        return S3LandingZone(uri=uri, s3=s3_resource(settings))
    return LandingZone(uri=uri)


def resources_for(settings: Settings) -> dict:
    return {"landing": landing_for(settings), "warehouse": warehouse_for(settings), "io_manager": warehouse_io_manager}
