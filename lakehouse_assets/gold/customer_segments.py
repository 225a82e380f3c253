"""gold.customer_segments: every customer, every day: 90-day orders, segment, churn risk.

Its grain is the customer: a changed order or customer makes that customer's rows stale from
the day it counts on, and only those rows are computed again (`_cells`).
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from lakehouse_assets.gold.table import P_STATUSES, FromDateOf, GoldTable, column, reads
from lakehouse_assets.schemas.types import PgType

SEGMENTS = ("vip", "active", "regular", "inactive")
CHURN_RISKS = ("high", "medium", "low")


def sql() -> str:
    return f"""
        WITH customers_by_day AS (
          SELECT k.d AS date, c.tenant_id, c.id AS customer_id
          FROM _cells k
          JOIN customers c ON c.id = k.customer_id AND CAST(c.created_at AS DATE) <= k.d
        ),
        counted_orders AS (
          SELECT customer_id, CAST(created_at AS DATE) AS order_date, total_amount
          FROM orders WHERE status IN {P_STATUSES}
            AND customer_id IN (SELECT customer_id FROM _cells)
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


CUSTOMER_SEGMENTS = GoldTable(
    name="customer_segments",
    description=(
        "One row per (date, tenant_id, customer_id) for every customer created on or before the "
        "date: paid orders and revenue over 90 days, last order, segment and churn risk."
    ),
    columns=(
        column("date", PgType.DATE),
        column("tenant_id", PgType.BIGINT),
        column("customer_id", PgType.BIGINT),
        column("orders_90d", PgType.BIGINT, "paid/shipped/delivered orders created in date-89 .. date",
               pa.Check.ge(0)),
        column("revenue_90d", PgType.MONEY, "their total_amount", pa.Check.ge(0)),
        column("last_order_date", PgType.DATE, "latest such order on or before the date", nullable=True),
        column("days_since_last_order", PgType.BIGINT, "date - last_order_date", pa.Check.ge(0), nullable=True),
        column("segment", PgType.TEXT, "vip, active, regular or inactive", pa.Check.isin(list(SEGMENTS))),
        column("churn_risk", PgType.TEXT, "high, medium or low", pa.Check.isin(list(CHURN_RISKS))),
    ),
    inputs=(
        reads("customers", FromDateOf(("created_at",), grain_from="id"), "id", "tenant_id", "created_at"),
        reads("orders", FromDateOf(("created_at",), grain_from="customer_id"),
              "customer_id", "status", "total_amount", "created_at"),
    ),
    sql=sql,
    unique=("date", "tenant_id", "customer_id"),
    checks=(
        pa.Check(lambda d: d.lazyframe.select(
            pl.col("last_order_date").is_null() == pl.col("days_since_last_order").is_null()),
            name="days_since_last_order NULL exactly when no order"),
    ),
    grain="customer_id",
    sort=("date", "tenant_id", "customer_id"),
)
