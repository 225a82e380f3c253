"""The landing zone as a Dagster resource: a local folder (S3 prefixes come with AWS mode)."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from lakehouse_assets.landing.files import LandingStore, LocalLandingStore


class LandingZone(ConfigurableResource):
    """Where DMS writes: `<uri>/<schema>/<table>/LOAD*.csv[.gz]` and CDC files."""

    uri: str = Field(description="Landing root: a folder, or s3://bucket/prefix")

    def store(self) -> LandingStore:
        if self.uri.startswith("s3://"):
            raise NotImplementedError("S3 landing zones arrive with AWS mode")
        return LocalLandingStore(self.uri)
