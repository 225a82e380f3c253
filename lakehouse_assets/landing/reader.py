"""Reading DMS landing files of one table into change records and rejects (CONTRACT 2 and 3).

Every data record of a file ends in exactly one of two frames: `changes` (the bronze rows:
every column as landed text plus `_op`, `_commit_ts`, `_seq`, `_source_file`, `_source_row`)
or `rejects` (with the reason and the raw text). A per-file summary makes the count checkable.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime

import polars as pl

from lakehouse_assets.landing.csv_records import split_records
from lakehouse_assets.landing.files import FileBytes, LandingFile, LandingStore, decode_file
from lakehouse_assets.landing.records import OPS, LandedFile, is_header, records_frame, validate_records
from lakehouse_assets.landing.rejects import REJECT_SCHEMA, fill_reject_dates, rejects_of, stream_problem
from lakehouse_assets.schemas.tables import change_columns
from lakehouse_assets.schemas.types import UTC_DATETIME, polars_schema
from lakehouse_assets.sources import SourceTable

__all__ = ["OPS", "REJECT_SCHEMA", "FILE_SUMMARY_SCHEMA", "LandedFile", "TableRead", "change_schema",
           "read_batches", "read_landed", "read_table"]

# What was read of each file: one row per file (the landing manifest splits it by day).
FILE_SUMMARY_SCHEMA = {
    "table_name": pl.String,
    "_source_file": pl.String,
    "size_bytes": pl.Int64,
    "etag": pl.String,
    "sha256": pl.String,
    "records": pl.Int64,
    "changes": pl.Int64,
    "rejects": pl.Int64,
    "min_commit_ts": UTC_DATETIME,
    "max_commit_ts": UTC_DATETIME,
    "fields_found": pl.Int64,  # the most common field count of the file's records
    "fields_expected": pl.Int64,  # of the declared layout, with Op
    "note": pl.String,
}


def change_schema(table: SourceTable) -> dict[str, pl.DataType]:
    """Bronze columns: the table's columns as text, then the change metadata."""
    return polars_schema(change_columns(table))


@dataclass(frozen=True)
class TableRead:
    changes: pl.DataFrame
    rejects: pl.DataFrame
    manifest: pl.DataFrame  # one row per file (FILE_SUMMARY_SCHEMA): counts, checksum, commit-ts span
    ignored: list[str]  # entries in the table folder that are not landing files, files landed twice


def _land(store: LandingStore, file: LandingFile, table: SourceTable) -> LandedFile:
    """Read, decompress and split one file."""
    try:
        content = decode_file(file, store.read_bytes(file))
    except OSError as exc:
        content = FileBytes(b"", "", f"could not be read ({exc})")
    split = split_records(content.data)
    if content.problem and split.n_records and not content.data.endswith(b"\n"):
        split.errors[split.n_records - 1] = f"{content.problem}: the stream ends inside this record"
    header = bool(split.n_records) and is_header(split, table)
    # The bytes are not kept: the field array holds the values, and the few rejects' raw text
    # is read again (_rejects). A table's landing files need not all fit in memory twice.
    return LandedFile(file, FileBytes(b"", content.sha256, content.problem), replace(split, data=b""), header)


def read_table(store: LandingStore, table: SourceTable, ingested_at: datetime) -> TableRead:
    """Every landing file of `table`, read into one `TableRead` (for tools and tests; the
    bronze step reads only what its ledger says is new, a batch at a time)."""
    files, ignored = store.list_files(table.landing_folder)
    reads = list(read_batches(store, table, files, ingested_at))
    if not reads:
        reads = [read_landed([], table, store, ingested_at)]
    return TableRead(
        pl.concat([r.changes for r in reads], rechunk=False),
        pl.concat([r.rejects for r in reads]),
        pl.concat([r.manifest for r in reads]),
        ignored + [note for r in reads for note in r.ignored],
    )


def read_batches(
    store: LandingStore, table: SourceTable, files: list[LandingFile], ingested_at: datetime,
    landed: dict[tuple[str, str], str] | None = None,
) -> Iterator[TableRead]:
    """Read these landing files of `table`, a batch (about BATCH_BYTES of files) at a time,
    in the contract's file order. A file with the same name stem and content as another
    (`landed`: (stem, sha256) -> path, of files read before) is a file landed twice: its
    records are not read again, and its summary says so.

    Files are split (numpy over their bytes, on every core: numpy, polars and file reads
    release the GIL) a batch at a time, and each batch's records are picked apart together:
    the cost per file stays small, and only one batch's field arrays are held at once."""
    seen = dict(landed or {})
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        for batch in _batches(sorted(files, key=lambda f: f.order_key)):
            kept, twins = [], []
            for f in pool.map(lambda file: _land(store, file, table), batch):
                stem = f.file.name.removesuffix(".gz")
                if (stem, f.content.sha256) in seen and f.content.problem is None:
                    twins.append((f, seen[(stem, f.content.sha256)]))
                    continue
                seen[(stem, f.content.sha256)] = f.file.path
                kept.append(f)
            yield read_landed(kept, table, store, ingested_at, twins)


