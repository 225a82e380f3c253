"""AWS mode (CONTRACT section 6): landing files and Parquet tables on S3, tables in Glue.

Credentials never pass through here: boto3 and polars take them from the SDK's own chain
(environment, profile, ECS task role), so no resource config, log line or metadata holds one.
"""

from __future__ import annotations

from dagster_aws.s3 import S3Resource
from pydantic import Field

from lakehouse_assets.environment import required_setting, sdk_setting, setting, value
from lakehouse_assets.resources.landing import LandingZone
from lakehouse_assets.storage.glue import GlueCatalog
from lakehouse_assets.storage.s3_parquet_io import S3ParquetIOManager


class S3LandingZone(LandingZone):
    """A landing zone under s3://bucket/prefix, read with dagster-aws's S3 resource."""

    s3: S3Resource = Field(default_factory=S3Resource, description="S3 client settings")

    def s3_client(self):
        return self.s3.get_client()


def s3_landing(uri, region=None) -> S3LandingZone:
    return S3LandingZone(uri=uri, s3=S3Resource(region_name=region))


def aws_resources() -> dict:
    warehouse = required_setting(
        "LAKEHOUSE_WAREHOUSE_URI", "to s3://bucket/prefix when LAKEHOUSE_ENV=aws"
    )
    # AWS_REGION is passed on because boto3 itself only reads AWS_DEFAULT_REGION; the endpoint
    # (AWS_ENDPOINT_URL) is left to boto3 and polars, which both read it.
    s3 = S3Resource(region_name=sdk_setting("AWS_REGION"))
    return {
        "landing": S3LandingZone(uri=setting("LAKEHOUSE_LANDING_URI"), s3=s3)
        if value("LAKEHOUSE_LANDING_URI").startswith("s3://")
        else LandingZone(uri=setting("LAKEHOUSE_LANDING_URI")),
        "io_manager": S3ParquetIOManager(
            warehouse_uri=warehouse,
            s3=s3,
            glue=GlueCatalog(
                database_prefix=setting("LAKEHOUSE_GLUE_DATABASE_PREFIX"),
                region_name=sdk_setting("AWS_REGION"),
            ),
        ),
    }
