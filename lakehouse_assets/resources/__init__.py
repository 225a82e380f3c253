"""Resources per environment, chosen once (CONTRACT section 6)."""

from __future__ import annotations

from lakehouse_assets.environment import lakehouse_env, setting
from lakehouse_assets.resources.aws import aws_resources
from lakehouse_assets.resources.landing import LandingZone
from lakehouse_assets.storage.duckdb_io import LakehouseDuckDBIOManager


def resources_for_environment() -> dict:
    if lakehouse_env() == "aws":
        return aws_resources()
    return {
        "landing": LandingZone(uri=setting("LAKEHOUSE_LANDING_URI")),
        "io_manager": LakehouseDuckDBIOManager(database=setting("LAKEHOUSE_DUCKDB_PATH")),
    }
