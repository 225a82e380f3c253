"""Bronze: every landed change, exactly as landed, by commit date (CONTRACT section 3).

One step reads the landing files of the selected tables and writes, for the partitions of the
run, each table's changes, the unreadable records (`bronze.cdc_rejects`) and the landing
manifest (`bronze.landing_manifest`: every file, and where its records went). Tables and
checks are generated from the declarations in `sources.py` (`build_bronze(SOURCE_TABLES)`).
"""


import time
from datetime import date, datetime, timezone

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetOut,
    AssetsDefinition,
    BackfillPolicy,
    MetadataValue,
    Output,
    multi_asset,
)

from lakehouse_assets.assets.catalog import KINDS, OWNERS, column_schema, describe_column
from lakehouse_assets.checks.schemas import bronze_schema, manifest_schema, rejects_schema
from lakehouse_assets.checks.validation import run_schema, schema_check_spec
from lakehouse_assets.environment import partitions_start
from lakehouse_assets.landing.manifest import MANIFEST_SCHEMA, manifest_by_day
from lakehouse_assets.landing.reader import REJECT_SCHEMA, TableRead, change_schema, read_table
from lakehouse_assets.partitions import daily_partitions, rows_in_run, run_dates
from lakehouse_assets.resources.landing import LandingZone
from lakehouse_assets.sources import SOURCE_TABLES, SourceTable

REJECTS_KEY = AssetKey(["bronze", "cdc_rejects"])
MANIFEST_KEY = AssetKey(["bronze", "landing_manifest"])


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


MANIFEST_OUT = AssetOut(
    key=MANIFEST_KEY,
    description=(
        "Every landing file seen: path, size, sha256, record count, first and last commit ts, "
        "when it was ingested and by which run; one row per (file, day) with the records it "
        "filed under that day as bronze rows and as rejects."
    ),
    group_name="bronze",
    owners=OWNERS,
    kinds=KINDS,
    is_required=False,
    metadata={
        "partition_expr": "_partition_date",
        "dagster/column_schema": column_schema(MANIFEST_SCHEMA),
    },
)

DRIFT_CHECK = "no_schema_drift"


def _check_specs(tables: tuple[SourceTable, ...]) -> list[AssetCheckSpec]:
    specs = []
    for key in [*(bronze_key(t) for t in tables), REJECTS_KEY, MANIFEST_KEY]:
        specs.append(schema_check_spec(key, False, "Pandera model of the bronze layout"))
    for table in tables:
        specs.append(
            AssetCheckSpec(
                name="records_reconcile",
                asset=bronze_key(table),
                description="Records in the landing files = bronze rows + rejects, per file",
            )
        )
        specs.append(
            AssetCheckSpec(
                name=DRIFT_CHECK,
                asset=bronze_key(table),
                description="No landing file has more fields per record than the declaration",
            )
        )
    return specs


