"""Resources per environment, chosen once (CONTRACT section 6)."""

from __future__ import annotations

from lakehouse_assets.environment import lakehouse_env, sdk_setting, setting, value
from lakehouse_assets.resources.landing import LandingZone
from lakehouse_assets.storage.duckdb_io import LakehouseDuckDBIOManager


def resources_for_environment() -> dict:
    # AWS modules are imported only when used (dagster-aws alone takes 1.7 s to import).
    if lakehouse_env() == "aws":
        from lakehouse_assets.resources.aws import aws_resources

        return aws_resources()
    landing = LandingZone(uri=setting("LAKEHOUSE_LANDING_URI"))
    if value("LAKEHOUSE_LANDING_URI").startswith("s3://"):  # local warehouse, landing on S3
        from lakehouse_assets.resources.aws import s3_landing

        landing = s3_landing(setting("LAKEHOUSE_LANDING_URI"), sdk_setting("AWS_REGION"))
    return {
        "landing": landing,
        "io_manager": LakehouseDuckDBIOManager(database=setting("LAKEHOUSE_DUCKDB_PATH")),
    }