def read_landed(landed: list[LandedFile], table: SourceTable, store: LandingStore, ingested_at: datetime,
                 twins: list[tuple[LandedFile, str]] = ()) -> TableRead:
    records = records_frame(landed, table)
    checked = records.hstack(validate_records(records, table))
    schema = change_schema(table)
    clean = checked["reason"].null_count() == len(checked)  # then no copy of the rows
    changes = (
        (checked if clean else checked.filter(pl.col("reason").is_null()))
        .select(list(schema)[:-1])
        .cast({k: v for k, v in schema.items() if k != "_ingested_at"})
        .with_columns(pl.lit(ingested_at, UTC_DATETIME).alias("_ingested_at"))
    )
    rejects = pl.concat(
        [
            rejects_of(checked.filter(pl.col("reason").is_not_null()), landed, table, store),
            *(stream_problem(f, table) for f in landed if f.content.problem),
        ]
    )
    rejects = fill_reject_dates(rejects, changes).with_columns(
        pl.lit(ingested_at, UTC_DATETIME).alias("_ingested_at")
    )
    manifest = pl.concat([_manifest(landed, table, records, changes, rejects), _twins(twins, table)])
    notes = [f"{f.file.path}: same content as {other}, landed twice" for f, other in twins]
    return TableRead(changes, rejects, manifest, notes)


def _twins(twins, table: SourceTable) -> pl.DataFrame:
    """Summaries of files landed twice: no records of their own."""
    return pl.DataFrame(
        {
            "table_name": [table.name] * len(twins),
            "_source_file": [f.file.path for f, _ in twins],
            "size_bytes": [f.file.size for f, _ in twins],
            "etag": [f.file.etag for f, _ in twins],
            "sha256": [f.content.sha256 for f, _ in twins],
            "records": [0] * len(twins),
            "changes": [0] * len(twins),
            "rejects": [0] * len(twins),
            "note": [f"same content as {other}, landed twice: not read again" for _, other in twins],
        },
        schema={k: FILE_SUMMARY_SCHEMA[k] for k in
                ("table_name", "_source_file", "size_bytes", "etag", "sha256", "records", "changes", "rejects", "note")},
    ).with_columns(
        pl.lit(None, UTC_DATETIME).alias("min_commit_ts"), pl.lit(None, UTC_DATETIME).alias("max_commit_ts"),
        pl.lit(None, pl.Int64).alias("fields_found"),
        pl.lit(len(table.columns) + 3 + len(table.trailing_columns), pl.Int64).alias("fields_expected"),
    ).select(list(FILE_SUMMARY_SCHEMA))


BATCH_BYTES = 64 * 2**20


def _batches(files: list[LandingFile]):
    batch, size = [], 0
    for f in files:
        batch.append(f)
        size += f.size
        if size >= BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _manifest(landed, table, records, changes, rejects) -> pl.DataFrame:
    """One row per file: what was read and where it went."""
    files = pl.DataFrame(
        {
            "_source_file": [f.file.path for f in landed],
            "size_bytes": [f.file.size for f in landed],
            "etag": [f.file.etag for f in landed],
            "sha256": [f.content.sha256 for f in landed],
            "note": [f.content.problem for f in landed],
        },
        schema={"_source_file": pl.String, "size_bytes": pl.Int64, "etag": pl.String, "sha256": pl.String,
                "note": pl.String},
    )
    counts = records.group_by("_source_file").agg(
        pl.len().alias("records"), pl.col("_n_fields").mode().min().alias("fields_found")
    )
    # The unreadable rest of a damaged gzip stream is one more record (see _stream_problem).
    damaged = pl.DataFrame({"_source_file": [f.file.path for f in landed if f.content.problem]},
                           schema={"_source_file": pl.String})
    span = changes.group_by("_source_file").agg(
        pl.len().alias("changes"),
        pl.col("_commit_ts").min().alias("min_commit_ts"),
        pl.col("_commit_ts").max().alias("max_commit_ts"),
    )
    bad = rejects.group_by("_source_file").len("rejects")
    out = (
        files.join(counts, on="_source_file", how="left")
        .with_columns(
            (pl.col("records").fill_null(0) + pl.col("_source_file").is_in(damaged["_source_file"].implode()))
            .alias("records")
        )
        .join(span, on="_source_file", how="left")
        .join(bad, on="_source_file", how="left")
        .with_columns(
            pl.lit(table.name).alias("table_name"),
            pl.lit(len(table.columns) + 3 + len(table.trailing_columns)).alias("fields_expected"),
            pl.col("records", "changes", "rejects").fill_null(0),
        )
    )
    return out.select(list(FILE_SUMMARY_SCHEMA)).cast(FILE_SUMMARY_SCHEMA)


