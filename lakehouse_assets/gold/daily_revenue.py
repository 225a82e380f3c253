"""gold.daily_revenue: orders and revenue per tenant and day (CONTRACT section 5)."""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from lakehouse_assets.gold.table import (
    P_STATUSES,
    R_STATUSES,
    GoldTable,
    OnBusinessDay,
    OnDayOf,
    column,
    in_days,
    money_ratio_sql,
    reads,
)
from lakehouse_assets.schemas.types import PgType

ge0 = pa.Check.ge(0)


def revenue_by_day_sql(with_items: bool = True) -> str:
    """Per (date, tenant_id) of the orders created on the days computed: counts and money.
    Shared with daily_summary, whose net_revenue is the same number (it needs no items)."""
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
        WHERE {in_days("o.created_at")}
        GROUP BY ALL
    """


def sql() -> str:
    net = "gross_revenue - refunded_amount"
    return f"""
        SELECT date, tenant_id, order_count, paid_order_count, gross_revenue, refunded_amount,
          {net} AS net_revenue,
          CASE WHEN paid_order_count > 0 THEN {money_ratio_sql(net, 'paid_order_count')} END
            AS avg_order_value,
          items_sold
        FROM ({revenue_by_day_sql()})
    """


DAILY_REVENUE = GoldTable(
    name="daily_revenue",
    description=(
        "One row per (date, tenant_id) with at least one order created that day: orders, paid "
        "orders, gross, refunded and net revenue, average order value, items sold."
    ),
    columns=(
        column("date", PgType.DATE, "the day the orders were created"),
        column("tenant_id", PgType.BIGINT),
        column("order_count", PgType.BIGINT, "orders created on the date, any status", pa.Check.gt(0)),
        column("paid_order_count", PgType.BIGINT, "of those, status paid, shipped or delivered", ge0),
        column("gross_revenue", PgType.MONEY, "sum of total_amount over paid, shipped, delivered, refunded", ge0),
        column("refunded_amount", PgType.MONEY, "sum of total_amount over refunded", ge0),
        column("net_revenue", PgType.MONEY, "gross_revenue - refunded_amount"),
        column("avg_order_value", PgType.MONEY, "net_revenue / paid_order_count; NULL without paid orders",
               nullable=True),
        column("items_sold", PgType.BIGINT, "quantity of items of the paid/shipped/delivered orders", ge0),
    ),
    inputs=(
        reads("orders", OnBusinessDay(), "id", "tenant_id", "status", "total_amount", "created_at"),
        reads("order_items", OnDayOf("order_id", "orders"), "order_id", "quantity"),
    ),
    sql=sql,
    unique=("date", "tenant_id"),
    checks=(
        pa.Check(lambda d: d.lazyframe.select(
            pl.col("net_revenue") == pl.col("gross_revenue") - pl.col("refunded_amount")),
            name="net = gross - refunded"),
        pa.Check(lambda d: d.lazyframe.select(pl.col("paid_order_count") <= pl.col("order_count")),
                 name="paid orders <= orders"),
        pa.Check(lambda d: d.lazyframe.select(
            (pl.col("paid_order_count") == 0) == pl.col("avg_order_value").is_null()),
            name="avg_order_value NULL exactly when no paid order"),
    ),
)
