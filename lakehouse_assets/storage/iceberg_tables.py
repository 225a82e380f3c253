"""The lakehouse's Iceberg tables in the AWS Glue Data Catalog: where each lives, its schema
and partitioning (from its `TableSpec` and the one type map), and a `Scope` as a pyiceberg
row filter that prunes partitions and files.

Tables are created by pyiceberg, which registers them in Glue with `table_type=ICEBERG` and
the current metadata file: Athena, Spark and Trino read them as soon as they exist.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

import polars as pl
from pyiceberg.catalog.glue import GlueCatalog
from pyiceberg.exceptions import CommitFailedException, NoSuchTableError
from pyiceberg.expressions import (
    AlwaysFalse,
    AlwaysTrue,
    And,
    BooleanExpression,
    GreaterThan,
    GreaterThanOrEqual,
    In,
    LessThan,
    LessThanOrEqual,
    Or,
)
from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC, PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.transforms import DayTransform, IdentityTransform
from pyiceberg.types import DateType, IcebergType, NestedField, TimestamptzType

from lakehouse_assets.schemas.types import TYPES, PgType
from lakehouse_assets.storage.tables import Scope, TableRef, TableSpec, day_ranges
from lakehouse_assets.values import quote_ident

PROPERTIES = {
    "format-version": "2",  # what Athena reads and writes
    "write.parquet.compression-codec": "zstd",
    # Two writers replacing the same rows must conflict, not both land: serializable makes a
    # commit fail when files were added concurrently inside its delete filter (pyiceberg's
    # default already, set so that the table says so to every engine).
    "write.delete.isolation-level": "serializable",
    "write.update.isolation-level": "serializable",
}
KEY_VALUES_IN_FILTER = 1000  # beyond this many keys the filter prunes by their range
SCHEMA_ATTEMPTS = 5


def glue_catalog(region: str | None, endpoint: str | None) -> GlueCatalog:
    """Credentials come from the SDK chain (boto3 for Glue, the AWS C++ SDK under pyarrow for
    S3); only the region and, for tests, an endpoint are passed."""
    properties = {"py-io-impl": "pyiceberg.io.pyarrow.PyArrowFileIO"}
    if region:
        properties |= {"glue.region": region, "s3.region": region}
    if endpoint:
        properties |= {"glue.endpoint": endpoint, "s3.endpoint": endpoint}
    return GlueCatalog("lakehouse", **properties)


def database(prefix: str, layer: str) -> str:
    return f"{prefix}_{layer}"


def identifier(prefix: str, ref: TableRef) -> tuple[str, str]:
    return database(prefix, ref.layer), ref.name


def location(warehouse_uri: str, ref: TableRef) -> str:
    return f"{warehouse_uri.rstrip('/')}/{ref.layer}/{ref.name}"


def iceberg_type(kind: PgType) -> IcebergType:
    return NestedField(field_id=1, name="t", field_type=TYPES[kind].iceberg).field_type


def iceberg_schema(spec: TableSpec) -> Schema:
    # Every column optional: rows written before a column was declared read it as NULL.
    return Schema(*(NestedField(i, name, TYPES[kind].iceberg, required=False)
                    for i, (name, kind) in enumerate(spec.columns.items(), start=1)))


def partition_spec(spec: TableSpec, schema: Schema) -> PartitionSpec:
    """Daily partitions on the partition column: day(ts) for a timestamptz, the date itself
    (identity) for a date. Both give one partition a day and both prune a filter on the column
    in Athena, Spark and Trino; identity keeps the partition value equal to the column's, so
    `$partitions` shows dates and engines can answer min/max/distinct of it from metadata."""
    if spec.partition_column is None:
        return UNPARTITIONED_PARTITION_SPEC
    source = schema.find_field(spec.partition_column)
    if spec.columns[spec.partition_column] is PgType.TIMESTAMPTZ:
        field = PartitionField(source.field_id, 1000, DayTransform(), f"{spec.partition_column}_day")
    else:
        field = PartitionField(source.field_id, 1000, IdentityTransform(), spec.partition_column)
    return PartitionSpec(field)


def daily_column(table: Table) -> str | None:
    """The column a table is partitioned by day on, or None when unpartitioned; any other
    partitioning is not this lakehouse's."""
    fields = table.spec().fields
    if not fields:
        return None
    source = table.schema().find_field(fields[0].source_id)
    daily = isinstance(fields[0].transform, DayTransform) or (
        isinstance(fields[0].transform, IdentityTransform) and isinstance(source.field_type, DateType)
    )
    if len(fields) != 1 or not daily or not isinstance(source.field_type, (DateType, TimestamptzType)):
        raise TypeError(f"{table.name()}: partitioned as {table.spec()}, not by day on one column")
    return source.name


def partition_sql(column: str) -> str:
    """DuckDB SQL for a row's daily partition value: days since 1970-01-01 of the column's UTC
    date (the session's time zone is UTC), what both the day and the date identity transform store."""
    return f"CAST(CAST({quote_ident(column)} AS DATE) - DATE '1970-01-01' AS INTEGER)"


