"""AWS pieces of the resources: the S3 landing zone, read with dagster-aws's S3 resource.

Credentials never pass through here: boto3 takes them from the SDK's own chain (environment,
profile, ECS task role), so no resource config, log line or metadata holds one.
"""

from __future__ import annotations

from dagster_aws.s3 import S3Resource
from pydantic import Field

from lakehouse_assets.resources.landing import LandingZone
from lakehouse_assets.settings import Settings


class S3LandingZone(LandingZone):
    """A landing zone under s3://bucket/prefix."""

    s3: S3Resource = Field(default_factory=S3Resource, description="S3 client settings")

    def s3_client(self):
        return self.s3.get_client()


def s3_resource(settings: Settings) -> S3Resource:
    # AWS_REGION is passed on because boto3 itself only reads AWS_DEFAULT_REGION; the endpoint
    # (AWS_ENDPOINT_URL) is left to boto3, which reads it.
    return S3Resource(region_name=settings.resource_value("AWS_REGION") if "AWS_REGION" in settings.given else None)
