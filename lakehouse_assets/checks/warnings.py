"""WARN checks of CONTRACT section 4: references that point nowhere, duplicate emails.

Generated from the declarations' `foreign_keys` and `unique_within`. They read whole silver
tables (a reference may point into any partition) and never block anything. All warnings of
one table are one step, so each table is loaded once.
"""


import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetChecksDefinition,
    AssetCheckSpec,
    AssetIn,
    MetadataValue,
    multi_asset_check,
)

from lakehouse_assets.assets.catalog import silver_schema, with_schema
from lakehouse_assets.assets.silver import silver_key
from lakehouse_assets.sources import SOURCE_TABLES, TABLES_BY_NAME, ForeignKey, SourceTable

SAMPLE = 10


def fk_check_name(fk: ForeignKey) -> str:
    return f"{fk.column}_points_to_{TABLES_BY_NAME[fk.table].entity}"


def unique_check_name(columns: tuple[str, ...]) -> str:
    *scope, column = columns
    return f"{column}_unique_per_{'_'.join(scope) or 'table'}"


def _orphans(table: SourceTable, fk: ForeignKey, rows: pl.DataFrame, ids: pl.Series) -> AssetCheckResult:
    orphans = rows.filter(pl.col(fk.column).is_not_null() & ~pl.col(fk.column).is_in(ids.implode()))
    return AssetCheckResult(
        asset_key=silver_key(table),
        check_name=fk_check_name(fk),
        passed=orphans.is_empty(),
        severity=AssetCheckSeverity.WARN,
        metadata={
            "orphans": len(orphans),
            "rows_checked": len(rows),
            "sample": MetadataValue.json(
                orphans.select(*table.primary_key, fk.column).head(SAMPLE).to_dicts()
            ),
        },
    )


def _duplicates(table: SourceTable, columns: tuple[str, ...], rows: pl.DataFrame) -> AssetCheckResult:
    column = columns[-1]
    dupes = (
        rows.filter(pl.col(column).is_not_null())
        .group_by(list(columns))
        .agg(pl.len().alias("rows"))
        .filter(pl.col("rows") > 1)
    )
    return AssetCheckResult(
        asset_key=silver_key(table),
        check_name=unique_check_name(columns),
        passed=dupes.is_empty(),
        severity=AssetCheckSeverity.WARN,
        metadata={
            "duplicated_values": len(dupes),
            "sample": MetadataValue.json(dupes.head(SAMPLE).to_dicts()),
        },
    )


def warnings_for(table: SourceTable) -> AssetChecksDefinition:
    specs = [
        AssetCheckSpec(
            name=fk_check_name(fk),
            asset=silver_key(table),
            description=f"WARN: every non-NULL {fk.column} is an id of silver.{TABLES_BY_NAME[fk.table].entity}",
            additional_deps=[silver_key(TABLES_BY_NAME[fk.table])] if fk.table != table.name else [],
        )
        for fk in table.foreign_keys
    ] + [
        AssetCheckSpec(
            name=unique_check_name(cols),
            asset=silver_key(table),
            description=f"WARN: no two rows share a {cols[-1]} within one {', '.join(cols[:-1])}",
        )
        for cols in table.unique_within
    ]
    targets = {fk.table: TABLES_BY_NAME[fk.table] for fk in table.foreign_keys if fk.table != table.name}
    # (A multi-asset check's inputs cannot name columns: they are its dependencies.)
    ins = {"rows": AssetIn(key=silver_key(table))}
    ins.update({f"ref_{t.entity}": AssetIn(key=silver_key(t)) for t in targets.values()})

    @multi_asset_check(name=f"{table.entity}_warnings", specs=specs, ins=ins)
    def _check(**frames: pl.DataFrame):
        rows = with_schema(frames["rows"], silver_schema(table))
        for fk in table.foreign_keys:
            target = TABLES_BY_NAME[fk.table]
            referenced = rows if fk.table == table.name else frames[f"ref_{target.entity}"]
            ids = with_schema(referenced, silver_schema(target), (fk.column_in_table,))[fk.column_in_table]
            yield _orphans(table, fk, rows, ids)
        for cols in table.unique_within:
            yield _duplicates(table, cols, rows)

    return _check


warning_checks = [warnings_for(t) for t in SOURCE_TABLES if t.foreign_keys or t.unique_within]
