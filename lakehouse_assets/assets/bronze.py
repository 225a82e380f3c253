"""Bronze: every landed change, exactly as landed, by commit date (CONTRACT section 3).

One step ingests the landing files of the selected tables that its ledger (the manifest)
says to read (ingest/ledger.py), appends their records to `bronze.<table>` a batch of files at
a time, their unreadable records to `bronze.cdc_rejects`, and one manifest row per file and
day to `bronze.landing_manifest`. Rows already ingested stay, whatever happens to the landing
files later; a file read again replaces exactly its own rows. Generated from the declarations
in `sources.py` (`build_bronze(SOURCE_TABLES)`).
"""


from datetime import datetime, timezone

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
    Failure,
    MetadataValue,
    Output,
    multi_asset,
)

from lakehouse_assets.assets.catalog import CHANGE_DESCRIPTIONS, OWNERS, column_schema, source_descriptions
from lakehouse_assets.checks.validation import CHECK, Validation, schema_check_spec
from lakehouse_assets.ingest.bronze_run import BronzeRun
from lakehouse_assets.ingest.manifest import MANIFEST_SCHEMA
from lakehouse_assets.partitions import daily_partitions
from lakehouse_assets.resources import LandingZone
from lakehouse_assets.runs import landed_before, run_days, run_mode
from lakehouse_assets.schemas.models import bronze_model, manifest_model, rejects_model
from lakehouse_assets.schemas.tables import MANIFEST, MANIFEST_DESCRIPTIONS, REJECTS, bronze_spec
from lakehouse_assets.settings import settings
from lakehouse_assets.sources import SOURCE_TABLES, SourceTable
from lakehouse_assets.storage.io_manager import Replacement
from lakehouse_assets.storage.tables import describe_days
from lakehouse_assets.storage.warehouse import Warehouse

REJECTS_KEY = AssetKey(["bronze", "cdc_rejects"])
MANIFEST_KEY = AssetKey(["bronze", "landing_manifest"])
DRIFT_CHECK = "no_schema_drift"
RECONCILE_CHECK = "records_reconcile"
PRESENT_CHECK = "ingested_files_still_landed"


def bronze_key(table: SourceTable) -> AssetKey:
    return AssetKey(["bronze", table.name])


def _out(key: AssetKey, spec, description: str, descriptions: dict, **metadata) -> AssetOut:
    return AssetOut(
        key=key, description=description, group_name="bronze", owners=OWNERS, kinds=settings().kinds,
        is_required=False,
        metadata={"partition_expr": spec.partition_column,
                  "dagster/column_schema": column_schema(spec, descriptions), **metadata},
    )


def _check_specs(tables: tuple[SourceTable, ...]) -> list[AssetCheckSpec]:
    specs = [schema_check_spec(k, False, "Pandera model of the bronze layout")
             for k in [*(bronze_key(t) for t in tables), REJECTS_KEY, MANIFEST_KEY]]
    specs.append(AssetCheckSpec(
        name=PRESENT_CHECK, asset=MANIFEST_KEY,
        description="WARN: ingested files the landing zone no longer has (their rows are kept): count, first "
                    "and last per table"))
    for table in tables:
        specs.append(AssetCheckSpec(name=RECONCILE_CHECK, asset=bronze_key(table),
                                    description="Records in the files read = bronze rows + rejects + purged, per file"))
        specs.append(AssetCheckSpec(name=DRIFT_CHECK, asset=bronze_key(table),
                                    description="No landing file has more fields per record than the declaration"))
    return specs


