"""gold.hourly_activity: events, sessions and errors per tenant and hour (UTC)."""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from lakehouse_assets.gold.table import GoldTable, OnBusinessDay, column, in_days, ratio_sql, reads
from lakehouse_assets.schemas.types import PgType


def sql() -> str:
    return f"""
        SELECT *, {ratio_sql('errors', 'events')} AS error_rate
        FROM (
          SELECT CAST(occurred_at AS DATE) AS date, hour(occurred_at) AS hour, tenant_id,
            count(*) AS events,
            count(DISTINCT session_id) AS sessions,
            count(*) FILTER (WHERE event_type = 'error') AS errors
          FROM events
          WHERE {in_days("occurred_at")}
          GROUP BY ALL
        )
    """


HOURLY_ACTIVITY = GoldTable(
    name="hourly_activity",
    description="One row per (date, hour, tenant_id) with at least one event in that UTC hour.",
    columns=(
        column("date", PgType.DATE, "the day the events occurred"),
        column("hour", PgType.INTEGER, "hour of occurred_at, 0-23 UTC", pa.Check.in_range(0, 23)),
        column("tenant_id", PgType.BIGINT),
        column("events", PgType.BIGINT, "events in the hour", pa.Check.gt(0)),
        column("sessions", PgType.BIGINT, "distinct non-NULL session_id", pa.Check.ge(0)),
        column("errors", PgType.BIGINT, "events of type error", pa.Check.ge(0)),
        column("error_rate", PgType.DOUBLE, "errors / events", pa.Check.in_range(0, 1)),
    ),
    inputs=(reads("events", OnBusinessDay(), "tenant_id", "session_id", "event_type", "occurred_at"),),
    sql=sql,
    unique=("date", "hour", "tenant_id"),
    checks=(
        pa.Check(lambda d: d.lazyframe.select(pl.col("errors") <= pl.col("events")), name="errors <= events"),
    ),
    sort=("date", "hour", "tenant_id"),
)
