"""Bronze: every landed change, exactly as landed, by commit date (CONTRACT section 3).

One step reads the landing files of the selected tables and writes each table's changes and
the unreadable records (`bronze.cdc_rejects`) for the partitions of the run. Tables and
checks are generated from the declarations in `sources.py`.
"""


import time
from datetime import date, datetime, timezone

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetOut,
    BackfillPolicy,
    Output,
    multi_asset,
)

from lakehouse_assets.assets.catalog import KINDS, OWNERS, column_schema, describe_column
from lakehouse_assets.checks.schemas import bronze_schema, rejects_schema
from lakehouse_assets.checks.validation import run_schema, schema_check_spec
from lakehouse_assets.environment import partitions_start
from lakehouse_assets.landing.reader import REJECT_SCHEMA, TableRead, change_schema, read_table
from lakehouse_assets.partitions import daily_partitions, rows_in_run, run_dates
from lakehouse_assets.resources.landing import LandingZone
from lakehouse_assets.sources import SOURCE_TABLES, SourceTable

REJECTS_KEY = AssetKey(["bronze", "cdc_rejects"])


def bronze_key(table: SourceTable) -> AssetKey:
    return AssetKey(["bronze", table.name])


def _table_out(table: SourceTable) -> AssetOut:
    descriptions = {c: describe_column(table, c) for c in table.column_names}
    descriptions.update(
        {
            "_op": "I, U or D",
            "_commit_ts": "DMS commit time (UTC): decides the partition",
            "_seq": "DMS $AR_H_CHANGE_SEQ, empty in full loads",
            "_source_file": "landing file, relative to the landing root",
            "_source_row": "1-based record number in that file (header not counted)",
            "_ingested_at": "when this run read the file",
        }
    )
    return AssetOut(
        key=bronze_key(table),
        description=(
            f"Every change to `{table.schema}.{table.name}` as landed by DMS: the columns as "
            "raw text plus the change metadata. Partitioned by commit date."
        ),
        group_name="bronze",
        owners=OWNERS,
        kinds=KINDS,
        is_required=False,
        metadata={
            "partition_expr": "_commit_ts",
            "dagster/column_schema": column_schema(change_schema(table), descriptions),
            "source_table": f"{table.schema}.{table.name}",
        },
    )


REJECTS_OUT = AssetOut(
    key=REJECTS_KEY,
    description=(
        "Landed records that cannot be read (wrong column count, bad Op, bad commit "
        "timestamp, undecodable bytes, broken CSV), with file, row, reason and raw text."
    ),
    group_name="bronze",
    owners=OWNERS,
    kinds=KINDS,
    is_required=False,
    metadata={
        "partition_expr": "_partition_date",
        "dagster/column_schema": column_schema(REJECT_SCHEMA),
    },
)


def _check_specs() -> list[AssetCheckSpec]:
    specs = []
    for key in [*(bronze_key(t) for t in SOURCE_TABLES), REJECTS_KEY]:
        specs.append(schema_check_spec(key, False, "Pandera model of the bronze layout"))
    for table in SOURCE_TABLES:
        specs.append(
            AssetCheckSpec(
                name="records_reconcile",
                asset=bronze_key(table),
                description="Records in the landing files = bronze rows + rejects",
            )
        )
    return specs


