"""Silver: the current, typed, validated state of every source table (CONTRACT section 4).

One step per table, generated from its declaration. It merges the bronze changes ingested
since its last run into the key state (cdc/state.py: a change of any commit date may win for
a key of any business date), then writes the run's days (cdc/write_plan.py): the keys that
changed, for the landing sensor's runs; the days whole, for any other run. Before writing, it
notes which gold cells the rows it replaces count on (gold/lineage.py), so gold recomputes
exactly those. Checks run before the write; a failed blocking check writes nothing.
"""


from datetime import date, datetime, timezone

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    AssetKey,
    AssetOut,
    AssetsDefinition,
    BackfillPolicy,
    Failure,
    Output,
    multi_asset,
)

from lakehouse_assets.assets.bronze import MANIFEST_KEY, bronze_key
from lakehouse_assets.assets.catalog import OWNERS, column_schema, source_descriptions
from lakehouse_assets.cdc.state import merge_changes
from lakehouse_assets.cdc.write_plan import CHANGES, days_values, plan_write, record_written
from lakehouse_assets.checks.validation import schema_check_spec, validate_relation
from lakehouse_assets.gold import GOLD_BY_NAME
from lakehouse_assets.gold.lineage import read_columns, record_stale
from lakehouse_assets.marks import SILVER, fingerprint, read_marks, write_mark
from lakehouse_assets.partitions import daily_partitions
from lakehouse_assets.runs import run_days, run_mode
from lakehouse_assets.schemas.models import quarantine_model, silver_model
from lakehouse_assets.schemas.tables import key_state_spec, quarantine_spec, silver_spec
from lakehouse_assets.settings import settings
from lakehouse_assets.sources import SOURCE_TABLES, SourceTable
from lakehouse_assets.storage.io_manager import Replacement
from lakehouse_assets.storage.tables import Scope, Session, describe_days
from lakehouse_assets.storage.warehouse import Warehouse
from lakehouse_assets.values import quote_ident

KEYS_CHECK = "keys_reconcile"


def silver_key(table: SourceTable) -> AssetKey:
    return AssetKey(["silver", table.entity])


def quarantine_key(table: SourceTable) -> AssetKey:
    return AssetKey(["silver", f"{table.entity}_quarantine"])


