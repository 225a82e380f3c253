"""The one type map: each column type of the lakehouse, as PostgreSQL names it, in DuckDB,
polars, Arrow and Iceberg.

Source columns carry the contract's PostgreSQL types (CONTRACT section 1); every other column
(change metadata, gold measures, bookkeeping) is declared with the same names, so every table
of every layer is typed from this map and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import polars as pl
import pyarrow as pa


class PgType(str, Enum):
    BIGINT = "bigint"
    INTEGER = "integer"
    NUMERIC = "numeric(12,2)"  # the source's money
    MONEY = "numeric(18,2)"  # gold's sums of money
    TEXT = "text"
    BOOLEAN = "boolean"
    JSONB = "jsonb"
    TIMESTAMPTZ = "timestamptz"
    DATE = "date"
    DOUBLE = "double precision"


@dataclass(frozen=True)
class ColumnType:
    duckdb: str
    polars: pl.DataType
    arrow: pa.DataType
    iceberg: str  # pyiceberg's type string


UTC_DATETIME = pl.Datetime("us", "UTC")

TYPES: dict[PgType, ColumnType] = {
    PgType.BIGINT: ColumnType("BIGINT", pl.Int64(), pa.int64(), "long"),
    PgType.INTEGER: ColumnType("INTEGER", pl.Int32(), pa.int32(), "int"),
    PgType.NUMERIC: ColumnType("DECIMAL(12,2)", pl.Decimal(12, 2), pa.decimal128(12, 2), "decimal(12, 2)"),
    PgType.MONEY: ColumnType("DECIMAL(18,2)", pl.Decimal(18, 2), pa.decimal128(18, 2), "decimal(18, 2)"),
    PgType.TEXT: ColumnType("VARCHAR", pl.String(), pa.large_string(), "string"),
    PgType.BOOLEAN: ColumnType("BOOLEAN", pl.Boolean(), pa.bool_(), "boolean"),
    PgType.JSONB: ColumnType("VARCHAR", pl.String(), pa.large_string(), "string"),
    PgType.TIMESTAMPTZ: ColumnType("TIMESTAMP WITH TIME ZONE", UTC_DATETIME, pa.timestamp("us", "UTC"), "timestamptz"),
    PgType.DATE: ColumnType("DATE", pl.Date(), pa.date32(), "date"),
    PgType.DOUBLE: ColumnType("DOUBLE", pl.Float64(), pa.float64(), "double"),
}

Columns = dict[str, PgType]


def polars_schema(columns: Columns) -> dict[str, pl.DataType]:
    return {name: TYPES[t].polars for name, t in columns.items()}


def arrow_schema(columns: Columns) -> pa.Schema:
    return pa.schema([pa.field(name, TYPES[t].arrow) for name, t in columns.items()])


def duckdb_type(t: PgType) -> str:
    return TYPES[t].duckdb
