"""Pandera (polars) models of bronze and silver, generated from the declarations."""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from lakehouse_assets.assets.catalog import POLARS_TYPES, quarantine_schema
from lakehouse_assets.landing.manifest import MANIFEST_SCHEMA
from lakehouse_assets.landing.reader import OPS, REJECT_SCHEMA, change_schema
from lakehouse_assets.sources import SourceTable


def bronze_schema(table: SourceTable) -> pa.DataFrameSchema:
    columns = {name: pa.Column(dtype, nullable=True) for name, dtype in change_schema(table).items()}
    columns["_op"] = pa.Column(pl.String, pa.Check.isin(list(OPS)), nullable=False)
    columns["_commit_ts"] = pa.Column(pl.Datetime("us", "UTC"), nullable=False)
    columns["_source_file"] = pa.Column(pl.String, nullable=False)
    columns["_source_row"] = pa.Column(pl.Int64, pa.Check.ge(1), nullable=False)
    return pa.DataFrameSchema(
        columns, name=f"bronze.{table.name}", strict=True, unique=["_source_file", "_source_row"]
    )


def rejects_schema() -> pa.DataFrameSchema:
    columns = {name: pa.Column(dtype, nullable=True) for name, dtype in REJECT_SCHEMA.items()}
    for name in ("table_name", "_source_file", "reason", "_partition_date"):
        columns[name] = pa.Column(REJECT_SCHEMA[name], nullable=False)
    return pa.DataFrameSchema(columns, name="bronze.cdc_rejects", strict=True)


def manifest_schema() -> pa.DataFrameSchema:
    columns = {name: pa.Column(dtype, nullable=True) for name, dtype in MANIFEST_SCHEMA.items()}
    for name in ("table_name", "_source_file", "size_bytes", "_partition_date", "_ingested_at", "_run_id"):
        columns[name] = pa.Column(MANIFEST_SCHEMA[name], nullable=False)
    for name in ("records", "changes", "rejects", "records_in_file"):
        columns[name] = pa.Column(pl.Int64, pa.Check.ge(0), nullable=False)
    return pa.DataFrameSchema(
        columns,
        name="bronze.landing_manifest",
        strict=True,
        unique=["table_name", "_source_file", "_partition_date"],
        checks=[
            pa.Check(
                lambda d: d.lazyframe.select(pl.col("records") == pl.col("changes") + pl.col("rejects")),
                name="records = changes + rejects",
            )
        ],
    )


def silver_schema(table: SourceTable) -> pa.DataFrameSchema:
    """What quarantine guarantees: types, required values, allowed values, signs, one row a key."""
    columns = {}
    for col in table.columns:
        checks = []
        if col.allowed:
            checks.append(pa.Check.isin(list(col.allowed)))
        if col.non_negative:
            checks.append(pa.Check.ge(0))
        if col.positive:
            checks.append(pa.Check.gt(0))
        columns[col.name] = pa.Column(
            POLARS_TYPES[col.type], checks=checks, nullable=col.name not in table.required_columns
        )
    columns["_commit_ts"] = pa.Column(pl.Datetime("us", "UTC"), nullable=False)
    columns["_source_file"] = pa.Column(pl.String, nullable=False)
    return pa.DataFrameSchema(
        columns, name=f"silver.{table.entity}", strict=True, unique=list(table.primary_key)
    )


def quarantine_model(table: SourceTable) -> pa.DataFrameSchema:
    columns = {name: pa.Column(dtype, nullable=True) for name, dtype in quarantine_schema(table).items()}
    columns["_dq_reason"] = pa.Column(pl.String, pa.Check.str_length(min_value=1), nullable=False)
    columns["_partition_date"] = pa.Column(pl.Date, nullable=False)
    return pa.DataFrameSchema(columns, name=f"silver.{table.entity}_quarantine", strict=True)
