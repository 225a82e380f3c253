"""The AWS warehouse: polars frames as Parquet on S3, every table in the Glue Data Catalog.

Behaves like the local DuckDB IO manager (`duckdb_io.py`), so assets cannot tell them apart:
a run replaces its whole partition range, an empty result empties a partition on purpose,
rows outside the partitions being written are refused, a never-written upstream loads as a
frame with no columns, and column types read back exactly as written.

Layout (Hive-style, one fresh folder per version of a partition):

    <warehouse>/<layer>/<table>/dt=YYYY-MM-DD/<version>/<version>.parquet
    <warehouse>/<layer>/<table>/<version>/<version>.parquet          (unpartitioned assets)

Atomic replacement: the Glue partition's location (the table's, when unpartitioned) is the
pointer. A write (1) puts the new files under a fresh version folder, (2) switches the pointer
with one Glue call per 100 partitions, (3) deletes the folders the pointer left. A crash after
(1) leaves the old version in place with unreferenced new files, after (2) leaves the new
version with unreferenced old files: every reader sees one complete version. Each later write
deletes files under the table that no pointer names and that are older than a grace period
(younger ones may belong to a concurrent writer between its steps 1 and 2).

Read through the catalog (Athena, Spark, Trino, Snowflake external tables on Glue), not by
listing the table folder, which also holds versions in flight and garbage.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Literal

import polars as pl
from dagster import ConfigurableIOManager, InputContext, OutputContext
from dagster_aws.s3 import S3Resource
from pydantic import Field, PrivateAttr

from lakehouse_assets.storage.glue import (
    ROWS_PARAMETER,
    GlueCatalog,
    GlueTable,
    Partition,
    check_name,
    evolve_columns,
    glue_columns,
    polars_schema,
)
from lakehouse_assets.storage.row_counts import row_counts

DAY_COLUMN = "__lakehouse_day"


def split_s3_uri(uri: str) -> tuple[str, str]:
    """s3://bucket/prefix -> (bucket, prefix without surrounding slashes)."""
    if not uri.startswith("s3://") or not uri[5:].split("/", 1)[0]:
        raise ValueError(f"expected s3://bucket/prefix, not {uri!r}")
    bucket, _, prefix = uri[5:].partition("/")
    return bucket, prefix.strip("/")


def layer_and_name(path: list[str]) -> tuple[str, str]:
    """['silver', 'orders'] -> names checked to be safe as Glue names and S3 key parts."""
    if len(path) < 2:
        raise ValueError(f"asset key {path} needs a layer prefix, e.g. ['silver', 'orders']")
    return check_name("layer", path[-2]), check_name("table", path[-1])


def new_version() -> str:
    """Sorts by time; unique across writers."""
    return f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S%f}Z-{uuid.uuid4().hex[:12]}"


def window_days(start: datetime, end: datetime) -> list[date]:
    """The UTC days of a daily partition window [start, end)."""
    start, end = start.astimezone(timezone.utc), end.astimezone(timezone.utc)
    if any(t != datetime.combine(t.date(), time(), timezone.utc) for t in (start, end)):
        raise ValueError(f"partitions {start}...{end} are not whole UTC days: only daily ones are stored")
    return [start.date() + timedelta(days=i) for i in range((end - start).days)]


def split_by_day(frame: pl.DataFrame, column: str, days: list[date]) -> dict[date, pl.DataFrame]:
    """One frame per day of the write, empty for days without rows; rows outside are refused."""
    if column not in frame.columns:
        raise ValueError(f"partition column {column!r} is not in the frame ({', '.join(frame.columns)})")
    dtype = frame.schema[column]
    if not (dtype == pl.Date or isinstance(dtype, pl.Datetime)):
        raise TypeError(
            f"partition column {column!r} is {dtype}; a daily partition needs a DATE or "
            "TIMESTAMP column (comparing text with dates mis-files rows)"
        )
    day = pl.col(column).cast(pl.Date) if dtype == pl.Date else pl.col(column).dt.date()
    tagged = frame.with_columns(day.alias(DAY_COLUMN))
    inside = pl.col(DAY_COLUMN).is_between(days[0], days[-1]).fill_null(False)
    outside = tagged.select((~inside).sum()).item()
    if outside:
        raise ValueError(
            f"{outside} rows fall outside the partitions being written ({days[0]}...{days[-1]} "
            f"by {column!r}); refusing to write them"
        )
    parts = tagged.partition_by(DAY_COLUMN, as_dict=True, include_key=False, maintain_order=True)
    empty = frame.clear()
    return {d: parts.get((d,), empty) for d in days}


