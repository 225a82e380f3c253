"""The AWS Glue Data Catalog: one database per layer, one Parquet table per asset.

Column types come from the polars schema of the frame being written, and map back exactly, so
a table read through the catalog has the types it was written with. The catalog is the pointer
that makes a write atomic: a partition (or an unpartitioned table) names the one S3 folder that
holds its current version, and switching that location is a single Glue call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import boto3
import polars as pl
from botocore.config import Config
from dagster import ConfigurableResource
from pydantic import Field, PrivateAttr

PARTITION_KEY = "dt"  # Hive-style: <table>/dt=YYYY-MM-DD/...
NAME = re.compile(r"^[a-z][a-z0-9_]{0,127}$")  # what Glue, Athena and S3 keys all accept as-is
BATCH = 100  # BatchCreatePartition / BatchUpdatePartition take at most 100 entries
PARQUET = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "SerdeInfo": {
        "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
        "Parameters": {"serialization.format": "1"},
    },
}
ROWS_PARAMETER = "recordCount"  # the name Glue crawlers use for a table's row count
VERSION_PARAMETER = "lakehouse_version"

_SIMPLE_TYPES: dict[str, pl.DataType] = {
    "tinyint": pl.Int8(),
    "smallint": pl.Int16(),
    "int": pl.Int32(),
    "bigint": pl.Int64(),
    "float": pl.Float32(),
    "double": pl.Float64(),
    "boolean": pl.Boolean(),
    "string": pl.String(),
    "date": pl.Date(),
    # Every timestamp of the lakehouse is UTC (CONTRACT section 1) in microseconds.
    "timestamp": pl.Datetime("us", "UTC"),
}
_DECIMAL = re.compile(r"^decimal\((\d+),\s*(\d+)\)$")


def glue_type(column: str, dtype: pl.DataType) -> str:
    """The Glue/Hive type of a polars column; types that would not read back exactly are refused."""
    if isinstance(dtype, pl.Decimal):
        return f"decimal({dtype.precision},{dtype.scale})"
    if isinstance(dtype, pl.Datetime):
        if dtype.time_unit == "us" and dtype.time_zone == "UTC":
            return "timestamp"
    else:
        for name, polars_dtype in _SIMPLE_TYPES.items():
            if dtype == polars_dtype:
                return name
    raise TypeError(
        f"column {column!r} is {dtype}, which has no Glue type here (use Decimal, Int8-64, "
        "Float32/64, Boolean, String, Date or Datetime('us', 'UTC'))"
    )


def polars_type(glue: str) -> pl.DataType:
    if m := _DECIMAL.match(glue):
        return pl.Decimal(int(m.group(1)), int(m.group(2)))
    if glue in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[glue]
    raise TypeError(f"Glue type {glue!r} is not one this warehouse writes")


def glue_columns(schema: pl.Schema) -> list[dict[str, str]]:
    if PARTITION_KEY in schema:
        raise ValueError(
            f"a column named {PARTITION_KEY!r} would clash with the Glue partition key; rename it"
        )
    return [{"Name": name, "Type": glue_type(name, dtype)} for name, dtype in schema.items()]


def polars_schema(columns: list[dict[str, str]]) -> dict[str, pl.DataType]:
    return {c["Name"]: polars_type(c["Type"]) for c in columns}


def evolve_columns(existing: list[dict[str, str]], incoming: list[dict[str, str]], table: str):
    """Columns after a write: new ones are appended (older partitions read them as NULL);
    a missing or retyped column fails, since readers would silently lose or misread data."""
    old = {c["Name"]: c["Type"] for c in existing}
    new = {c["Name"]: c["Type"] for c in incoming}
    retyped = sorted(n for n in old.keys() & new.keys() if old[n] != new[n])
    if retyped:
        changes = ", ".join(f"{n}: {old[n]} -> {new[n]}" for n in retyped)
        raise TypeError(f"{table}: column types changed ({changes}); migrate the table on purpose")
    dropped = [n for n in old if n not in new]
    if dropped:
        raise ValueError(
            f"{table}: the frame lacks columns the table has ({', '.join(dropped)}); "
            "columns are never dropped silently"
        )
    return [*existing, *(c for c in incoming if c["Name"] not in old)]


def check_name(kind: str, name: str) -> str:
    if not NAME.match(name):
        raise ValueError(f"{kind} {name!r} must match {NAME.pattern} to be a Glue and S3 name")
    return name


class GlueCatalog(ConfigurableResource):
    """boto3's Glue client, pointed at the databases `<prefix>_<layer>`."""

    database_prefix: str = Field(default="lakehouse", description="Databases <prefix>_bronze, ...")
    region_name: str | None = Field(default=None, description="AWS region; the SDK's when unset")
    endpoint_url: str | None = Field(
        default=None, description="A Glue-compatible endpoint; the SDK's (AWS_ENDPOINT_URL) when unset"
    )
    max_attempts: int = Field(default=5, description="Retries of throttled or failed calls")
    _client: Any = PrivateAttr(default=None)  # made once: building a boto3 client takes ~0.3 s

    def get_client(self) -> Any:
        if self._client is None:
            self._client = boto3.session.Session().client(
                "glue",
                region_name=self.region_name,
                endpoint_url=self.endpoint_url,
                config=Config(retries={"max_attempts": self.max_attempts, "mode": "standard"}),
            )
        return self._client

    def table(self, layer: str, name: str) -> GlueTable:
        database = check_name("database", f"{self.database_prefix}_{check_name('layer', layer)}")
        return GlueTable(self.get_client(), database, check_name("table", name))


