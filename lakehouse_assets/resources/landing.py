"""The landing zone as a Dagster resource: a local folder or an S3 prefix.

The S3 flavour (`S3LandingZone`, in resources/aws.py) holds dagster-aws's S3 resource for its
client. It is imported only where an s3:// landing zone is configured: dagster-aws takes
1.7 s to import, in every process that loads the code location.
"""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from lakehouse_assets.landing.files import LandingStore, LocalLandingStore


class LandingZone(ConfigurableResource):
    """Where DMS writes: `<uri>/<schema>/<table>/LOAD*.csv[.gz]` and CDC files."""

    uri: str = Field(description="Landing root: a folder, or s3://bucket/prefix")

    def store(self) -> LandingStore:
        if self.uri.startswith("s3://"):
            from lakehouse_assets.landing.s3 import S3LandingStore

            return S3LandingStore.from_uri(self.uri, self.s3_client())
        return LocalLandingStore(self.uri)

    def s3_client(self):
        """The SDK's defaults; S3LandingZone has an S3 resource to ask instead."""
        from dagster_aws.s3 import S3Resource

        return S3Resource().get_client()
