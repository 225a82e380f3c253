"""gold.daily_funnel: sessions, customers and event counts per tenant and day."""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from lakehouse_assets.gold.table import GoldTable, OnBusinessDay, column, in_days, ratio_sql, reads
from lakehouse_assets.schemas.types import PgType
from lakehouse_assets.sources import EVENT_TYPES

COUNTS = {
    "page_views": "page_view",
    "product_views": "product_view",
    "add_to_cart": "add_to_cart",
    "checkout_started": "checkout_started",
    "purchases": "purchase",
    "signups": "signup",
    "errors": "error",
}
assert set(COUNTS.values()) == set(EVENT_TYPES)


def sql() -> str:
    counts = ",\n".join(
        f"count(*) FILTER (WHERE event_type = '{t}') AS {name}" for name, t in COUNTS.items()
    )
    return f"""
        SELECT *, CASE WHEN sessions > 0 THEN {ratio_sql('purchase_sessions', 'sessions')} END
                  AS conversion_rate
        FROM (
          SELECT CAST(occurred_at AS DATE) AS date, tenant_id,
            count(DISTINCT session_id) AS sessions,
            count(DISTINCT customer_id) AS customers,
            {counts},
            count(DISTINCT session_id) FILTER (WHERE event_type = 'purchase') AS purchase_sessions
          FROM events
          WHERE {in_days("occurred_at")}
          GROUP BY ALL
        )
    """


ge0 = pa.Check.ge(0)

DAILY_FUNNEL = GoldTable(
    name="daily_funnel",
    description=(
        "One row per (date, tenant_id) with at least one event: sessions, customers, events per "
        "type and the share of sessions with a purchase."
    ),
    columns=(
        column("date", PgType.DATE, "the day the events occurred"),
        column("tenant_id", PgType.BIGINT),
        column("sessions", PgType.BIGINT, "distinct non-NULL session_id", ge0),
        column("customers", PgType.BIGINT, "distinct non-NULL customer_id", ge0),
        *(column(name, PgType.BIGINT, f"events of type {t}", ge0) for name, t in COUNTS.items()),
        column("conversion_rate", PgType.DOUBLE,
               "distinct sessions with a purchase / sessions; NULL without sessions",
               pa.Check.in_range(0, 1), nullable=True),
    ),
    inputs=(reads("events", OnBusinessDay(), "tenant_id", "customer_id", "session_id", "event_type", "occurred_at"),),
    sql=sql,
    unique=("date", "tenant_id"),
    checks=(
        pa.Check(lambda d: d.lazyframe.select(sum(pl.col(n) for n in COUNTS) > 0), name="at least one event"),
        pa.Check(lambda d: d.lazyframe.select((pl.col("sessions") == 0) == pl.col("conversion_rate").is_null()),
                 name="conversion_rate NULL exactly when no session"),
    ),
)
