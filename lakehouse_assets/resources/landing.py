"""The landing zone as a Dagster resource: a local folder or an S3 prefix."""

from __future__ import annotations

from dagster import ConfigurableResource
from dagster_aws.s3 import S3Resource
from pydantic import Field

from lakehouse_assets.landing.files import LandingStore, LocalLandingStore
from lakehouse_assets.landing.s3 import S3LandingStore


class LandingZone(ConfigurableResource):
    """Where DMS writes: `<uri>/<schema>/<table>/LOAD*.csv[.gz]` and CDC files."""

    uri: str = Field(description="Landing root: a folder, or s3://bucket/prefix")
    s3: S3Resource | None = Field(
        default=None, description="S3 client for s3:// roots; the SDK's defaults when unset"
    )

    def store(self) -> LandingStore:
        if self.uri.startswith("s3://"):
            return S3LandingStore.from_uri(self.uri, (self.s3 or S3Resource()).get_client())
        return LocalLandingStore(self.uri)