@dataclass(frozen=True)
class Partition:
    day: str  # the dt value, YYYY-MM-DD
    location: str  # s3://.../dt=YYYY-MM-DD/<version>/
    rows: int


@dataclass(frozen=True)
class GlueTable:
    client: Any
    database: str
    name: str

    def describe(self) -> str:
        return f"{self.database}.{self.name}"

    def get(self) -> dict | None:
        try:
            return self.client.get_table(DatabaseName=self.database, Name=self.name)["Table"]
        except self.client.exceptions.EntityNotFoundException:
            return None

    def ensure_database(self) -> None:
        try:
            self.client.create_database(DatabaseInput={"Name": self.database})
        except self.client.exceptions.AlreadyExistsException:
            pass

    def put(self, existing: dict | None, columns, location: str, partitioned: bool, params=None):
        """Create the table, or update its columns and location (one call: atomic for readers)."""
        table_input = {
            "Name": self.name,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {
                "classification": "parquet",
                "EXTERNAL": "TRUE",
                **(params or {}),
            },
            "StorageDescriptor": {**PARQUET, "Columns": columns, "Location": location},
            "PartitionKeys": [{"Name": PARTITION_KEY, "Type": "string"}] if partitioned else [],
        }
        if existing is None:
            self.ensure_database()
            self.client.create_table(DatabaseName=self.database, TableInput=table_input)
        else:
            self.client.update_table(DatabaseName=self.database, TableInput=table_input)

    def partitions(self) -> list[Partition]:
        pages = self.client.get_paginator("get_partitions").paginate(
            DatabaseName=self.database, TableName=self.name
        )
        return [_partition(p) for page in pages for p in page["Partitions"]]

    def find_partitions(self, days: list[str]) -> dict[str, Partition]:
        """The registered partitions among these days."""
        found: dict[str, Partition] = {}
        wanted = [{"Values": [d]} for d in days]
        while wanted:
            batch, wanted = wanted[:1000], wanted[1000:]  # BatchGetPartition's limit
            response = self.client.batch_get_partition(
                DatabaseName=self.database, TableName=self.name, PartitionsToGet=batch
            )
            found.update({p.day: p for p in map(_partition, response["Partitions"])})
            wanted += response.get("UnprocessedKeys", [])  # throttled: ask again
        return found

    def switch_partitions(self, new: list[Partition], columns) -> dict[str, Partition]:
        """Point every partition at its new folder; returns the partitions as they were."""
        before = self.find_partitions([p.day for p in new])
        create = [p for p in new if p.day not in before]
        update = [p for p in new if p.day in before]
        for start in range(0, len(create), BATCH):
            batch = create[start : start + BATCH]
            response = self.client.batch_create_partition(
                DatabaseName=self.database,
                TableName=self.name,
                PartitionInputList=[_partition_input(p, columns) for p in batch],
            )
            raced = {tuple(e["PartitionValues"]) for e in response.get("Errors", [])
                     if e["ErrorDetail"].get("ErrorCode") == "AlreadyExistsException"}
            self._raise_errors("create", [e for e in response.get("Errors", [])
                                          if tuple(e["PartitionValues"]) not in raced])
            # Another writer created it meanwhile: update instead (its files become garbage).
            update += [p for p in batch if (p.day,) in raced]
        for start in range(0, len(update), BATCH):
            response = self.client.batch_update_partition(
                DatabaseName=self.database,
                TableName=self.name,
                Entries=[
                    {"PartitionValueList": [p.day], "PartitionInput": _partition_input(p, columns)}
                    for p in update[start : start + BATCH]
                ],
            )
            self._raise_errors("update", response.get("Errors", []))
        return before

    def _raise_errors(self, action: str, errors: list[dict]) -> None:
        if errors:
            first = errors[0]
            detail = first.get("ErrorDetail", {})
            raise RuntimeError(
                f"Glue could not {action} {len(errors)} partitions of {self.describe()}, e.g. "
                f"{first.get('PartitionValues') or first.get('PartitionValueList')}: "
                f"{detail.get('ErrorCode')} {detail.get('ErrorMessage')}"
            )


def _partition(raw: dict) -> Partition:
    return Partition(
        day=raw["Values"][0],
        location=raw["StorageDescriptor"]["Location"],
        rows=int(raw.get("Parameters", {}).get(ROWS_PARAMETER, 0)),
    )


def _partition_input(p: Partition, columns) -> dict:
    return {
        "Values": [p.day],
        "StorageDescriptor": {**PARQUET, "Columns": columns, "Location": p.location},
        "Parameters": {
            ROWS_PARAMETER: str(p.rows),
            VERSION_PARAMETER: p.location.rstrip("/").rsplit("/", 1)[-1],
        },
    }
