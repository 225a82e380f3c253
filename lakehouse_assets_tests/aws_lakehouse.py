"""The lakehouse in AWS mode for tests: the landing zone on moto's S3, the warehouse Iceberg
tables in moto's Glue, resources chosen by the product from LAKEHOUSE_ENV=aws settings
(`resources_for`), driven like the daemon drives it (sensor ticks and the runs they ask for)
or through the contract's CLI in a subprocess. Tables are read back through the warehouse
and compared with local mode's DuckDB file (`harness.snapshot`)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from dagster import DagsterInstance, RunRequest, SensorResult, build_sensor_context, materialize

from lakehouse_assets.definitions import defs
from lakehouse_assets.resources import resources_for
from lakehouse_assets.runs import range_tags
from lakehouse_assets.schemas.tables import ALL_SPECS
from lakehouse_assets.sensors.landing import landing_sensor
from lakehouse_assets.settings import Settings
from lakehouse_assets.storage.iceberg_warehouse import IcebergWarehouse
from lakehouse_assets.storage.tables import TableRef
from lakehouse_assets_tests.harness import assert_same, comparable, failures
from lakehouse_assets_tests.moto_server import REGION, MotoAWS
from lakehouse_assets_tests.pipeline import ALL_ASSETS

DAGSTER = Path(sys.executable).with_name("dagster")
LAYERS = ("bronze", "silver", "gold")
# A sqlite event log spends most of a small CLI run on fsyncs of per-partition events.
EVENTS_IN_MEMORY = """
event_log_storage:
  module: dagster._core.storage.event_log
  class: InMemoryEventLogStorage
"""


@dataclass(frozen=True)
class AwsMode:
    """One AWS-mode deployment: its landing prefix, warehouse prefix and Glue databases."""

    aws: MotoAWS
    name: str  # tells deployments on one server apart: buckets and Glue databases

    @property
    def landing_bucket(self) -> str:
        return f"{self.name}-landing"

    @property
    def landing_uri(self) -> str:
        return f"s3://{self.landing_bucket}/dms"

    @property
    def warehouse_uri(self) -> str:
        return f"s3://{self.name}-warehouse/tables"

    @property
    def prefix(self) -> str:
        return self.name.replace("-", "_")

    def create(self) -> AwsMode:
        self.aws.create_bucket(self.landing_bucket)
        self.aws.create_bucket(f"{self.name}-warehouse")
        return self

    def env(self) -> dict[str, str]:
        """CONTRACT section 6's variables for this deployment, and the SDK's for moto."""
        return {**self.aws.env(), "LAKEHOUSE_ENV": "aws", "LAKEHOUSE_LANDING_URI": self.landing_uri,
                "LAKEHOUSE_WAREHOUSE_URI": self.warehouse_uri, "LAKEHOUSE_GLUE_DATABASE_PREFIX": self.prefix}

    @contextmanager
    def active(self) -> Iterator[dict]:
        """The variables set, and the resources the product chooses for them (their EnvVar
        values are read when a run or tick uses them, so they stay set meanwhile)."""
        with pytest.MonkeyPatch.context() as mp:
            for name, value in self.env().items():
                mp.setenv(name, value)
            yield resources_for(Settings.from_environ(os.environ))

    def upload(self, folder: Path) -> int:
        return self.aws.upload_folder(folder, self.landing_bucket, "dms")

    def put(self, relative: str, body: bytes) -> None:
        self.aws.s3().put_object(Bucket=self.landing_bucket, Key=f"dms/{relative}", Body=body)

    def delete(self, relative: str) -> None:
        self.aws.s3().delete_object(Bucket=self.landing_bucket, Key=f"dms/{relative}")

    def landing_keys(self) -> list[str]:
        return [k.removeprefix("dms/") for k in self.aws.keys(self.landing_bucket, "dms/")]

    def warehouse(self) -> IcebergWarehouse:
        return IcebergWarehouse(warehouse_uri=self.warehouse_uri, glue_database_prefix=self.prefix,
                                region_name=REGION, endpoint_url=self.aws.endpoint)

    def glue_tables(self, layers=LAYERS) -> list[tuple[str, str]]:
        glue = self.aws.glue()
        names = {d["Name"] for d in glue.get_databases()["DatabaseList"]}
        out = []
        for layer in layers:
            if f"{self.prefix}_{layer}" in names:
                pages = glue.get_paginator("get_tables").paginate(DatabaseName=f"{self.prefix}_{layer}")
                out += [(layer, t["Name"]) for page in pages for t in page["TableList"]]
        return sorted(out)

    def snapshot(self, layers=LAYERS) -> dict[str, pl.DataFrame]:
        """Every table of the layers, read through the warehouse, sorted, without the columns
        that say when and by which run a row was written (as `harness.snapshot`)."""
        warehouse = self.warehouse()
        out = {}
        with warehouse.reader() as look:
            for layer, name in self.glue_tables(layers):
                spec = ALL_SPECS[TableRef(layer, name)]
                out[f"{layer}.{name}"] = comparable(look.con.sql(f"SELECT * FROM {look.scan(spec)}").pl())
        return in_utc(out)

    def cli_env(self, home: Path) -> dict[str, str]:
        """A subprocess's environment: the developer's minus any LAKEHOUSE_/DAGSTER_ value,
        plus this deployment's variables and a DAGSTER_HOME."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKEHOUSE_", "DAGSTER_", "AWS_"))}
        return {**env, **self.env(), "DAGSTER_HOME": str(home), "LAKEHOUSE_PARTITIONS_START": "2024-01-01",
                "LAKEHOUSE_SETTLE_SECONDS": "0"}


