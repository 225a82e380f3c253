"""Resources per environment, chosen once (CONTRACT section 6)."""

from __future__ import annotations

from lakehouse_assets.environment import lakehouse_env, setting
from lakehouse_assets.resources.landing import LandingZone
from lakehouse_assets.storage.duckdb_io import LakehouseDuckDBIOManager


def resources_for_environment() -> dict:
    env = lakehouse_env()
    if env != "local":
        raise NotImplementedError("LAKEHOUSE_ENV=aws arrives with the S3/Glue storage")
    return {
        "landing": LandingZone(uri=setting("LAKEHOUSE_LANDING_URI")),
        "io_manager": LakehouseDuckDBIOManager(database=setting("LAKEHOUSE_DUCKDB_PATH")),
    }
