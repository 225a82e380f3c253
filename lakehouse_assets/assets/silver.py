"""Silver: the current, typed, validated state of every source table (CONTRACT section 4).

One step per table, generated from its declaration: it merges every bronze change of the
table (all commit dates: a key's history spans them), and writes the winners whose business
date falls in the run's partitions to `silver.<entity>`, or to `silver.<entity>_quarantine`
with the reasons. Checks run before the write; a failed blocking check keeps the old rows.
"""


import polars as pl
from dagster import (
    AllPartitionMapping,
    AssetCheckResult,
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetOut,
    AssetsDefinition,
    BackfillPolicy,
    Failure,
    Output,
    multi_asset,
)

from lakehouse_assets.assets.bronze import MANIFEST_KEY, bronze_key
from lakehouse_assets.assets.catalog import (
    KINDS,
    OWNERS,
    column_schema,
    describe_column,
    quarantine_schema,
    silver_schema,
    with_schema,
)
from lakehouse_assets.cdc.merge import merge_to_silver
from lakehouse_assets.checks.schemas import quarantine_model
from lakehouse_assets.checks.schemas import silver_schema as silver_model
from lakehouse_assets.checks.validation import run_schema, schema_check_spec
from lakehouse_assets.environment import partitions_start
from lakehouse_assets.landing.reader import change_schema
from lakehouse_assets.partitions import daily_partitions, rows_in_run, run_dates
from lakehouse_assets.sources import SOURCE_TABLES, SourceTable


def silver_key(table: SourceTable) -> AssetKey:
    return AssetKey(["silver", table.entity])


def quarantine_key(table: SourceTable) -> AssetKey:
    return AssetKey(["silver", f"{table.entity}_quarantine"])


def build_silver(table: SourceTable) -> AssetsDefinition:
    descriptions = {c: describe_column(table, c) for c in table.column_names}
    descriptions.update(
        {"_commit_ts": "commit time of the winning change", "_source_file": "its landing file"}
    )

    @multi_asset(
        name=f"silver_{table.entity}",
        ins={"changes": AssetIn(key=bronze_key(table), partition_mapping=AllPartitionMapping())},
        # Silver is built from bronze that reconciles with the landing manifest: the manifest's
        # blocking check (checks/reconcile.py) stops it when a file's records went missing.
        deps=[AssetDep(MANIFEST_KEY, partition_mapping=AllPartitionMapping())],
        outs={
            "current": AssetOut(
                key=silver_key(table),
                description=(
                    f"Current state of `{table.name}`: one row per "
                    f"{', '.join(table.primary_key)}, the last change wins, deletes removed, "
                    f"typed and valid. Partitioned by {table.partition_column}."
                ),
                group_name="silver",
                owners=OWNERS,
                kinds=KINDS,
                is_required=False,
                metadata={
                    "partition_expr": table.partition_column,
                    "dagster/column_schema": column_schema(
                        silver_schema(table), descriptions, table.required_columns
                    ),
                },
            ),
            "quarantine": AssetOut(
                key=quarantine_key(table),
                description=(
                    f"Latest versions of `{table.name}` keys that fail a rule, as landed, with "
                    "every reason in `_dq_reason`."
                ),
                group_name="silver",
                owners=OWNERS,
                kinds=KINDS,
                is_required=False,
                metadata={
                    "partition_expr": "_partition_date",
                    "dagster/column_schema": column_schema(quarantine_schema(table)),
                },
            ),
        },
        check_specs=[
            schema_check_spec(silver_key(table), True, "Pandera model: types, rules, one row a key"),
            schema_check_spec(quarantine_key(table), True, "Pandera model of quarantine rows"),
            AssetCheckSpec(
                name="keys_reconcile",
                asset=silver_key(table),
                blocking=True,
                description=(
                    "Every bronze key is in silver, in quarantine or deleted: silver + quarantine "
                    "rows = keys whose last change is not a delete (counted before typing and quarantine)"
                ),
            ),
        ],
        partitions_def=daily_partitions,
        backfill_policy=BackfillPolicy.single_run(),
        can_subset=True,
    )
    def _silver(context: AssetExecutionContext, changes: pl.DataFrame):
        first, last = run_dates(context)
        partitions = f"{first}...{last}"
        changes = with_schema(changes, change_schema(table))
        result = merge_to_silver(changes, table, partitions_start())
        valid = rows_in_run(result.valid, pl.col(table.partition_column).cast(pl.Date), first, last)
        quarantine = rows_in_run(result.quarantine, pl.col("_partition_date"), first, last)
        context.log.info(
            f"{table.name}: {len(changes)} changes -> {len(result.valid)} current keys, "
            f"{len(result.quarantine)} quarantined; {len(valid)} + {len(quarantine)} in {partitions}"
        )
        outputs = {
            "current": (silver_key(table), valid, silver_model(table)),
            "quarantine": (quarantine_key(table), quarantine, quarantine_model(table)),
        }
        selected = [name for name, (key, _, _) in outputs.items() if key in context.selected_asset_keys]
        results = {name: run_schema(outputs[name][2], outputs[name][1], outputs[name][0], partitions) for name in selected}
        if silver_key(table) in context.selected_asset_keys:
            live = result.live_keys
            merged = len(result.valid) + len(result.quarantine)
            results["keys"] = AssetCheckResult(
                asset_key=silver_key(table),
                check_name="keys_reconcile",
                passed=live == merged,
                metadata={"live_keys": live, "silver_plus_quarantine": merged},
            )
        failed = [f"{r.asset_key.to_user_string()} {r.check_name}" for r in results.values() if not r.passed]
        if failed:
            yield from results.values()
            raise Failure(f"blocking checks failed ({', '.join(failed)}): partitions not written")
        yield from (results.pop(k) for k in ["keys"] if k in results)
        for name in selected:
            yield Output(
                outputs[name][1],
                output_name=name,
                metadata={"keys_total": len(result.valid) if name == "current" else len(result.quarantine)},
            )
            yield results[name]

    return _silver


silver_assets = [build_silver(t) for t in SOURCE_TABLES]
