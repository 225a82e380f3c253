"""gold.daily_revenue: orders and revenue per tenant and day (CONTRACT section 5)."""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from lakehouse_assets.assets.gold.common import (
    EVERY_DAY,
    MONEY,
    P_STATUSES,
    R_STATUSES,
    SAME_DAY,
    GoldTable,
    reads,
    money_ratio_sql,
)


def revenue_by_day_sql(first, last, with_items: bool = True) -> str:
    """Per (date, tenant_id) of orders created in the run: counts and money. Shared with
    daily_summary, whose net_revenue is the same number (it needs no items)."""
    items = "(SELECT order_id, sum(quantity) AS quantity FROM order_items GROUP BY order_id)"
    if not with_items:
        items = "(SELECT NULL::BIGINT AS order_id, NULL::BIGINT AS quantity WHERE false)"
    return f"""
        SELECT CAST(o.created_at AS DATE) AS date, o.tenant_id,
          count(*) AS order_count,
          count(*) FILTER (WHERE o.status IN {P_STATUSES}) AS paid_order_count,
          coalesce(sum(o.total_amount) FILTER (WHERE o.status IN {R_STATUSES}), 0) AS gross_revenue,
          coalesce(sum(o.total_amount) FILTER (WHERE o.status = 'refunded'), 0) AS refunded_amount,
          coalesce(sum(i.quantity) FILTER (WHERE o.status IN {P_STATUSES}), 0) AS items_sold
        FROM orders o
        LEFT JOIN {items} i ON i.order_id = o.id
        WHERE CAST(o.created_at AS DATE) BETWEEN DATE '{first}' AND DATE '{last}'
        GROUP BY ALL
    """


def sql(first, last) -> str:
    net = "gross_revenue - refunded_amount"
    return f"""
        SELECT date, tenant_id, order_count, paid_order_count, gross_revenue, refunded_amount,
          {net} AS net_revenue,
          CASE WHEN paid_order_count > 0 THEN {money_ratio_sql(net, 'paid_order_count')} END
            AS avg_order_value,
          items_sold
        FROM ({revenue_by_day_sql(first, last)})
    """


SCHEMA = {
    "date": pl.Date,
    "tenant_id": pl.Int64,
    "order_count": pl.Int64,
    "paid_order_count": pl.Int64,
    "gross_revenue": MONEY,
    "refunded_amount": MONEY,
    "net_revenue": MONEY,
    "avg_order_value": MONEY,
    "items_sold": pl.Int64,
}

MODEL = pa.DataFrameSchema(
    {
        "date": pa.Column(pl.Date),
        "tenant_id": pa.Column(pl.Int64),
        "order_count": pa.Column(pl.Int64, pa.Check.gt(0)),
        "paid_order_count": pa.Column(pl.Int64, pa.Check.ge(0)),
        "gross_revenue": pa.Column(MONEY, pa.Check.ge(0)),
        "refunded_amount": pa.Column(MONEY, pa.Check.ge(0)),
        "net_revenue": pa.Column(MONEY),
        "avg_order_value": pa.Column(MONEY, nullable=True),
        "items_sold": pa.Column(pl.Int64, pa.Check.ge(0)),
    },
    checks=[
        pa.Check(
            lambda d: d.lazyframe.select(
                pl.col("net_revenue") == pl.col("gross_revenue") - pl.col("refunded_amount")
            ),
            name="net = gross - refunded",
        ),
        pa.Check(
            lambda d: d.lazyframe.select(pl.col("paid_order_count") <= pl.col("order_count")),
            name="paid orders <= orders",
        ),
        pa.Check(
            lambda d: d.lazyframe.select(
                (pl.col("paid_order_count") == 0) == pl.col("avg_order_value").is_null()
            ),
            name="avg_order_value NULL exactly when no paid order",
        ),
    ],
    unique=["date", "tenant_id"],
    strict=True,
    name="gold.daily_revenue",
)

DAILY_REVENUE = GoldTable(
    name="daily_revenue",
    description=(
        "One row per (date, tenant_id) with at least one order created that day: orders, paid "
        "orders, gross, refunded and net revenue, average order value, items sold."
    ),
    inputs={
        "orders": reads(SAME_DAY, "id", "tenant_id", "status", "total_amount", "created_at"),
        "order_items": reads(EVERY_DAY, "order_id", "quantity"),
    },
    sql=sql,
    schema=SCHEMA,
    model=MODEL,
    columns={
        "order_count": "orders created on the date, any status",
        "paid_order_count": "of those, status paid, shipped or delivered",
        "gross_revenue": "sum of total_amount over paid, shipped, delivered, refunded",
        "refunded_amount": "sum of total_amount over refunded",
        "net_revenue": "gross_revenue - refunded_amount",
        "avg_order_value": "net_revenue / paid_order_count; NULL without paid orders",
        "items_sold": "quantity of items of the paid/shipped/delivered orders",
    },
)