def build_bronze(tables: tuple[SourceTable, ...]) -> AssetsDefinition:
    outs = {
        t.name: _out(bronze_key(t), bronze_spec(t), bronze_spec(t).description,
                     {**source_descriptions(t), **CHANGE_DESCRIPTIONS}, source_table=f"{t.schema}.{t.name}")
        for t in tables
    }
    outs["cdc_rejects"] = _out(REJECTS_KEY, REJECTS, REJECTS.description, {})
    outs["landing_manifest"] = _out(MANIFEST_KEY, MANIFEST, MANIFEST.description, MANIFEST_DESCRIPTIONS)

    @multi_asset(
        name="bronze_landing",
        outs=outs,
        check_specs=_check_specs(tables),
        partitions_def=daily_partitions,
        backfill_policy=BackfillPolicy.single_run(),
        can_subset=True,
    )
    def bronze_landing(context: AssetExecutionContext, landing: LandingZone, warehouse: Warehouse):
        selected = [t for t in tables if bronze_key(t) in context.selected_asset_keys]
        ledger = {REJECTS_KEY, MANIFEST_KEY}
        if selected and not ledger <= context.selected_asset_keys:
            raise Failure(
                "bronze tables are written with their ledger: select bronze/cdc_rejects and "
                "bronze/landing_manifest too (a file's rows, rejects and manifest rows go together)"
            )
        days = run_days(context)
        run = BronzeRun(
            session=warehouse.session(), store=landing.store(), tables=tables, selected=selected,
            ingested_at=datetime.now(timezone.utc), run_id=context.run_id,
            first_partition=daily_partitions.start.date(),
            reread_days=days if run_mode(context) != "changes" else None,
            landed_before=landed_before(context), settle_seconds=settings().settle_seconds,
            log=context.log,
        )
        partitions = describe_days(days)
        for table in selected:
            ingest = run.start(table, Validation(bronze_model(table), bronze_key(table), partitions))
            yield Output(
                Replacement(ingest.frames(), run.scope(ingest), ledger=True, spec=bronze_spec(table)),
                output_name=table.name,
                metadata=run.metadata(ingest),
            )
            run.finish(ingest)
            yield ingest.validation.result()
            yield _reconcile(ingest, bronze_key(table))
            yield _no_drift(ingest, bronze_key(table))
        if REJECTS_KEY in context.selected_asset_keys:
            rejects, scope = run.rejects()
            yield Output(Replacement(rejects, scope, ledger=True), output_name="cdc_rejects",
                         metadata={"rejects_written": len(rejects)})
            yield _validated(rejects_model(), rejects, REJECTS_KEY, partitions)
        if MANIFEST_KEY in context.selected_asset_keys:
            manifest, scope, summary = run.manifest()
            yield Output(Replacement(manifest, scope, ledger=True), output_name="landing_manifest", metadata=summary)
            yield _validated(manifest_model(), manifest, MANIFEST_KEY, partitions)
            yield _still_landed(run)
        run.done()

    return bronze_landing


def _validated(model, frame: pl.DataFrame, key: AssetKey, partitions: str) -> AssetCheckResult:
    check = Validation(model, key, partitions)
    check.add(frame)
    return check.result()


def _reconcile(ingest, key: AssetKey) -> AssetCheckResult:
    """Every record of every file read is a change, a reject or purged, per file."""
    manifest = pl.concat(ingest.manifest) if ingest.manifest else pl.DataFrame(schema=MANIFEST_SCHEMA)
    per_file = manifest.group_by("_source_file").agg(
        pl.col("records_in_file").first(), pl.col("records").sum().alias("accounted"))
    diff = per_file.filter(pl.col("records_in_file") != pl.col("accounted"))
    return AssetCheckResult(
        asset_key=key, check_name=RECONCILE_CHECK, passed=diff.is_empty(),
        metadata={"files_read": len(per_file), "changes": ingest.changes, "purged": ingest.purged,
                  "rejects": sum(len(r) for r in ingest.rejects),
                  "files_that_differ": diff["_source_file"].head(10).to_list()},
    )


def _no_drift(ingest, key: AssetKey) -> AssetCheckResult:
    """Fails (ERROR, without blocking the other tables) when a file read has drifted."""
    drifted = drifted_files(ingest)
    first = drifted.row(0, named=True) if len(drifted) else None
    return AssetCheckResult(
        asset_key=key, check_name=DRIFT_CHECK, passed=first is None, severity=AssetCheckSeverity.ERROR,
        description=None if first is None else (
            f"{first['_source_file']}: {first['fields_found']} fields per record, declared {first['fields_expected']}"),
        metadata={"files": MetadataValue.json(
            drifted.select("_source_file", "fields_expected", "fields_found", "rejects").to_dicts())},
    )


def _still_landed(run: BronzeRun) -> AssetCheckResult:
    """Ingested files gone from the landing zone (expired, cleaned by hand): a warning, since
    bronze keeps their rows, but the zone can no longer answer for them."""
    gone = {name: plan.gone for name, plan in run.plans.items() if plan.gone}
    return AssetCheckResult(
        asset_key=MANIFEST_KEY, check_name=PRESENT_CHECK, passed=not gone, severity=AssetCheckSeverity.WARN,
        description=None if not gone else f"{sum(map(len, gone.values()))} ingested files are gone from the zone",
        metadata={"gone": MetadataValue.json({t: {"count": len(p), "first": p[0], "last": p[-1]} for t, p in gone.items()}),
                  "tables_listed": len(run.plans)},
    )


def drifted_files(ingest) -> pl.DataFrame:
    if not ingest.summaries:
        return pl.DataFrame(schema={"_source_file": pl.String, "fields_expected": pl.Int64,
                                    "fields_found": pl.Int64, "rejects": pl.Int64})
    summary = pl.concat(ingest.summaries)
    return summary.filter(pl.col("fields_found") > pl.col("fields_expected"), pl.col("rejects") > 0)


bronze_landing = build_bronze(SOURCE_TABLES)
__all__ = ["CHECK", "MANIFEST_KEY", "REJECTS_KEY", "bronze_key", "bronze_landing", "build_bronze"]
