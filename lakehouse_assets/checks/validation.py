"""Running a Pandera model on the rows a step is about to write, and reporting it as a check.

Rows are validated a bounded batch at a time (polars, from the session's DuckDB), so a table of
any size is checked without holding it whole; a key that must be unique across the batches is
counted in SQL. Failures are reported per rule, with a few failing rows.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence

import pandera.polars as pa
import polars as pl
from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetKey, MetadataValue

from lakehouse_assets.storage.tables import Session
from lakehouse_assets.values import quote_ident

CHECK = "pandera_schema"
SAMPLE_ROWS = 5
BATCH_ROWS = 500_000


def schema_check_spec(key: AssetKey, blocking: bool, description: str) -> AssetCheckSpec:
    return AssetCheckSpec(name=CHECK, asset=key, blocking=blocking, description=description)


class Validation:
    """Accumulates a model's verdict over the batches of one table's rows."""

    def __init__(self, model: pa.DataFrameSchema, key: AssetKey, partitions: str):
        self.model, self.key, self.partitions = model, key, partitions
        self.rows = 0
        self.failures: Counter[str] = Counter()
        self.sample: pl.DataFrame | None = None

    def add(self, frame: pl.DataFrame) -> None:
        self.rows += len(frame)
        try:
            self.model.validate(frame, lazy=True)
        except pa.errors.SchemaErrors as errors:
            cases = errors.failure_cases.with_columns(
                pl.concat_str([pl.col("column").fill_null("<table>"), pl.col("check")], separator=": ").alias("rule")
            )
            self.failures.update(dict(cases.group_by("rule").len().iter_rows()))
            if self.sample is None:
                rows = cases["index"].drop_nulls().unique().sort().head(SAMPLE_ROWS).to_list()
                self.sample = frame[rows] if rows else frame.head(0)

    def add_duplicates(self, columns: Sequence[str], duplicated: int) -> None:
        if duplicated:
            self.failures[f"<table>: unique {', '.join(columns)}"] += duplicated

    def result(self) -> AssetCheckResult:
        metadata: dict = {"rows_checked": self.rows, "partitions": self.partitions,
                          "failure_count": int(sum(self.failures.values()))}
        if self.failures:
            metadata["failures_per_rule"] = MetadataValue.json(dict(sorted(self.failures.items())))
            metadata["failing_rows_sample"] = MetadataValue.md(_markdown(self.sample))
        return AssetCheckResult(
            asset_key=self.key,
            check_name=CHECK,
            passed=not self.failures,
            severity=AssetCheckSeverity.ERROR,
            metadata=metadata,
        )


def validate_relation(session: Session, model: pa.DataFrameSchema, relation: str, key: AssetKey,
                      partitions: str, unique: Sequence[str] = ()) -> AssetCheckResult:
    check = Validation(model, key, partitions)
    for frame in batches(session, relation):
        check.add(frame)
    if unique:
        cols = ", ".join(quote_ident(c) for c in unique)
        duplicated = session.con.execute(
            f"SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM {relation} GROUP BY {cols}) WHERE n > 1"
        ).fetchall()[0][0]
        check.add_duplicates(unique, int(duplicated))
    return check.result()


def batches(session: Session, relation: str) -> Iterable[pl.DataFrame]:
    reader = session.con.sql(f"SELECT * FROM {relation}").fetch_record_batch(BATCH_ROWS)
    for batch in reader:
        yield pl.from_arrow(batch)


def _markdown(frame: pl.DataFrame | None) -> str:
    if frame is None or frame.is_empty():
        return "(no row-level sample: the failure concerns the whole table)"
    cols = frame.columns
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.iter_rows():
        lines.append("| " + " | ".join(json.dumps(v, default=str)[:60] for v in row) + " |")
    return "\n".join(lines)