def in_utc(tables: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """Timestamps shown in UTC: a DuckDB connection reads them in the machine's time zone
    (`harness.snapshot`), the warehouse's scratch session in UTC; the instants are what count."""
    def utc(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(pl.col(pl.Datetime(time_zone="*")).dt.convert_time_zone("UTC"))

    return {name: utc(frame) for name, frame in tables.items()}


def assert_same_as_local(aws: dict[str, pl.DataFrame], local: dict[str, pl.DataFrame]) -> None:
    """Row for row. Both snapshots already leave out the manifest's ETag, which is the store's
    own (S3's MD5, a local file's size and mtime)."""
    assert_same(aws, in_utc(local))


def dagster_home(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dagster.yaml").write_text(EVENTS_IN_MEMORY)
    return folder


def materialize_cli(select: str, partition_range: str, env: dict, cwd: Path) -> subprocess.Popen:
    """The contract's command, started (not waited for)."""
    return subprocess.Popen(
        [str(DAGSTER), "asset", "materialize", "-m", "lakehouse_assets.definitions",
         "--select", select, "--partition-range", partition_range],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def finished(process: subprocess.Popen, timeout: float = 600) -> str:
    out, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, out[-4000:]
    return out


@dataclass
class AwsLakehouse:
    """Sensor ticks (with their cursor) and runs on one instance, in AWS mode."""

    mode: AwsMode
    instance: DagsterInstance = field(default_factory=DagsterInstance.ephemeral)
    cursor: str | None = None

    def tick(self) -> SensorResult:
        with self.mode.active() as resources:
            with build_sensor_context(instance=self.instance, cursor=self.cursor, definitions=defs,
                                      resources={k: resources[k] for k in ("landing", "warehouse")}) as context:
                result = landing_sensor(context)
        self.cursor = result.cursor
        return result

    def run(self, request: RunRequest):
        return self._materialize(list(request.asset_selection), dict(request.tags))

    def tick_and_run(self, limit: int = 4) -> list[RunRequest]:
        """Ticks and their runs until a tick asks for nothing, as the daemon would."""
        requests = []
        for _ in range(limit):
            result = self.tick()
            if not result.run_requests:
                return requests
            [request] = result.run_requests
            self.run(request)
            requests.append(request)
        raise AssertionError("the sensor kept asking for runs")

    def backfill(self, first: date, last: date):
        return self._materialize(None, range_tags(first, last))

    def _materialize(self, selection, tags: dict):
        with self.mode.active() as resources:
            result = materialize(ALL_ASSETS, selection=selection, resources=resources, instance=self.instance,
                                 tags=tags, raise_on_error=False)
        assert result.success, failures(result)
        return result
