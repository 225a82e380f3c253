"""gold.customer_segments: every customer, every day: 90-day orders, segment, churn risk."""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from lakehouse_assets.assets.gold.common import (
    MONEY,
    P_STATUSES,
    UP_TO_THE_DAY,
    GoldTable,
    reads,
    days_sql,
)

SEGMENTS = ("vip", "active", "regular", "inactive")
CHURN_RISKS = ("high", "medium", "low")


def sql(first, last) -> str:
    return f"""
        WITH customers_by_day AS (
          SELECT d AS date, c.tenant_id, c.id AS customer_id
          FROM {days_sql(first, last)} days
          JOIN customers c ON CAST(c.created_at AS DATE) <= d
        ),
        counted_orders AS (
          SELECT customer_id, CAST(created_at AS DATE) AS order_date, total_amount
          FROM orders WHERE status IN {P_STATUSES}
        ),
        activity AS (
          SELECT g.date, g.tenant_id, g.customer_id,
            count(o.order_date) FILTER (WHERE o.order_date > g.date - 90) AS orders_90d,
            coalesce(sum(o.total_amount) FILTER (WHERE o.order_date > g.date - 90), 0)
              AS revenue_90d,
            max(o.order_date) AS last_order_date
          FROM customers_by_day g
          LEFT JOIN counted_orders o
            ON o.customer_id = g.customer_id AND o.order_date <= g.date
          GROUP BY ALL
        )
        SELECT *,
          CASE WHEN orders_90d >= 5 AND revenue_90d >= 1000 THEN 'vip'
               WHEN orders_90d >= 2 THEN 'active'
               WHEN orders_90d = 1 THEN 'regular'
               ELSE 'inactive' END AS segment,
          CASE WHEN last_order_date IS NULL OR days_since_last_order > 60 THEN 'high'
               WHEN days_since_last_order > 30 THEN 'medium'
               ELSE 'low' END AS churn_risk
        FROM (SELECT *, date - last_order_date AS days_since_last_order FROM activity)
    """


SCHEMA = {
    "date": pl.Date,
    "tenant_id": pl.Int64,
    "customer_id": pl.Int64,
    "orders_90d": pl.Int64,
    "revenue_90d": MONEY,
    "last_order_date": pl.Date,
    "days_since_last_order": pl.Int64,
    "segment": pl.String,
    "churn_risk": pl.String,
}

MODEL = pa.DataFrameSchema(
    {
        "date": pa.Column(pl.Date),
        "tenant_id": pa.Column(pl.Int64),
        "customer_id": pa.Column(pl.Int64),
        "orders_90d": pa.Column(pl.Int64, pa.Check.ge(0)),
        "revenue_90d": pa.Column(MONEY, pa.Check.ge(0)),
        "last_order_date": pa.Column(pl.Date, nullable=True),
        "days_since_last_order": pa.Column(pl.Int64, pa.Check.ge(0), nullable=True),
        "segment": pa.Column(pl.String, pa.Check.isin(list(SEGMENTS))),
        "churn_risk": pa.Column(pl.String, pa.Check.isin(list(CHURN_RISKS))),
    },
    checks=[
        pa.Check(
            lambda d: d.lazyframe.select(
                pl.col("last_order_date").is_null() == pl.col("days_since_last_order").is_null()
            ),
            name="days_since_last_order NULL exactly when no order",
        ),
    ],
    unique=["date", "tenant_id", "customer_id"],
    strict=True,
    name="gold.customer_segments",
)

CUSTOMER_SEGMENTS = GoldTable(
    name="customer_segments",
    description=(
        "One row per (date, tenant_id, customer_id) for every customer created on or before the "
        "date: paid orders and revenue over 90 days, last order, segment and churn risk."
    ),
    inputs={
        "customers": reads(UP_TO_THE_DAY, "id", "tenant_id", "created_at"),
        "orders": reads(UP_TO_THE_DAY, "customer_id", "status", "total_amount", "created_at"),
    },
    sql=sql,
    schema=SCHEMA,
    model=MODEL,
    columns={
        "orders_90d": "paid/shipped/delivered orders created in date-89 .. date",
        "revenue_90d": "their total_amount",
        "last_order_date": "latest such order on or before the date",
        "days_since_last_order": "date - last_order_date",
        "segment": "vip, active, regular or inactive",
        "churn_risk": "high, medium or low",
    },
)
