"""WARN checks of CONTRACT section 4: references that point nowhere, duplicate emails.

Generated from the declarations' `foreign_keys` and `unique_within`. They look at the rows of
the run's days (the whole table outside a partitioned run) against the whole referenced
table, in SQL in the warehouse, and never block anything. All warnings of a table are one step.
"""


from datetime import date, timedelta

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetChecksDefinition,
    AssetCheckSpec,
    MetadataValue,
    multi_asset_check,
)

from lakehouse_assets.assets.silver import silver_key
from lakehouse_assets.schemas.tables import silver_spec
from lakehouse_assets.sources import SOURCE_TABLES, TABLES_BY_NAME, ForeignKey, SourceTable
from lakehouse_assets.storage.tables import Scope
from lakehouse_assets.storage.warehouse import Warehouse
from lakehouse_assets.values import quote_ident

SAMPLE = 10


def fk_check_name(fk: ForeignKey) -> str:
    return f"{fk.column}_points_to_{TABLES_BY_NAME[fk.table].entity}"


def unique_check_name(columns: tuple[str, ...]) -> str:
    *scope, column = columns
    return f"{column}_unique_per_{'_'.join(scope) or 'table'}"


def run_scope(context: AssetCheckExecutionContext) -> Scope:
    if not context.has_partition_key_range:
        return Scope()
    r = context.partition_key_range
    first, last = date.fromisoformat(r.start), date.fromisoformat(r.end)
    return Scope(days=frozenset(first + timedelta(days=i) for i in range((last - first).days + 1)))


def warnings_for(table: SourceTable) -> AssetChecksDefinition:
    specs = [
        AssetCheckSpec(
            name=fk_check_name(fk), asset=silver_key(table),
            description=f"WARN: every non-NULL {fk.column} is an id of silver.{TABLES_BY_NAME[fk.table].entity}",
            additional_deps=[silver_key(TABLES_BY_NAME[fk.table])] if fk.table != table.name else [],
        )
        for fk in table.foreign_keys
    ] + [
        AssetCheckSpec(name=unique_check_name(cols), asset=silver_key(table),
                       description=f"WARN: no two rows share a {cols[-1]} within one {', '.join(cols[:-1])}")
        for cols in table.unique_within
    ]

    @multi_asset_check(name=f"{table.entity}_warnings", specs=specs)
    def _check(context: AssetCheckExecutionContext, warehouse: Warehouse):
        session = warehouse.session()
        con = session.con
        spec = silver_spec(table)
        rows = session.scan(spec, run_scope(context))
        key = ", ".join(quote_ident(k) for k in table.primary_key)
        for fk in table.foreign_keys:
            target = TABLES_BY_NAME[fk.table]
            ids = session.scan(silver_spec(target), columns=[fk.column_in_table])
            col = quote_ident(fk.column)
            orphans = con.sql(f"""SELECT {key}, {col} FROM {rows} WHERE {col} IS NOT NULL
                AND {col} NOT IN (SELECT {quote_ident(fk.column_in_table)} FROM {ids})""").pl()
            checked = con.execute(f"SELECT count(*) FROM {rows}").fetchall()[0][0]
            yield AssetCheckResult(
                asset_key=silver_key(table), check_name=fk_check_name(fk), passed=orphans.is_empty(),
                severity=AssetCheckSeverity.WARN,
                metadata={"orphans": len(orphans), "rows_checked": checked,
                          "sample": MetadataValue.json(orphans.head(SAMPLE).to_dicts())},
            )
        for cols in table.unique_within:
            names = ", ".join(quote_ident(c) for c in cols)
            every = session.scan(spec, columns=list(cols))
            dupes = con.sql(f"""SELECT {names}, count(*) AS rows FROM {every}
                WHERE {quote_ident(cols[-1])} IS NOT NULL AND ({names}) IN (SELECT {names} FROM {rows})
                GROUP BY ALL HAVING count(*) > 1 ORDER BY ALL""").pl()
            yield AssetCheckResult(
                asset_key=silver_key(table), check_name=unique_check_name(cols), passed=dupes.is_empty(),
                severity=AssetCheckSeverity.WARN,
                metadata={"duplicated_values": len(dupes), "sample": MetadataValue.json(dupes.head(SAMPLE).to_dicts())},
            )

    return _check


warning_checks = [warnings_for(t) for t in SOURCE_TABLES if t.foreign_keys or t.unique_within]
