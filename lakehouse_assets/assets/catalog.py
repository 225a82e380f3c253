"""What every asset tells the catalog (the Dagster UI): owners, kinds, column schema and
descriptions, from the declarations and table specs."""

from __future__ import annotations

from collections.abc import Iterable

from dagster import TableColumn, TableColumnConstraints, TableSchema

from lakehouse_assets.sources import SourceTable
from lakehouse_assets.storage.tables import TableSpec

OWNERS = ["team:data-platform"]

CHANGE_DESCRIPTIONS = {
    "_op": "I, U or D",
    "_commit_ts": "DMS commit time (UTC): decides the partition",
    "_seq": "DMS $AR_H_CHANGE_SEQ, empty in full loads",
    "_source_file": "landing file, relative to the landing root",
    "_source_row": "1-based record number in that file (header not counted)",
    "_ingested_at": "when a run read the file",
}


def column_schema(spec: TableSpec, descriptions: dict[str, str] | None = None,
                  required: Iterable[str] = ()) -> TableSchema:
    descriptions = descriptions or {}
    required = set(required)
    return TableSchema(
        columns=[
            TableColumn(
                name=name,
                type=t.value,
                description=descriptions.get(name),
                constraints=TableColumnConstraints(nullable=name not in required),
            )
            for name, t in spec.columns.items()
        ]
    )


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


def source_descriptions(table: SourceTable) -> dict[str, str]:
    return {c: describe_column(table, c) for c in table.column_names}
