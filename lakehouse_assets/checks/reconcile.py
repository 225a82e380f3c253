"""Reconciliation against what the warehouse holds (CONTRACT section 3: nothing lost, nothing
doubled): for every landing file and day of the run, the records the manifest says it filed
under that day are exactly the bronze rows and the rejects stored for it.

A separate, blocking check after the bronze step: it reads back (only the columns it counts)
the partitions the step wrote, through the same IO manager as every reader, so a write that
lost or doubled rows fails it and stops silver, which depends on the manifest. It names the
files that differ.
"""

from __future__ import annotations

import inspect

import polars as pl
from dagster import AssetCheckResult, AssetChecksDefinition, AssetIn, MetadataValue, asset_check

from lakehouse_assets.assets.bronze import MANIFEST_KEY, REJECTS_KEY, bronze_key
from lakehouse_assets.assets.catalog import with_schema
from lakehouse_assets.landing.manifest import MANIFEST_SCHEMA
from lakehouse_assets.landing.reader import REJECT_SCHEMA, UTC_DATETIME
from lakehouse_assets.partitions import daily_partitions
from lakehouse_assets.sources import SOURCE_TABLES, SourceTable

CHECK_NAME = "files_reconcile"
SHOWN = 10
KEYS = ["table_name", "_source_file", "_partition_date"]


def stored_counts(tables: tuple[SourceTable, ...], frames: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Bronze rows and rejects per (table, file, day), as stored."""
    parts = []
    for table in tables:
        rows = with_schema(
            frames[table.name], {"_source_file": pl.String, "_commit_ts": UTC_DATETIME}, ("_source_file", "_commit_ts")
        )
        parts.append(
            rows.group_by("_source_file", pl.col("_commit_ts").dt.date().alias("_partition_date"))
            .agg(pl.len().alias("stored_changes"))
            .with_columns(pl.lit(table.name).alias("table_name"))
        )
    changes = pl.concat(parts).select(*KEYS, "stored_changes")
    rejects = with_schema(frames["rejects"], REJECT_SCHEMA, ("table_name", "_source_file", "_partition_date"))
    rejected = rejects.group_by(KEYS).agg(pl.len().alias("stored_rejects"))
    return changes.join(rejected, on=KEYS, how="full", coalesce=True).fill_null(0)


def differences(manifest: pl.DataFrame, stored: pl.DataFrame) -> pl.DataFrame:
    manifest = with_schema(manifest, MANIFEST_SCHEMA).select(*KEYS, "changes", "rejects")
    return (
        manifest.join(stored, on=KEYS, how="full", coalesce=True)
        .with_columns(pl.col("changes", "rejects", "stored_changes", "stored_rejects").fill_null(0))
        .filter(
            (pl.col("changes") != pl.col("stored_changes")) | (pl.col("rejects") != pl.col("stored_rejects"))
        )
        .sort(KEYS)
    )


def build_files_reconcile(tables: tuple[SourceTable, ...]) -> AssetChecksDefinition:
    ins = {
        t.name: AssetIn(key=bronze_key(t), metadata={"columns": ["_source_file", "_commit_ts"]})
        for t in tables
    }
    ins["rejects"] = AssetIn(key=REJECTS_KEY, metadata={"columns": ["table_name", "_source_file", "_partition_date"]})

    def _check(context, landing_manifest: pl.DataFrame, **frames: pl.DataFrame) -> AssetCheckResult:
        diff = differences(landing_manifest, stored_counts(tables, frames))
        files = diff["_source_file"].unique(maintain_order=True).to_list()
        if files:
            context.log.error(
                f"{len(files)} landing files do not reconcile with the warehouse, e.g. "
                + "; ".join(
                    f"{r['_source_file']} on {r['_partition_date']}: {r['changes']} changes and "
                    f"{r['rejects']} rejects in the manifest, {r['stored_changes']} and "
                    f"{r['stored_rejects']} stored"
                    for r in diff.head(3).iter_rows(named=True)
                )
            )
        return AssetCheckResult(
            passed=not files,
            description=None if not files else f"{len(files)} files differ, first {files[0]}",
            metadata={
                "files_checked": with_schema(landing_manifest, MANIFEST_SCHEMA)["_source_file"].n_unique(),
                "files_that_differ": len(files),
                "differences": MetadataValue.json(
                    diff.head(SHOWN).with_columns(pl.col("_partition_date").cast(pl.String)).to_dicts()
                ),
            },
        )

    # One input per declared table: Dagster reads the inputs off the signature.
    _check.__signature__ = inspect.Signature(
        [
            inspect.Parameter("context", inspect.Parameter.POSITIONAL_OR_KEYWORD),
            inspect.Parameter("landing_manifest", inspect.Parameter.POSITIONAL_OR_KEYWORD),
            *(inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for name in ins),
        ]
    )

    return asset_check(
        asset=MANIFEST_KEY,
        name=CHECK_NAME,
        additional_ins=ins,
        partitions_def=daily_partitions,
        blocking=True,
        description=(
            "Per landing file and day: the manifest's records = bronze rows + rejects stored in "
            "the warehouse; names the files that differ"
        ),
    )(_check)


files_reconcile = build_files_reconcile(SOURCE_TABLES)
