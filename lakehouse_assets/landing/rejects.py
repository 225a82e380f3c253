"""Records that cannot be read, as `bronze.cdc_rejects` rows: the reason, the raw text (read
again from the file: the reader keeps no file's bytes), and the day each is filed under."""

from __future__ import annotations

from dataclasses import replace

import polars as pl

from lakehouse_assets.landing.files import LandingFile, LandingStore, decode_file
from lakehouse_assets.landing.records import LandedFile
from lakehouse_assets.schemas.tables import REJECT_COLUMNS
from lakehouse_assets.schemas.types import polars_schema
from lakehouse_assets.sources import SourceTable

REJECT_SCHEMA = polars_schema(REJECT_COLUMNS)
_REJECT_READ = {k: v for k, v in REJECT_SCHEMA.items() if k != "_ingested_at"}  # before it is stamped


def landed_data(store: LandingStore, file: LandingFile) -> bytes:
    """The decompressed bytes as split_records saw them (newline-terminated)."""
    data = decode_file(file, store.read_bytes(file)).data
    return data + b"\n" if data and not data.endswith(b"\n") else data


def rejects_of(bad: pl.DataFrame, landed: list[LandedFile], table: SourceTable, store: LandingStore) -> pl.DataFrame:
    bad = bad.sort("_file", "_record")
    raw: list[str] = []
    cdc_dates: list[str | None] = []
    for (file_idx,), group in bad.group_by(["_file"], maintain_order=True):
        f = landed[file_idx]
        try:
            data = landed_data(store, f.file)
        except OSError as exc:  # gone since it was read: say so rather than fail
            raw.extend([f"(could not be read again for its raw text: {exc})"] * len(group))
        else:
            raw.extend(replace(f.split, data=data).raw_text(group["_record"].to_numpy()))
        cdc_dates.extend([f.file.cdc_date] * len(group))
    return pl.DataFrame(
        {
            "table_name": pl.Series([table.name] * len(bad), dtype=pl.String),
            "_source_file": bad["_source_file"],
            "_source_row": bad["_source_row"],
            "reason": bad["reason"],
            "raw_text": pl.Series(raw, dtype=pl.String),
            "_commit_ts": bad["_commit_ts"],
            "_partition_date": pl.Series(cdc_dates, dtype=pl.String).str.to_date(strict=False),
        },
        schema=_REJECT_READ,
    ).with_columns(pl.coalesce(pl.col("_commit_ts").dt.date(), "_partition_date").alias("_partition_date"))


def stream_problem(f: LandedFile, table: SourceTable) -> pl.DataFrame:
    """A damaged or truncated gzip stream: its unreadable rest counts as one record, a reject,
    so the loss is visible and the file's records still add up."""
    n = f.split.n_records - int(f.skip_header)
    return pl.DataFrame(
        {
            "table_name": [table.name],
            "_source_file": [f.file.path],
            "_source_row": [n + 1],
            "reason": [f"{f.content.problem}: records after row {n} are missing"],
            "raw_text": [""],
            "_commit_ts": [None],
            "_partition_date": [None],
        },
        schema=_REJECT_READ,
    ).with_columns(pl.lit(f.file.cdc_date, pl.String).str.to_date(strict=False).alias("_partition_date"))


def fill_reject_dates(rejects: pl.DataFrame, changes: pl.DataFrame) -> pl.DataFrame:
    """A reject without a readable commit ts is filed under the nearest readable record of its
    file; in a file with none, under its CDC name's date but never after the table's latest
    commit (a span that covers the zone's commits then covers its rejects too)."""
    if rejects.is_empty():
        return rejects
    near = changes.select(
        "_source_file", "_source_row", pl.col("_commit_ts").dt.date().alias("near")
    ).sort("_source_file", "_source_row")
    latest = changes["_commit_ts"].max()
    latest_day = pl.lit(latest.date() if latest is not None else None, pl.Date)
    joined = rejects.sort("_source_file", "_source_row").join_asof(
        near, on="_source_row", by="_source_file", strategy="nearest", check_sortedness=False
    )
    return joined.with_columns(
        pl.coalesce(
            pl.col("_commit_ts").dt.date(),
            "near",
            pl.min_horizontal("_partition_date", latest_day),  # _partition_date: CDC name date
        ).alias("_partition_date")
    ).select(list(_REJECT_READ))
