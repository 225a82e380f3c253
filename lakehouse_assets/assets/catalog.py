"""What every asset tells the catalog: owners, kinds, column schema from its declaration."""

from __future__ import annotations

import polars as pl
from dagster import TableColumn, TableColumnConstraints, TableSchema

from lakehouse_assets.sources import PgType, SourceTable

OWNERS = ["team:data-platform"]
KINDS = {"duckdb", "polars"}

POLARS_TYPES: dict[PgType, pl.DataType] = {
    PgType.BIGINT: pl.Int64,
    PgType.INTEGER: pl.Int32,
    PgType.NUMERIC: pl.Decimal(12, 2),
    PgType.TEXT: pl.String,
    PgType.BOOLEAN: pl.Boolean,
    PgType.JSONB: pl.String,
    PgType.TIMESTAMPTZ: pl.Datetime("us", "UTC"),
    PgType.DATE: pl.Date,
    PgType.DOUBLE: pl.Float64,
}


def column_schema(schema: dict[str, pl.DataType], descriptions: dict[str, str] | None = None,
                  required: tuple[str, ...] | list[str] = ()) -> TableSchema:
    descriptions = descriptions or {}
    return TableSchema(
        columns=[
            TableColumn(
                name=name,
                type=str(dtype),
                description=descriptions.get(name),
                constraints=TableColumnConstraints(nullable=name not in required),
            )
            for name, dtype in schema.items()
        ]
    )


def silver_schema(table: SourceTable) -> dict[str, pl.DataType]:
    schema = {c.name: POLARS_TYPES[c.type] for c in table.columns}
    schema.update({"_commit_ts": pl.Datetime("us", "UTC"), "_source_file": pl.String})
    return schema


def quarantine_schema(table: SourceTable) -> dict[str, pl.DataType]:
    schema: dict[str, pl.DataType] = {c: pl.String for c in [*table.column_names, *table.trailing_columns]}
    schema.update(
        {
            "_op": pl.String,
            "_commit_ts": pl.Datetime("us", "UTC"),
            "_seq": pl.String,
            "_source_file": pl.String,
            "_source_row": pl.Int64,
            "_dq_reason": pl.String,
            "_partition_date": pl.Date,
        }
    )
    return schema


def describe_column(table: SourceTable, name: str) -> str:
    col = table.column(name)
    parts = [f"{col.type.value} in the source"]
    if col.allowed:
        parts.append("one of " + ", ".join(col.allowed))
    if col.non_negative:
        parts.append("never negative")
    if col.positive:
        parts.append("always positive")
    if name in table.primary_key:
        parts.append("primary key")
    if name == table.partition_column:
        parts.append("business date: decides the partition")
    return "; ".join(parts)


def with_schema(
    frame: pl.DataFrame, schema: dict[str, pl.DataType], columns: tuple[str, ...] | None = None
) -> pl.DataFrame:
    """An upstream table that does not exist yet loads as a frame with no columns: give it
    the schema (of the `columns` read, if only some are)."""
    if frame.width == 0:
        return pl.DataFrame(schema={c: schema[c] for c in columns} if columns else schema)
    return frame
