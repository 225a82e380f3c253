"""The landing manifest: every landing file ingested, and where each of its records went,
per day. It is bronze's ledger: a file is ingested once its rows are here.

One row per (file, partition day): the file's size, ETag, checksum, record count and
commit-ts span, and how many of its records are filed under that day, as bronze rows (their
commit date), as rejects (their `_partition_date`), or removed on purpose (`purged`). A file
with no records has one row, under its CDC name's date (or the table's first commit date).
The reconciliation check (checks/reconcile.py) compares these counts with the warehouse.
"""

from __future__ import annotations

from datetime import date, datetime

import polars as pl

from lakehouse_assets.landing.reader import TableRead
from lakehouse_assets.schemas.tables import MANIFEST_COLUMNS
from lakehouse_assets.schemas.types import UTC_DATETIME, polars_schema

MANIFEST_SCHEMA = polars_schema(MANIFEST_COLUMNS)
CDC_NAME_DATE = r"([0-9]{8})-[0-9]{9}\.csv(?:\.gz)?$"
_COUNTS = ["_source_file", "_partition_date"]


def manifest_by_day(read: TableRead, purged: pl.DataFrame, ingested_at: datetime, run_id: str,
                    first_partition: date) -> pl.DataFrame:
    """The manifest rows of the files in `read`; `purged` holds (_source_file, _commit_ts) of
    their records removed on purpose before the write."""
    files = read.manifest.drop("changes", "rejects")  # per file; the counts here are per day
    per_day = [
        read.changes.group_by("_source_file", pl.col("_commit_ts").dt.date().alias("_partition_date"))
        .agg(pl.len().alias("changes")),
        read.rejects.group_by(_COUNTS).agg(pl.len().alias("rejects")),
        purged.group_by("_source_file", pl.col("_commit_ts").dt.date().alias("_partition_date"))
        .agg(pl.len().alias("purged")),
    ]
    days = per_day[0]
    for other in per_day[1:]:
        days = days.join(other, on=_COUNTS, how="full", coalesce=True)
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
            pl.col("changes", "rejects", "purged").fill_null(0),
        )
        .with_columns(
            (pl.col("changes") + pl.col("rejects") + pl.col("purged")).alias("records"),
            pl.col("records").alias("records_in_file"),
            pl.col("min_commit_ts").alias("first_commit_ts"),
            pl.col("max_commit_ts").alias("last_commit_ts"),
            pl.lit(ingested_at, UTC_DATETIME).alias("_ingested_at"),
            pl.lit(run_id).alias("_run_id"),
            pl.lit(ingested_at, UTC_DATETIME).alias("last_seen_at"),
        )
        .select(list(MANIFEST_SCHEMA))
        .cast(MANIFEST_SCHEMA)
    )
