"""WARN checks of CONTRACT section 4: references that point nowhere, duplicate emails.

Generated from the declarations' `foreign_keys` and `unique_within`. They read whole silver
tables (a reference may point into any partition) and never block anything.
"""


import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetChecksDefinition,
    AssetIn,
    MetadataValue,
    asset_check,
)

from lakehouse_assets.assets.catalog import silver_schema, with_schema
from lakehouse_assets.assets.silver import silver_key
from lakehouse_assets.sources import SOURCE_TABLES, TABLES_BY_NAME, ForeignKey, SourceTable

SAMPLE = 10


def _fk_check(table: SourceTable, fk: ForeignKey) -> AssetChecksDefinition:
    target = TABLES_BY_NAME[fk.table]

    @asset_check(
        asset=silver_key(table),
        name=f"{fk.column}_points_to_{target.entity}",
        additional_ins={"referenced": AssetIn(key=silver_key(target))},
        description=f"WARN: every non-NULL {fk.column} is an id of silver.{target.entity}",
        blocking=False,
    )
    def _check(asset_value: pl.DataFrame, referenced: pl.DataFrame) -> AssetCheckResult:
        rows = with_schema(asset_value, silver_schema(table))
        ids = with_schema(referenced, silver_schema(target))[fk.column_in_table]
        orphans = rows.filter(pl.col(fk.column).is_not_null() & ~pl.col(fk.column).is_in(ids.implode()))
        return AssetCheckResult(
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

    return _check


def _unique_check(table: SourceTable, columns: tuple[str, ...]) -> AssetChecksDefinition:
    *scope, column = columns

    @asset_check(
        asset=silver_key(table),
        name=f"{column}_unique_per_{'_'.join(scope) or 'table'}",
        description=f"WARN: no two rows share a {column} within one {', '.join(scope)}",
        blocking=False,
    )
    def _check(asset_value: pl.DataFrame) -> AssetCheckResult:
        rows = with_schema(asset_value, silver_schema(table)).filter(pl.col(column).is_not_null())
        dupes = rows.group_by(list(columns)).agg(pl.len().alias("rows")).filter(pl.col("rows") > 1)
        return AssetCheckResult(
            passed=dupes.is_empty(),
            severity=AssetCheckSeverity.WARN,
            metadata={
                "duplicated_values": len(dupes),
                "sample": MetadataValue.json(dupes.head(SAMPLE).to_dicts()),
            },
        )

    return _check


warning_checks = [
    *(_fk_check(t, fk) for t in SOURCE_TABLES for fk in t.foreign_keys),
    *(_unique_check(t, cols) for t in SOURCE_TABLES for cols in t.unique_within),
]
