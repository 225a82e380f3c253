"""gold.daily_summary: the day of each tenant in one row."""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from lakehouse_assets.assets.gold.common import EVERY_DAY, MONEY, SAME_DAY, GoldTable, reads
from lakehouse_assets.assets.gold.daily_revenue import revenue_by_day_sql


def sql(first, last) -> str:
    in_run = f"BETWEEN DATE '{first}' AND DATE '{last}'"
    return f"""
        WITH new_customers AS (
          SELECT CAST(created_at AS DATE) AS date, tenant_id, count(*) AS new_customers
          FROM customers WHERE CAST(created_at AS DATE) {in_run} GROUP BY ALL
        ),
        revenue AS (
          SELECT date, tenant_id, order_count AS orders,
                 gross_revenue - refunded_amount AS net_revenue
          FROM ({revenue_by_day_sql(first, last, with_items=False)})
        ),
        day_events AS (
          SELECT CAST(occurred_at AS DATE) AS date, tenant_id, count(*) AS events
          FROM events WHERE CAST(occurred_at AS DATE) {in_run} GROUP BY ALL
        ),
        active AS (
          SELECT date, tenant_id, count(DISTINCT customer_id) AS active_customers
          FROM (
            SELECT CAST(occurred_at AS DATE) AS date, tenant_id, customer_id FROM events
            WHERE CAST(occurred_at AS DATE) {in_run}
            UNION ALL
            SELECT CAST(created_at AS DATE), tenant_id, customer_id FROM orders
            WHERE CAST(created_at AS DATE) {in_run}
          ) GROUP BY ALL
        ),
        paid AS (
          SELECT CAST(paid_at AS DATE) AS date, tenant_id, count(*) AS invoices_paid,
                 coalesce(sum(amount), 0) AS invoices_paid_amount
          FROM invoices WHERE status = 'paid' AND CAST(paid_at AS DATE) {in_run} GROUP BY ALL
        ),
        grain AS (
          SELECT date, tenant_id FROM new_customers UNION SELECT date, tenant_id FROM revenue
          UNION SELECT date, tenant_id FROM day_events UNION SELECT date, tenant_id FROM active
          UNION SELECT date, tenant_id FROM paid
        )
        SELECT * FROM (
          SELECT g.date, g.tenant_id,
            coalesce(n.new_customers, 0) AS new_customers,
            coalesce(r.orders, 0) AS orders,
            coalesce(r.net_revenue, 0) AS net_revenue,
            coalesce(e.events, 0) AS events,
            coalesce(a.active_customers, 0) AS active_customers,
            coalesce(p.invoices_paid, 0) AS invoices_paid,
            coalesce(p.invoices_paid_amount, 0) AS invoices_paid_amount
          FROM grain g
          LEFT JOIN new_customers n USING (date, tenant_id)
          LEFT JOIN revenue r USING (date, tenant_id)
          LEFT JOIN day_events e USING (date, tenant_id)
          LEFT JOIN active a USING (date, tenant_id)
          LEFT JOIN paid p USING (date, tenant_id)
        )
        WHERE new_customers <> 0 OR orders <> 0 OR net_revenue <> 0 OR events <> 0
           OR active_customers <> 0 OR invoices_paid <> 0 OR invoices_paid_amount <> 0
    """


SCHEMA = {
    "date": pl.Date,
    "tenant_id": pl.Int64,
    "new_customers": pl.Int64,
    "orders": pl.Int64,
    "net_revenue": MONEY,
    "events": pl.Int64,
    "active_customers": pl.Int64,
    "invoices_paid": pl.Int64,
    "invoices_paid_amount": MONEY,
}

COUNTS = ("new_customers", "orders", "events", "active_customers", "invoices_paid")

MODEL = pa.DataFrameSchema(
    {
        "date": pa.Column(pl.Date),
        "tenant_id": pa.Column(pl.Int64),
        **{c: pa.Column(pl.Int64, pa.Check.ge(0)) for c in COUNTS},
        "net_revenue": pa.Column(MONEY),
        "invoices_paid_amount": pa.Column(MONEY),
    },
    checks=[
        pa.Check(
            lambda d: d.lazyframe.select(
                pl.any_horizontal([pl.col(c) != 0 for c in SCHEMA if c not in ("date", "tenant_id")])
            ),
            name="a row only where something is not 0",
        ),
    ],
    unique=["date", "tenant_id"],
    strict=True,
    name="gold.daily_summary",
)

DAILY_SUMMARY = GoldTable(
    name="daily_summary",
    description=(
        "One row per (date, tenant_id) with anything to show: new customers, orders, net "
        "revenue, events, active customers, invoices paid and their amount."
    ),
    inputs={
        "customers": reads(SAME_DAY, "tenant_id", "created_at"),
        "orders": reads(SAME_DAY, "id", "tenant_id", "customer_id", "status", "total_amount", "created_at"),
        "events": reads(SAME_DAY, "tenant_id", "customer_id", "occurred_at"),
        "invoices": reads(EVERY_DAY, "tenant_id", "status", "amount", "paid_at"),
    },
    sql=sql,
    schema=SCHEMA,
    model=MODEL,
    columns={
        "new_customers": "customers created on the date",
        "orders": "orders created on the date, any status",
        "net_revenue": "as in daily_revenue; 0 without orders",
        "events": "events on the date",
        "active_customers": "distinct non-NULL customer_id among events and orders of the date",
        "invoices_paid": "invoices with status paid and paid_at on the date",
        "invoices_paid_amount": "sum of their amount",
    },
)