def build_bronze(tables: tuple[SourceTable, ...]) -> AssetsDefinition:
    """The bronze step for these declarations."""

    @multi_asset(
        name="bronze_landing",
        outs={
            **{t.name: _table_out(t) for t in tables},
            "cdc_rejects": REJECTS_OUT,
            "landing_manifest": MANIFEST_OUT,
        },
        check_specs=_check_specs(tables),
        partitions_def=daily_partitions,
        backfill_policy=BackfillPolicy.single_run(),
        can_subset=True,
    )
    def bronze_landing(context: AssetExecutionContext, landing: LandingZone):
        first, last = run_dates(context)
        partitions = f"{first}...{last}"
        store = landing.store()
        selected = context.selected_asset_keys
        # The rejects and the manifest hold every table: a day of them is written whole.
        want_all = bool({REJECTS_KEY, MANIFEST_KEY} & selected)
        ingested_at = datetime.now(timezone.utc)
        rejects, manifests = [], []
        for table in tables:
            if bronze_key(table) not in selected and not want_all:
                continue
            started = time.monotonic()
            read = _too_early_to_rejects(read_table(store, table, ingested_at), partitions_start())
            _log_read(context, table, read, time.monotonic() - started)
            rejects.append(read.rejects)
            manifests.append(manifest_by_day(read, ingested_at, context.run_id, partitions_start()))
            if bronze_key(table) in selected:
                yield from _table_results(table, read, first, last)
            del read  # before the next table is read: one table's changes in memory at a time
        if REJECTS_KEY in selected:
            all_rejects = pl.concat(rejects) if rejects else pl.DataFrame(schema=REJECT_SCHEMA)
            in_range = rows_in_run(all_rejects, pl.col("_partition_date"), first, last)
            yield Output(in_range, output_name="cdc_rejects")
            yield run_schema(rejects_schema(), in_range, REJECTS_KEY, partitions)
        if MANIFEST_KEY in selected:
            manifest = pl.concat(manifests) if manifests else pl.DataFrame(schema=MANIFEST_SCHEMA)
            in_range = rows_in_run(manifest, pl.col("_partition_date"), first, last)
            yield Output(in_range, output_name="landing_manifest", metadata={"files": in_range["_source_file"].n_unique()})
            yield run_schema(manifest_schema(), in_range, MANIFEST_KEY, partitions)

    return bronze_landing


def _table_results(table: SourceTable, read: TableRead, first: date, last: date):
    """The table's output and checks for the run's days."""
    changes = rows_in_run(read.changes, pl.col("_commit_ts").dt.date(), first, last)
    key = bronze_key(table)
    yield Output(
        changes,
        output_name=table.name,
        metadata={"files": len(read.manifest), "rejects_in_range": _count_in(read.rejects, first, last)},
    )
    yield run_schema(bronze_schema(table), changes, key, f"{first}...{last}")
    yield _reconcile(read, key)
    yield _no_drift(read, key)


def _log_read(context, table: SourceTable, read: TableRead, seconds: float) -> None:
    context.log.info(
        f"{table.name}: {len(read.manifest)} files, {read.manifest['records'].sum()} records "
        f"-> {len(read.changes)} changes, {len(read.rejects)} rejects ({seconds:.1f}s)"
    )
    for note in read.ignored:
        context.log.warning(f"ignored in the landing zone: {note}")
    for row in read.manifest.filter(pl.col("rejects") > 0).iter_rows(named=True):
        context.log.warning(f"{row['_source_file']}: {row['rejects']} of {row['records']} records rejected")
    for row in _drifted(read).iter_rows(named=True):
        context.log.error(
            f"schema drift in {table.name}: {row['_source_file']} has {row['fields_found']} fields per "
            f"record, the declaration {row['fields_expected']} ({row['fields_expected'] - 3} columns -> "
            f"{row['fields_found'] - 3}); its {row['rejects']} records are in bronze.cdc_rejects until "
            "the declaration in sources.py gains the new column(s)"
        )


def _drifted(read: TableRead) -> pl.DataFrame:
    return read.manifest.filter(pl.col("fields_found") > pl.col("fields_expected"), pl.col("rejects") > 0)


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
                read.rejects.select("_source_file"),
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


def _no_drift(read: TableRead, key: AssetKey) -> AssetCheckResult:
    """Fails (ERROR, without blocking the other tables) when a file has drifted."""
    drifted = _drifted(read)
    return AssetCheckResult(
        asset_key=key,
        check_name=DRIFT_CHECK,
        passed=drifted.is_empty(),
        severity=AssetCheckSeverity.ERROR,
        description=(
            None
            if drifted.is_empty()
            else f"{drifted['_source_file'][0]}: {drifted['fields_found'][0]} fields per record, "
            f"declared {drifted['fields_expected'][0]}"
        ),
        metadata={
            "files": MetadataValue.json(
                drifted.select("_source_file", "fields_expected", "fields_found", "rejects").to_dicts()
            ),
        },
    )


bronze_landing = build_bronze(SOURCE_TABLES)
