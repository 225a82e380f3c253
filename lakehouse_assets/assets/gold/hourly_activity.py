"""gold.hourly_activity: events, sessions and errors per tenant and hour (UTC)."""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from lakehouse_assets.assets.gold.common import SAME_DAY, GoldTable, reads, ratio_sql


def sql(first, last) -> str:
    return f"""
        SELECT *, {ratio_sql('errors', 'events')} AS error_rate
        FROM (
          SELECT CAST(occurred_at AS DATE) AS date, hour(occurred_at) AS hour, tenant_id,
            count(*) AS events,
            count(DISTINCT session_id) AS sessions,
            count(*) FILTER (WHERE event_type = 'error') AS errors
          FROM events
          WHERE CAST(occurred_at AS DATE) BETWEEN DATE '{first}' AND DATE '{last}'
          GROUP BY ALL
        )
    """


SCHEMA = {
    "date": pl.Date,
    "hour": pl.Int32,
    "tenant_id": pl.Int64,
    "events": pl.Int64,
    "sessions": pl.Int64,
    "errors": pl.Int64,
    "error_rate": pl.Float64,
}

MODEL = pa.DataFrameSchema(
    {
        "date": pa.Column(pl.Date),
        "hour": pa.Column(pl.Int32, pa.Check.in_range(0, 23)),
        "tenant_id": pa.Column(pl.Int64),
        "events": pa.Column(pl.Int64, pa.Check.gt(0)),
        "sessions": pa.Column(pl.Int64, pa.Check.ge(0)),
        "errors": pa.Column(pl.Int64, pa.Check.ge(0)),
        "error_rate": pa.Column(pl.Float64, pa.Check.in_range(0, 1)),
    },
    checks=[
        pa.Check(
            lambda d: d.lazyframe.select(pl.col("errors") <= pl.col("events")),
            name="errors <= events",
        ),
    ],
    unique=["date", "hour", "tenant_id"],
    strict=True,
    name="gold.hourly_activity",
)

HOURLY_ACTIVITY = GoldTable(
    name="hourly_activity",
    description="One row per (date, hour, tenant_id) with at least one event in that UTC hour.",
    inputs={"events": reads(SAME_DAY, "tenant_id", "session_id", "event_type", "occurred_at")},
    sql=sql,
    schema=SCHEMA,
    model=MODEL,
    columns={
        "hour": "hour of occurred_at, 0-23 UTC",
        "events": "events in the hour",
        "sessions": "distinct non-NULL session_id",
        "errors": "events of type error",
        "error_rate": "errors / events",
    },
)
