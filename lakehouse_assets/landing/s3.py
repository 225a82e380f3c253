"""A landing zone under an S3 prefix (`s3://bucket/prefix`), laid out as CONTRACT section 2 says.

Lists one table folder the way `LocalLandingStore` lists a directory: only its direct entries,
sorted by name, landing names kept, anything else reported. Keys are built from the root and
a checked relative path, so nothing outside the prefix is ever read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lakehouse_assets.landing.files import LandingFile, is_landing_name


def split_landing_uri(uri: str) -> tuple[str, str]:
    """s3://bucket/prefix -> (bucket, prefix without surrounding slashes)."""
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    if not uri.startswith("s3://") or not bucket:
        raise ValueError(f"expected s3://bucket/prefix, not {uri!r}")
    return bucket, prefix.strip("/")


def check_relative(path: str) -> str:
    """A '/'-separated path below the root: no empty, '.' or '..' parts, no backslashes."""
    parts = path.split("/")
    if not path or "\\" in path or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"{path!r} is outside the landing root")
    return path


@dataclass(frozen=True)
class S3LandingStore:
    client: Any  # a boto3 S3 client (dagster_aws.s3.S3Resource.get_client())
    bucket: str
    prefix: str  # without surrounding slashes; may be empty

    @classmethod
    def from_uri(cls, uri: str, client: Any) -> S3LandingStore:
        bucket, prefix = split_landing_uri(uri)
        return cls(client, bucket, prefix)

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def _key(self, relative: str) -> str:
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def list_files(self, folder: str) -> tuple[list[LandingFile], list[str]]:
        base = self._key(check_relative(folder.strip("/"))) + "/"
        files: list[LandingFile] = []
        ignored: list[str] = []
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=base, Delimiter="/"
        )
        for page in pages:
            for sub in page.get("CommonPrefixes", []):
                name = sub["Prefix"][len(base) :].rstrip("/")
                ignored.append(f"{folder}/{name}: not a regular file")
            for obj in page.get("Contents", []):
                name = obj["Key"][len(base) :]
                if not name:
                    continue  # the folder marker some tools write
                rel = f"{folder}/{name}"
                if not is_landing_name(name):
                    ignored.append(f"{rel}: not a LOAD or CDC file name")
                else:
                    files.append(
                        LandingFile(
                            rel,
                            int(obj["Size"]),
                            obj["ETag"].strip('"'),
                            obj["LastModified"].timestamp(),
                        )
                    )
        return sorted(files, key=lambda f: f.path), sorted(ignored)

    def checksum(self, file: LandingFile) -> str:
        """The ETag: S3's own content hash, so the sensor need not download a file to see that
        it landed again unchanged."""
        return file.etag

    def read_bytes(self, file: LandingFile) -> bytes:
        key = self._key(check_relative(file.path))
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()


__all__ = ["S3LandingStore", "check_relative", "split_landing_uri"]
