"""Running a Pandera model on a materialized frame and reporting it as a Dagster check."""

from __future__ import annotations

import json

import pandera.polars as pa
import polars as pl
from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetKey, MetadataValue

SAMPLE_ROWS = 5


def schema_check_spec(key: AssetKey, blocking: bool, description: str) -> AssetCheckSpec:
    return AssetCheckSpec(
        name="pandera_schema", asset=key, blocking=blocking, description=description
    )


def run_schema(
    schema: pa.DataFrameSchema, frame: pl.DataFrame, key: AssetKey, partitions: str
) -> AssetCheckResult:
    """Validate lazily (every rule), report failures per rule and a few failing rows."""
    metadata: dict = {"rows_checked": len(frame), "partitions": partitions}
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases
        per_rule = (
            cases.with_columns(
                pl.concat_str(
                    [pl.col("column").fill_null("<table>"), pl.col("check")], separator=": "
                ).alias("rule")
            )
            .group_by("rule")
            .len()
            .sort("rule")
        )
        rows = cases["index"].drop_nulls().unique().sort().head(SAMPLE_ROWS).to_list()
        sample = frame[rows] if rows else frame.head(0)
        metadata.update(
            {
                "failures_per_rule": MetadataValue.json(dict(per_rule.iter_rows())),
                "failing_rows_sample": MetadataValue.md(_markdown(sample)),
                "failure_count": int(len(cases)),
            }
        )
        return AssetCheckResult(
            asset_key=key,
            check_name="pandera_schema",
            passed=False,
            severity=AssetCheckSeverity.ERROR,
            metadata=metadata,
        )
    metadata["failure_count"] = 0
    return AssetCheckResult(asset_key=key, check_name="pandera_schema", passed=True, metadata=metadata)


def _markdown(frame: pl.DataFrame) -> str:
    if frame.is_empty():
        return "(no row-level sample: the failure concerns the whole table)"
    cols = frame.columns
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.iter_rows():
        lines.append("| " + " | ".join(json.dumps(v, default=str)[:60] for v in row) + " |")
    return "\n".join(lines)