def check_table(table: Table, spec: TableSpec) -> None:
    """Refuse a write whose declaration disagrees with the table (a migration is deliberate)."""
    if daily_column(table) != spec.partition_column:
        raise TypeError(f"{spec.ref}: partitioned by day on {daily_column(table)!r} in Iceberg but declared "
                        f"on {spec.partition_column!r}; migrate the table on purpose")
    fields = {f.name: f.field_type for f in table.schema().fields}
    retyped = [f"{name}: {fields[name]} -> {iceberg_type(kind)}" for name, kind in spec.columns.items()
               if name in fields and fields[name] != iceberg_type(kind)]
    if retyped:
        raise TypeError(f"{spec.ref}: column types changed ({', '.join(retyped)}); migrate the table on purpose")


def load(catalog: GlueCatalog, prefix: str, ref: TableRef) -> Table | None:
    try:
        return catalog.load_table(identifier(prefix, ref))
    except NoSuchTableError:
        return None


def ensure_table(catalog: GlueCatalog, prefix: str, warehouse_uri: str, spec: TableSpec) -> Table:
    """The table, created if missing (safe when another process creates it at the same time),
    with columns the declaration gained added (older rows read them as NULL)."""
    table = load(catalog, prefix, spec.ref)
    if table is None:
        catalog.create_namespace_if_not_exists(database(prefix, spec.ref.layer))
        schema = iceberg_schema(spec)
        table = catalog.create_table_if_not_exists(
            identifier(prefix, spec.ref), schema, location=location(warehouse_uri, spec.ref),
            partition_spec=partition_spec(spec, schema), properties=PROPERTIES,
        )
    for _ in range(SCHEMA_ATTEMPTS):
        check_table(table, spec)
        missing = [name for name in spec.columns if name not in table.schema().column_names]
        if not missing:
            return table
        try:  # a schema change is metadata only: no snapshot, and concurrent adds conflict loudly
            with table.update_schema() as update:
                for name in missing:
                    update.add_column(name, iceberg_type(spec.columns[name]))
        except CommitFailedException:
            pass  # another writer changed the schema first: look again
        table = table.refresh()
    raise RuntimeError(f"{spec.ref}: could not add columns after {SCHEMA_ATTEMPTS} attempts")


def scope_filter(scope: Scope, spec: TableSpec, schema: Schema) -> BooleanExpression:
    """A row filter that holds for every row in `scope` (exact for days and files, a superset
    for keys of several columns, which DuckDB then matches exactly)."""
    if scope.is_nothing:
        return AlwaysFalse()
    present = set(schema.column_names)
    clauses: list[BooleanExpression] = []
    if scope.days is not None:
        if spec.partition_column is None:
            raise ValueError(f"{spec.ref} is not partitioned: a scope of days means nothing for it")
        timestamp = spec.columns[spec.partition_column] is PgType.TIMESTAMPTZ
        clauses.append(days_filter(spec.partition_column, timestamp, scope.days))
    if scope.files is not None:
        clauses.append(In("_source_file", sorted(scope.files)))
    if scope.keys is not None:
        missing = [c for c in scope.keys.columns if c not in spec.columns]
        if missing:
            raise ValueError(f"{spec.ref} has no key column(s) {', '.join(missing)}")
        clauses.append(_keys_filter(scope.keys))
    if scope.after is not None:
        column, t = scope.after
        clauses.append(GreaterThan(column, t.isoformat()))
    columns = {c for clause in clauses for c in _columns(clause)}
    if columns - present:  # a column the table never had is NULL in every row: nothing matches
        return AlwaysFalse()
    result: BooleanExpression = AlwaysTrue()
    for clause in clauses:
        result = And(result, clause)
    return result


def days_filter(col: str, timestamp: bool, days: Iterable[date]) -> BooleanExpression:
    """Rows whose UTC day is one of `days`, as ranges of consecutive days."""
    result: BooleanExpression = AlwaysFalse()
    for first, last in day_ranges(days):
        if timestamp:
            end = last + timedelta(days=1)
            clause = And(GreaterThanOrEqual(col, f"{first}T00:00:00+00:00"), LessThan(col, f"{end}T00:00:00+00:00"))
        else:
            clause = And(GreaterThanOrEqual(col, first.isoformat()), LessThanOrEqual(col, last.isoformat()))
        result = Or(result, clause)
    return result


def _keys_filter(keys: pl.DataFrame) -> BooleanExpression:
    """Prune by the first key column only: its distinct values, or their range when many."""
    col = keys.columns[0]
    values = keys.get_column(col).drop_nulls().unique()
    if values.is_empty():
        return AlwaysFalse()
    if len(values) <= KEY_VALUES_IN_FILTER:
        return In(col, [_literal(v) for v in values.to_list()])
    return And(GreaterThanOrEqual(col, _literal(values.min())), LessThanOrEqual(col, _literal(values.max())))


def _literal(value: Any) -> Any:
    # pyiceberg's literals take str/int/float/Decimal; dates and times as ISO text convert to any type.
    return value.isoformat() if hasattr(value, "isoformat") else value


def _columns(expression: BooleanExpression) -> set[str]:
    if isinstance(expression, (And, Or)):
        return _columns(expression.left) | _columns(expression.right)
    term = getattr(expression, "term", None)
    return {term.name} if term is not None else set()
