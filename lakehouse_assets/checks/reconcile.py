"""Reconciliation against what the warehouse holds (CONTRACT section 3: nothing lost, nothing
doubled): for every landing file a run wrote, and every day of it, the records the manifest
says it filed under that day are exactly the bronze rows and rejects stored for it.

A separate, blocking check after the bronze step: it counts in the warehouse (only the files
the run wrote, so its cost follows the run), so a write that lost or doubled rows fails it and
stops silver, which depends on the manifest. It names the files that differ.
"""


from dagster import AssetCheckExecutionContext, AssetCheckResult, MetadataValue, asset_check

from lakehouse_assets.assets.bronze import MANIFEST_KEY
from lakehouse_assets.schemas.tables import MANIFEST, REJECTS, bronze_spec
from lakehouse_assets.sources import SOURCE_TABLES, SourceTable
from lakehouse_assets.storage.tables import Scope, Session
from lakehouse_assets.storage.warehouse import Warehouse
from lakehouse_assets.values import quote_literal

CHECK_NAME = "files_reconcile"
SHOWN = 10


def differences(session: Session, tables: tuple[SourceTable, ...], run_id: str):
    """(files checked, rows of (table, file, day) whose counts differ)."""
    con = session.con
    manifest = session.scan(MANIFEST)
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _mine AS
        SELECT table_name, _source_file, _partition_date, changes, rejects FROM {manifest}
        WHERE _run_id = {quote_literal(run_id)}""")
    files = frozenset(r[0] for r in con.execute("SELECT DISTINCT _source_file FROM _mine").fetchall())
    stored = []
    for t in tables:
        rows = session.scan(bronze_spec(t), Scope(files=files), ["_source_file", "_commit_ts"])
        stored.append(f"SELECT {quote_literal(t.name)} AS table_name, _source_file, CAST(_commit_ts AS DATE) AS d, "
                      f"count(*) AS n, 0 AS r FROM {rows} GROUP BY ALL")
    rejects = session.scan(REJECTS, Scope(files=files), ["table_name", "_source_file", "_partition_date"])
    stored.append(f"SELECT table_name, _source_file, _partition_date, 0, count(*) FROM {rejects} GROUP BY ALL")
    diff = con.sql(f"""
        WITH s AS (SELECT table_name, _source_file, d AS _partition_date,
                          -- BIGINT: a sum is HUGEINT, a Decimal in Python, which JSON metadata refuses
                          CAST(sum(n) AS BIGINT) AS stored_changes, CAST(sum(r) AS BIGINT) AS stored_rejects
                   FROM ({' UNION ALL '.join(stored)}) GROUP BY ALL)
        SELECT table_name, _source_file, CAST(_partition_date AS VARCHAR) AS day,
               coalesce(m.changes, 0) AS changes, coalesce(m.rejects, 0) AS rejects,
               coalesce(s.stored_changes, 0) AS stored_changes, coalesce(s.stored_rejects, 0) AS stored_rejects
        FROM _mine m FULL JOIN s USING (table_name, _source_file, _partition_date)
        WHERE coalesce(m.changes, 0) <> coalesce(s.stored_changes, 0)
           OR coalesce(m.rejects, 0) <> coalesce(s.stored_rejects, 0)
        ORDER BY ALL""").pl()
    return len(files), diff


def build_files_reconcile(tables: tuple[SourceTable, ...]):
    @asset_check(
        asset=MANIFEST_KEY,
        name=CHECK_NAME,
        blocking=True,
        description="Per landing file the run wrote, and day: the manifest's records = bronze rows + rejects "
                    "stored in the warehouse; names the files that differ",
    )
    def files_reconcile(context: AssetCheckExecutionContext, warehouse: Warehouse) -> AssetCheckResult:
        checked, diff = differences(warehouse.session(), tables, context.run.run_id)
        files = diff["_source_file"].unique(maintain_order=True).to_list()
        if files:
            context.log.error(
                f"{len(files)} landing files do not reconcile with the warehouse, e.g. "
                + "; ".join(f"{r['_source_file']} on {r['day']}: {r['changes']} changes and {r['rejects']} rejects "
                            f"in the manifest, {r['stored_changes']} and {r['stored_rejects']} stored"
                            for r in diff.head(3).iter_rows(named=True)))
        return AssetCheckResult(
            passed=not files,
            description=None if not files else f"{len(files)} files differ, first {files[0]}",
            metadata={"files_checked": checked, "files_that_differ": len(files),
                      "differences": MetadataValue.json(diff.head(SHOWN).to_dicts())},
        )

    return files_reconcile


files_reconcile = build_files_reconcile(SOURCE_TABLES)
