"""Pandera (polars) models of every layer, generated from the declarations and table specs.

Run by the steps on the rows they are about to write (checks/validation.py), a bounded batch
at a time; a key that must be unique across batches is counted in SQL there.
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from lakehouse_assets.gold.table import GoldTable
from lakehouse_assets.landing.reader import OPS
from lakehouse_assets.schemas.tables import (
    MANIFEST,
    REJECTS,
    bronze_spec,
    gold_spec,
    quarantine_spec,
    silver_spec,
)
from lakehouse_assets.schemas.types import TYPES
from lakehouse_assets.sources import SourceTable
from lakehouse_assets.storage.tables import TableSpec


def _nullable_columns(spec: TableSpec) -> dict[str, pa.Column]:
    return {name: pa.Column(TYPES[t].polars, nullable=True) for name, t in spec.columns.items()}


def _required(spec: TableSpec, columns: dict[str, pa.Column], *names: str) -> None:
    for name in names:
        columns[name] = pa.Column(TYPES[spec.columns[name]].polars, nullable=False)


def bronze_model(table: SourceTable) -> pa.DataFrameSchema:
    spec = bronze_spec(table)
    columns = _nullable_columns(spec)
    _required(spec, columns, "_commit_ts", "_source_file", "_ingested_at")
    columns["_op"] = pa.Column(pl.String, pa.Check.isin(list(OPS)), nullable=False)
    columns["_source_row"] = pa.Column(pl.Int64, pa.Check.ge(1), nullable=False)
    return pa.DataFrameSchema(columns, name=str(spec.ref), strict=True, unique=["_source_file", "_source_row"])


def rejects_model() -> pa.DataFrameSchema:
    columns = _nullable_columns(REJECTS)
    _required(REJECTS, columns, "table_name", "_source_file", "reason", "_partition_date")
    return pa.DataFrameSchema(columns, name=str(REJECTS.ref), strict=True)


def manifest_model() -> pa.DataFrameSchema:
    columns = _nullable_columns(MANIFEST)
    _required(MANIFEST, columns, "table_name", "_source_file", "size_bytes", "_partition_date", "_ingested_at",
              "_run_id", "last_seen_at")
    for name in ("records", "changes", "rejects", "purged", "records_in_file"):
        columns[name] = pa.Column(pl.Int64, pa.Check.ge(0), nullable=False)
    return pa.DataFrameSchema(
        columns,
        name=str(MANIFEST.ref),
        strict=True,
        unique=["table_name", "_source_file", "_partition_date"],
        checks=[
            pa.Check(lambda d: d.lazyframe.select(
                pl.col("records") == pl.col("changes") + pl.col("rejects") + pl.col("purged")),
                name="records = changes + rejects + purged")
        ],
    )


def silver_model(table: SourceTable) -> pa.DataFrameSchema:
    """What quarantine guarantees: types, required values, allowed values, signs. (One row a
    key is counted across batches in SQL.)"""
    spec = silver_spec(table)
    columns = {}
    for col in table.columns:
        checks = []
        if col.allowed:
            checks.append(pa.Check.isin(list(col.allowed)))
        if col.non_negative:
            checks.append(pa.Check.ge(0))
        if col.positive:
            checks.append(pa.Check.gt(0))
        columns[col.name] = pa.Column(TYPES[col.type].polars, checks=checks,
                                      nullable=col.name not in table.required_columns)
    _required(spec, columns, "_commit_ts", "_source_file")
    return pa.DataFrameSchema(columns, name=str(spec.ref), strict=True)


def quarantine_model(table: SourceTable) -> pa.DataFrameSchema:
    spec = quarantine_spec(table)
    columns = _nullable_columns(spec)
    columns["_dq_reason"] = pa.Column(pl.String, pa.Check.str_length(min_value=1), nullable=False)
    _required(spec, columns, "_partition_date", "_key", "_commit_ts", "_source_file")
    return pa.DataFrameSchema(columns, name=str(spec.ref), strict=True)


def gold_model(table: GoldTable) -> pa.DataFrameSchema:
    """Column rules as declared; the grain's uniqueness is counted in SQL across batches."""
    columns = {
        c.name: pa.Column(TYPES[c.type].polars, checks=list(c.checks), nullable=c.nullable)
        for c in table.columns
    }
    return pa.DataFrameSchema(columns, checks=list(table.checks), name=str(gold_spec(table).ref), strict=True)
