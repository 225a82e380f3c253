"""gold.daily_funnel: sessions, customers and event counts per tenant and day."""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from lakehouse_assets.assets.gold.common import SAME_DAY, GoldTable, reads, ratio_sql
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


def sql(first, last) -> str:
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
          WHERE CAST(occurred_at AS DATE) BETWEEN DATE '{first}' AND DATE '{last}'
          GROUP BY ALL
        )
    """


SCHEMA = {
    "date": pl.Date,
    "tenant_id": pl.Int64,
    "sessions": pl.Int64,
    "customers": pl.Int64,
    **{name: pl.Int64 for name in COUNTS},
    "conversion_rate": pl.Float64,
}

MODEL = pa.DataFrameSchema(
    {
        "date": pa.Column(pl.Date),
        "tenant_id": pa.Column(pl.Int64),
        "sessions": pa.Column(pl.Int64, pa.Check.ge(0)),
        "customers": pa.Column(pl.Int64, pa.Check.ge(0)),
        **{name: pa.Column(pl.Int64, pa.Check.ge(0)) for name in COUNTS},
        "conversion_rate": pa.Column(pl.Float64, pa.Check.in_range(0, 1), nullable=True),
    },
    checks=[
        pa.Check(
            lambda d: d.lazyframe.select(
                sum(pl.col(n) for n in COUNTS) > 0
            ),
            name="at least one event",
        ),
        pa.Check(
            lambda d: d.lazyframe.select(
                (pl.col("sessions") == 0) == pl.col("conversion_rate").is_null()
            ),
            name="conversion_rate NULL exactly when no session",
        ),
    ],
    unique=["date", "tenant_id"],
    strict=True,
    name="gold.daily_funnel",
)

DAILY_FUNNEL = GoldTable(
    name="daily_funnel",
    description=(
        "One row per (date, tenant_id) with at least one event: sessions, customers, events per "
        "type and the share of sessions with a purchase."
    ),
    inputs={
        "events": reads(SAME_DAY, "tenant_id", "customer_id", "session_id", "event_type", "occurred_at")
    },
    sql=sql,
    schema=SCHEMA,
    model=MODEL,
    columns={
        "sessions": "distinct non-NULL session_id",
        "customers": "distinct non-NULL customer_id",
        "conversion_rate": "distinct sessions with a purchase / sessions; NULL without sessions",
        **{name: f"events of type {t}" for name, t in COUNTS.items()},
    },
)
