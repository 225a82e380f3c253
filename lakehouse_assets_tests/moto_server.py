"""A real S3 + Glue HTTP endpoint for tests: moto's server on a free loopback port.

The code under test talks to it exactly as to AWS, through AWS_ENDPOINT_URL, with dummy
credentials and a region set so that no SDK goes looking for the instance-metadata service.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

REGION = "eu-west-1"
# Recognisable dummies: tests assert they never show up in logs or metadata.
ACCESS_KEY = "AKIALAKEHOUSETESTKEY1"
SECRET_KEY = "lakehouse-test-secret-never-logged"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class MotoAWS:
    endpoint: str

    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": os.devnull,  # nothing from the developer's ~/.aws
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }

    def reset(self) -> None:
        """Forget every bucket, object, database and table."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=10).close()

    def s3(self):
        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION)

    def glue(self):
        return boto3.client("glue", endpoint_url=self.endpoint, region_name=REGION)

    def create_bucket(self, name: str) -> None:
        self.s3().create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})

    def upload_folder(self, folder: Path, bucket: str, prefix: str) -> int:
        client = self.s3()
        files = [p for p in sorted(Path(folder).rglob("*")) if p.is_file()]
        for path in files:
            key = f"{prefix}/{path.relative_to(folder).as_posix()}"
            client.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
        return len(files)

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.s3().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def glue_checks_table_versions(mp: pytest.MonkeyPatch) -> None:
    """Make moto's Glue refuse an UpdateTable whose VersionId is not the table's current one,
    as Glue does: that check is the lock Iceberg's optimistic commits rely on, and moto 5
    ignores the parameter (two writers would then both "win" and one commit be lost)."""
    from moto.core.exceptions import JsonRESTError
    from moto.glue.responses import GlueResponse

    original = GlueResponse.update_table
    lock = threading.Lock()  # the server answers requests on several threads

    def update_table(self):
        expected = self._get_param("VersionId")
        with lock:
            if expected is not None:
                name = self._get_param("TableInput")["Name"]
                table = self.glue_backend.get_table(self._get_param("DatabaseName"), name)
                if str(table.as_dict()["VersionId"]) != str(expected):
                    raise JsonRESTError("ConcurrentModificationException",
                                        f"table version {expected} is not the current one")
            return original(self)

    mp.setattr(GlueResponse, "update_table", update_table)


@contextmanager
def moto_aws() -> Iterator[MotoAWS]:
    """Start the server and point the AWS SDK variables at it for the duration."""
    server, aws = _start()
    try:
        with aws_environment(aws):
            yield aws
    finally:
        server.stop()


def _start() -> tuple[ThreadedMotoServer, MotoAWS]:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server, MotoAWS(f"http://127.0.0.1:{port}")


@contextmanager
def aws_environment(aws: MotoAWS) -> Iterator[MotoAWS]:
    """The AWS SDK variables pointed at `aws`, and its Glue as strict as AWS's, for the duration."""
    with pytest.MonkeyPatch.context() as mp:
        glue_checks_table_versions(mp)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_GLUE"):
            mp.delenv(name, raising=False)
        for name, value in aws.env().items():
            mp.setenv(name, value)
        yield aws


_shared: list[MotoAWS] = []


@pytest.fixture(scope="module")
def aws() -> Iterator[MotoAWS]:
    with moto_aws() as running:
        yield running


@pytest.fixture(scope="module")
def shared_aws() -> Iterator[MotoAWS]:
    """One server for the whole test session (started on first use, stopped when the process
    exits), emptied for each module that uses it."""
    if not _shared:
        server, running = _start()
        atexit.register(server.stop)
        _shared.append(running)
    _shared[0].reset()
    with aws_environment(_shared[0]) as running:
        yield running
