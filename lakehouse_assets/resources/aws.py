"""AWS mode (CONTRACT section 6): landing files and Parquet tables on S3, tables in Glue.

Credentials never pass through here: boto3 and polars take them from the SDK's own chain
(environment, profile, ECS task role), so no resource config, log line or metadata holds one.
"""

from __future__ import annotations

from dagster_aws.s3 import S3Resource

from lakehouse_assets.environment import required_setting, sdk_setting, setting
from lakehouse_assets.resources.landing import LandingZone
from lakehouse_assets.storage.glue import GlueCatalog
from lakehouse_assets.storage.s3_parquet_io import S3ParquetIOManager


def aws_resources() -> dict:
    warehouse = required_setting(
        "LAKEHOUSE_WAREHOUSE_URI", "to s3://bucket/prefix when LAKEHOUSE_ENV=aws"
    )
    # AWS_REGION is passed on because boto3 itself only reads AWS_DEFAULT_REGION; the endpoint
    # (AWS_ENDPOINT_URL) is left to boto3 and polars, which both read it.
    s3 = S3Resource(region_name=sdk_setting("AWS_REGION"))
    return {
        "landing": LandingZone(uri=setting("LAKEHOUSE_LANDING_URI"), s3=s3),
        "io_manager": S3ParquetIOManager(
            warehouse_uri=warehouse,
            s3=s3,
            glue=GlueCatalog(
                database_prefix=setting("LAKEHOUSE_GLUE_DATABASE_PREFIX"),
                region_name=sdk_setting("AWS_REGION"),
            ),
        ),
    }