class S3ParquetIOManager(ConfigurableIOManager):
    """Parquet on S3 under `warehouse_uri`, tables in Glue databases `<prefix>_<layer>`."""

    warehouse_uri: str = Field(description="s3://bucket/prefix for the Parquet tables")
    s3: S3Resource
    glue: GlueCatalog
    compression: Literal["zstd", "snappy"] = "zstd"
    garbage_grace_seconds: int = Field(
        default=3600, description="Unreferenced files younger than this are left alone"
    )
    write_threads: int = Field(default=16, description="Partitions uploaded at once")
    _s3_client: Any = PrivateAttr(default=None)

    # ---- writing -----------------------------------------------------------------------

    def handle_output(self, context: OutputContext, obj: pl.DataFrame) -> None:
        if not isinstance(obj, pl.DataFrame):
            raise TypeError(f"S3ParquetIOManager stores polars DataFrames, not {type(obj).__name__}")
        if obj.width == 0:
            raise ValueError("a frame with no columns has no schema to store")
        table = self._table(context.asset_key.path)
        root = self._table_uri(context.asset_key.path)
        existing = table.get()
        partitioned = context.has_asset_partitions
        if existing is not None and bool(existing["PartitionKeys"]) != partitioned:
            raise ValueError(
                f"{table.describe()} is {'' if partitioned else 'not '}partitioned in Glue but the "
                f"asset is {'not ' if partitioned else ''}partitioned"
            )
        columns = glue_columns(obj.schema)
        if existing is not None:
            columns = evolve_columns(existing["StorageDescriptor"]["Columns"], columns, table.describe())
            obj = obj.select([c["Name"] for c in columns])  # files in the table's column order
        version = new_version()
        if partitioned:
            expr = context.definition_metadata.get("partition_expr")
            if not expr:
                raise ValueError(f"{context.asset_key.to_user_string()} needs `partition_expr` metadata")
            window = context.asset_partitions_time_window
            by_day = split_by_day(obj, expr, window_days(window.start, window.end))
            new = [
                Partition(d.isoformat(), f"{root}dt={d.isoformat()}/{version}/", len(frame))
                for d, frame in by_day.items()
            ]
            if existing is None or columns != existing["StorageDescriptor"]["Columns"]:
                # Adding columns first is safe: older partitions read them as NULL.
                table.put(existing, columns, root, partitioned=True)
            self._write(zip((p.location for p in new), by_day.values()), version)
            before = table.switch_partitions(new, columns)  # the atomic step, per partition
            obsolete = {p.location for p in before.values()}
            current = table.partitions()
            self._collect_garbage(root, {p.location for p in current}, obsolete)
            total = sum(p.rows for p in current)
        else:
            location = f"{root}{version}/"
            self._write([(location, obj)], version)
            table.put(existing, columns, location, partitioned=False,
                      params={ROWS_PARAMETER: str(len(obj))})  # the atomic step
            obsolete = {existing["StorageDescriptor"]["Location"]} if existing else set()
            self._collect_garbage(root, {location}, obsolete)
            total = len(obj)
        context.add_output_metadata(
            {
                **row_counts(context, len(obj), total),
                "dagster/table_name": table.describe(),  # the Glue database.table
                "s3_prefix": root,
            }
        )

    def _write(self, frames: Iterable[tuple[str, pl.DataFrame]], version: str) -> None:
        """Upload every version folder's one file; an empty frame still writes its schema, so
        an empty day is a registered partition with no rows."""
        options = self._storage_options()

        def put(item: tuple[str, pl.DataFrame]) -> None:
            location, frame = item
            frame.write_parquet(f"{location}{version}.parquet", compression=self.compression,
                                storage_options=options)

        with ThreadPoolExecutor(max_workers=self.write_threads) as pool:
            list(pool.map(put, frames))  # list() re-raises the first failure

    def _collect_garbage(self, root: str, current: set[str], obsolete: set[str]) -> None:
        """Delete the folders this write replaced, and unreferenced files past the grace period."""
        bucket, prefix = split_s3_uri(root)
        objects = self._list(bucket, f"{prefix}/")
        if objects.is_empty():
            return
        cutoff = datetime.now(timezone.utc) - timedelta(seconds=self.garbage_grace_seconds)
        folder = pl.format("s3://{}/{}/", pl.lit(bucket), pl.col("key").str.replace(r"/[^/]*$", ""))
        doomed = objects.filter(
            ~folder.is_in(list(current))
            & (folder.is_in(list(obsolete)) | (pl.col("last_modified") < cutoff))
        )["key"].to_list()
        client = self._s3()
        for start in range(0, len(doomed), 1000):  # DeleteObjects takes at most 1000 keys
            response = client.delete_objects(
                Bucket=bucket,
                Delete={"Objects": [{"Key": k} for k in doomed[start : start + 1000]], "Quiet": True},
            )
            if response.get("Errors"):
                error = response["Errors"][0]
                raise RuntimeError(f"could not delete s3://{bucket}/{error['Key']}: {error['Code']}")

    # ---- reading -----------------------------------------------------------------------

    def load_input(self, context: InputContext) -> pl.DataFrame:
        table = self._table(context.asset_key.path)
        existing = table.get()
        if existing is None:
            return pl.DataFrame()  # never written: assets fill in their schema (`with_schema`)
        schema = polars_schema(existing["StorageDescriptor"]["Columns"])
        if not existing["PartitionKeys"]:
            locations = [existing["StorageDescriptor"]["Location"]]
        elif context.has_asset_partitions and not context.asset_partition_keys:
            locations = []
        else:
            partitions = table.partitions()
            if context.has_asset_partitions:
                window = context.asset_partitions_time_window
                days = window_days(window.start, window.end)
                first, last = days[0].isoformat(), days[-1].isoformat()
                partitions = [p for p in partitions if first <= p.day <= last]
            locations = [p.location for p in partitions]
        files = self._files_in(self._table_uri(context.asset_key.path), locations)
        columns = context.definition_metadata.get("columns") or list(schema)
        if not files:
            return pl.DataFrame(schema=schema).select(columns)
        # Files written before a column was added lack it: it reads as NULL. Only the columns
        # asked for are read from S3.
        return pl.scan_parquet(
            files, schema=schema, missing_columns="insert", hive_partitioning=False,
            storage_options=self._storage_options(),
        ).select(columns).collect()

    def _files_in(self, root: str, locations: list[str]) -> list[str]:
        """The files in the given version folders, found with one listing of the table."""
        if not locations:
            return []
        bucket, prefix = split_s3_uri(root)
        objects = self._list(bucket, f"{prefix}/")
        if objects.is_empty():
            return []
        uris = objects.select(pl.format("s3://{}/{}", pl.lit(bucket), pl.col("key")).alias("uri"))
        folder = pl.col("uri").str.replace(r"/[^/]*$", "/")
        found = uris.filter(folder.is_in(locations) & pl.col("uri").str.ends_with(".parquet"))
        return found.sort("uri")["uri"].to_list()

    # ---- places ------------------------------------------------------------------------

    def _table(self, path: list[str]) -> GlueTable:
        return self.glue.table(*layer_and_name(path))

    def _table_uri(self, path: list[str]) -> str:
        bucket, prefix = split_s3_uri(self.warehouse_uri)
        layer, name = layer_and_name(path)
        return "s3://" + "/".join(p for p in (bucket, prefix, layer, name) if p) + "/"

    def _s3(self) -> Any:
        if self._s3_client is None:  # made once: building a boto3 client takes ~0.3 s
            self._s3_client = self.s3.get_client()
        return self._s3_client

    def _list(self, bucket: str, prefix: str) -> pl.DataFrame:
        pages = self._s3().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        rows = [(o["Key"], o["LastModified"]) for page in pages for o in page.get("Contents", [])]
        return pl.DataFrame(
            rows, schema={"key": pl.String, "last_modified": pl.Datetime("us", "UTC")}, orient="row"
        )

    def _storage_options(self) -> dict[str, str]:
        """Where polars (object_store) sends requests. Credentials are not passed here: polars
        asks boto3's default chain (environment, profile, task role), so none sit in options."""
        endpoint = (
            self.s3.endpoint_url
            or os.environ.get("AWS_ENDPOINT_URL_S3")
            or os.environ.get("AWS_ENDPOINT_URL")
        )
        region = (
            self.s3.region_name or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        )
        options = {}
        if endpoint:
            options["aws_endpoint_url"] = endpoint
            options["aws_allow_http"] = str(endpoint.startswith("http://")).lower()
        if region:
            options["aws_region"] = region
        return options