def build_silver(table: SourceTable) -> AssetsDefinition:
    descriptions = {**source_descriptions(table), "_commit_ts": "commit time of the winning change",
                    "_source_file": "its landing file"}
    current, quarantine = silver_spec(table), quarantine_spec(table)

    @multi_asset(
        name=f"silver_{table.entity}",
        # What a day reads is data-dependent (a change of any commit date may win for a key of
        # any day): the step reads the key state, not bronze's same days. The same-day
        # dependencies only order the steps and never widen a backfill.
        deps=[AssetDep(bronze_key(table)), AssetDep(MANIFEST_KEY)],
        outs={
            "current": AssetOut(
                key=silver_key(table), description=current.description, group_name="silver", owners=OWNERS,
                kinds=settings().kinds,
                metadata={"partition_expr": table.partition_column,
                          "dagster/column_schema": column_schema(current, descriptions, table.required_columns)},
            ),
            "quarantine": AssetOut(
                key=quarantine_key(table), description=quarantine.description, group_name="silver", owners=OWNERS,
                kinds=settings().kinds,
                metadata={"partition_expr": "_partition_date", "dagster/column_schema": column_schema(quarantine)},
            ),
        },
        check_specs=[
            schema_check_spec(silver_key(table), True, "Pandera model: types, rules, one row a key"),
            schema_check_spec(quarantine_key(table), True, "Pandera model of quarantine rows"),
            AssetCheckSpec(name=KEYS_CHECK, asset=silver_key(table), blocking=True,
                           description="Silver + quarantine hold, on the run's days, exactly the keys the key "
                                       "state places there"),
        ],
        partitions_def=daily_partitions,
        backfill_policy=BackfillPolicy.single_run(),
    )
    def _silver(context: AssetExecutionContext, warehouse: Warehouse):
        session = warehouse.session()
        days, mode, first = run_days(context), run_mode(context), daily_partitions.start.date()
        partitions = describe_days(days)
        declared = fingerprint(table, first)
        mark = read_marks(session).get((table.name, SILVER))
        rebuild = mark is not None and mark.fingerprint != declared
        since = None if mark is None or rebuild else mark.merged_through
        if rebuild:
            context.log.info(f"{table.name}: its declaration changed; every key is merged again")
        merge = merge_changes(session, table, since, rebuild, first)
        write_mark(session, table.name, SILVER, declared, merge.merged_through or since)
        write = plan_write(session, table, days, mode, first)
        checks = [
            validate_relation(session, silver_model(table), write.valid, silver_key(table), partitions,
                              table.primary_key),
            validate_relation(session, quarantine_model(table), write.quarantine, quarantine_key(table), partitions),
        ]
        failed = [f"{r.asset_key.to_user_string()} {r.check_name}" for r in checks if not r.passed]
        if failed:
            yield from checks
            raise Failure(f"blocking checks failed ({', '.join(failed)}): nothing written; the keys stay pending")
        read_cols = ", ".join(quote_ident(c) for c in read_columns(table.entity))
        session.con.execute(f"CREATE OR REPLACE TEMP TABLE _old AS SELECT {read_cols} FROM "
                            f"{session.scan(current, write.valid_scope)}")
        changed = {"changes_merged": merge.changes, "keys_inserted": merge.inserted, "keys_updated": merge.updated,
                   "keys_deleted": merge.deleted, "keys_quarantined": merge.quarantined, "keys_written": write.keys}
        context.log.info(f"{table.name}: " + ", ".join(f"{k} {v}" for k, v in changed.items()) + f" ({mode}, {partitions})")
        # The gold cells the write makes stale are noted before it: once silver holds the new
        # rows, a rerun finds nothing changed, and cells not noted by then stay stale for good.
        stale = record_stale(
            session, table.entity, "_old", f"(SELECT {read_cols} FROM {write.valid})",
            reason=f"silver.{table.entity} changed ({context.run_id[:8]})", at=datetime.now(timezone.utc),
            covered=_covered(context, days, mode),
        )
        yield Output(Replacement(write.valid, write.valid_scope, metadata=changed, spec=current), output_name="current")
        yield Output(Replacement(write.quarantine, write.quarantine_scope, spec=quarantine), output_name="quarantine")
        record_written(session, table, days)
        context.log.info(f"{table.name}: {stale} gold cells made stale outside what this run computes")
        yield from checks
        yield _keys_reconcile(session, table, days)

    return _silver


def _covered(context: AssetExecutionContext, days: frozenset[date], mode: str) -> dict[str, tuple[date, date]]:
    """Gold tables this run computes whole over its days (a run that is not the sensor's):
    their cells on those days need no note."""
    if mode == CHANGES:
        return {}
    selected = context.run.asset_selection or set()
    return {name: (min(days), max(days)) for name in GOLD_BY_NAME if AssetKey(["gold", name]) in selected}


def _keys_reconcile(session: Session, table: SourceTable, days: frozenset[date]) -> AssetCheckResult:
    con = session.con
    scope = Scope(days=days)
    silver = con.execute(f"SELECT count(*) FROM {session.scan(silver_spec(table), scope, [table.primary_key[0]])}").fetchall()[0][0]
    held = con.execute(f"SELECT count(*) FROM {session.scan(quarantine_spec(table), scope, ['_key'])}").fetchall()[0][0]
    state = session.scan(key_state_spec(table), columns=["_written_day", "_pending", "_day"])
    placed, pending = con.execute(f"""SELECT
        count(*) FILTER (WHERE _written_day IN (SELECT d FROM {days_values(days)})),
        count(*) FILTER (WHERE _pending) FROM {state}""").fetchall()[0]
    return AssetCheckResult(
        asset_key=silver_key(table), check_name=KEYS_CHECK, passed=silver + held == placed,
        metadata={"silver_rows": silver, "quarantine_rows": held, "keys_placed_on_these_days": placed,
                  "keys_pending_elsewhere": pending},
    )


silver_assets = [build_silver(t) for t in SOURCE_TABLES]
