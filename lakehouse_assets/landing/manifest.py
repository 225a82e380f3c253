"""The landing manifest: every landing file seen, and where each of its records went, per day.

One row per (file, partition day): the file's size, checksum, record count and commit-ts span,
and how many of its records are filed under that day, as bronze rows (their commit date) or
as rejects (their `_partition_date`). A file with no records has one row, under its CDC name's
date (or the table's first commit date). The storage check (checks/reconcile.py) compares
these counts with what the warehouse holds.
"""

from __future__ import annotations

from datetime import date, datetime

import polars as pl

from lakehouse_assets.landing.reader import UTC_DATETIME, TableRead

MANIFEST_SCHEMA = {
    "table_name": pl.String,
    "_source_file": pl.String,
    "size_bytes": pl.Int64,
    "sha256": pl.String,
    "records_in_file": pl.Int64,
    "first_commit_ts": UTC_DATETIME,
    "last_commit_ts": UTC_DATETIME,
    "fields_found": pl.Int64,
    "fields_expected": pl.Int64,
    "note": pl.String,
    "_partition_date": pl.Date,
    "records": pl.Int64,
    "changes": pl.Int64,
    "rejects": pl.Int64,
    "_ingested_at": UTC_DATETIME,
    "_run_id": pl.String,
}

CDC_NAME_DATE = r"([0-9]{8})-[0-9]{9}\.csv(?:\.gz)?$"


def manifest_by_day(read: TableRead, ingested_at: datetime, run_id: str, first_partition: date) -> pl.DataFrame:
    files = read.manifest.drop("changes", "rejects")  # per file; the counts here are per day
    changes = read.changes.group_by(
        "_source_file", pl.col("_commit_ts").dt.date().alias("_partition_date")
    ).agg(pl.len().alias("changes"))
    rejects = read.rejects.group_by("_source_file", "_partition_date").agg(pl.len().alias("rejects"))
    days = changes.join(rejects, on=["_source_file", "_partition_date"], how="full", coalesce=True)
    first_day = read.changes["_commit_ts"].min()
    fallback = pl.coalesce(
        pl.col("_source_file").str.extract(CDC_NAME_DATE).str.to_date("%Y%m%d", strict=False),
        pl.lit(first_day.date() if first_day is not None else first_partition, pl.Date),
    )
    return (
        files.join(days, on="_source_file", how="left")
        .with_columns(
            pl.max_horizontal(pl.coalesce("_partition_date", fallback), pl.lit(first_partition)).alias(
                "_partition_date"
            ),
            pl.col("changes", "rejects").fill_null(0),
        )
        .with_columns(
            (pl.col("changes") + pl.col("rejects")).alias("records"),
            pl.col("records").alias("records_in_file"),
            pl.col("min_commit_ts").alias("first_commit_ts"),
            pl.col("max_commit_ts").alias("last_commit_ts"),
            pl.lit(ingested_at, UTC_DATETIME).alias("_ingested_at"),
            pl.lit(run_id).alias("_run_id"),
        )
        .select(list(MANIFEST_SCHEMA))
        .cast(MANIFEST_SCHEMA)
    )