@multi_asset(
    name="bronze_landing",
    outs={**{t.name: _table_out(t) for t in SOURCE_TABLES}, "cdc_rejects": REJECTS_OUT},
    check_specs=_check_specs(),
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    can_subset=True,
)
def bronze_landing(context: AssetExecutionContext, landing: LandingZone):
    first, last = run_dates(context)
    partitions = f"{first}...{last}"
    store = landing.store()
    selected = context.selected_asset_keys
    want_rejects = REJECTS_KEY in selected
    ingested_at = datetime.now(timezone.utc)
    rejects = []
    for table in SOURCE_TABLES:
        if bronze_key(table) not in selected and not want_rejects:
            continue
        started = time.monotonic()
        read = _too_early_to_rejects(read_table(store, table, ingested_at), partitions_start())
        context.log.info(
            f"{table.name}: {len(read.manifest)} files, {read.manifest['records'].sum()} records "
            f"-> {len(read.changes)} changes, {len(read.rejects)} rejects "
            f"({time.monotonic() - started:.1f}s)"
        )
        for note in read.ignored:
            context.log.warning(f"ignored in the landing zone: {note}")
        for row in read.manifest.filter(pl.col("rejects") > 0).iter_rows(named=True):
            context.log.warning(
                f"{row['_source_file']}: {row['rejects']} of {row['records']} records rejected"
            )
        rejects.append(read.rejects)
        if bronze_key(table) not in selected:
            continue
        changes = rows_in_run(read.changes, pl.col("_commit_ts").dt.date(), first, last)
        key = bronze_key(table)
        yield Output(
            changes,
            output_name=table.name,
            metadata={"files": len(read.manifest), "rejects_in_range": _count_in(read.rejects, first, last)},
        )
        yield run_schema(bronze_schema(table), changes, key, partitions)
        yield _reconcile(read, key)
    if want_rejects:
        all_rejects = pl.concat(rejects) if rejects else pl.DataFrame(schema=REJECT_SCHEMA)
        in_range = rows_in_run(all_rejects, pl.col("_partition_date"), first, last)
        yield Output(in_range, output_name="cdc_rejects")
        yield run_schema(rejects_schema(), in_range, REJECTS_KEY, partitions)


def _too_early_to_rejects(read: TableRead, first_partition: date) -> TableRead:
    """A change committed before the first partition has no bronze partition: reject it,
    filed under the first partition, rather than lose it (early rejects are filed there too)."""
    rejects = read.rejects.with_columns(
        pl.max_horizontal("_partition_date", pl.lit(first_partition)).alias("_partition_date")
    )
    early = read.changes.filter(pl.col("_commit_ts").dt.date() < first_partition)
    if early.is_empty():
        return TableRead(read.changes, rejects, read.manifest, read.ignored)
    table_name = read.manifest["table_name"][0]
    moved = early.select(
        pl.lit(table_name).alias("table_name"),
        "_source_file",
        "_source_row",
        pl.format(
            "_dms_commit_ts {} is before the first partition ({}, LAKEHOUSE_PARTITIONS_START)",
            pl.col("_commit_ts").dt.strftime("%Y-%m-%d %H:%M:%S%.f"),
            pl.lit(first_partition.isoformat()),
        ).alias("reason"),
        pl.lit("").alias("raw_text"),
        "_commit_ts",
        pl.lit(first_partition).alias("_partition_date"),
    ).cast(REJECT_SCHEMA)
    return TableRead(
        changes=read.changes.filter(pl.col("_commit_ts").dt.date() >= first_partition),
        rejects=pl.concat([rejects, moved]),
        manifest=read.manifest,
        ignored=read.ignored,
    )


def _count_in(rejects: pl.DataFrame, first: date, last: date) -> int:
    return int(rejects.filter(pl.col("_partition_date").is_between(first, last)).height)


def _reconcile(read: TableRead, key: AssetKey) -> AssetCheckResult:
    """Every record of every file is either a change or a reject, per file."""
    per_file = read.manifest.select("_source_file", "records")
    got = (
        pl.concat(
            [
                read.changes.select("_source_file"),
                read.rejects.filter(~pl.col("reason").str.contains("records after row"))
                .select("_source_file"),
            ]
        )
        .group_by("_source_file")
        .len("accounted")
    )
    diff = per_file.join(got, on="_source_file", how="full", coalesce=True).fill_null(0).filter(
        pl.col("records") != pl.col("accounted")
    )
    return AssetCheckResult(
        asset_key=key,
        check_name="records_reconcile",
        passed=diff.is_empty(),
        metadata={
            "records_in_files": int(read.manifest["records"].sum()),
            "changes": len(read.changes),
            "rejects": len(read.rejects),
            "files_that_differ": diff["_source_file"].head(10).to_list(),
        },
    )
