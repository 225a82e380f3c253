"""gold.daily_summary: the day of each tenant in one row."""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from lakehouse_assets.gold.daily_revenue import revenue_by_day_sql
from lakehouse_assets.gold.table import GoldTable, OnBusinessDay, OnDateOf, column, in_days, reads
from lakehouse_assets.schemas.types import PgType

COUNTS = ("new_customers", "orders", "events", "active_customers", "invoices_paid")
MEASURES = ("new_customers", "orders", "net_revenue", "events", "active_customers", "invoices_paid",
            "invoices_paid_amount")


def sql() -> str:
    return f"""
        WITH new_customers AS (
          SELECT CAST(created_at AS DATE) AS date, tenant_id, count(*) AS new_customers
          FROM customers WHERE {in_days("created_at")} GROUP BY ALL
        ),
        revenue AS (
          SELECT date, tenant_id, order_count AS orders,
                 gross_revenue - refunded_amount AS net_revenue
          FROM ({revenue_by_day_sql(with_items=False)})
        ),
        day_events AS (
          SELECT CAST(occurred_at AS DATE) AS date, tenant_id, count(*) AS events
          FROM events WHERE {in_days("occurred_at")} GROUP BY ALL
        ),
        active AS (
          SELECT date, tenant_id, count(DISTINCT customer_id) AS active_customers
          FROM (
            SELECT CAST(occurred_at AS DATE) AS date, tenant_id, customer_id FROM events
            WHERE {in_days("occurred_at")}
            UNION ALL
            SELECT CAST(created_at AS DATE), tenant_id, customer_id FROM orders
            WHERE {in_days("created_at")}
          ) GROUP BY ALL
        ),
        paid AS (
          SELECT CAST(paid_at AS DATE) AS date, tenant_id, count(*) AS invoices_paid,
                 coalesce(sum(amount), 0) AS invoices_paid_amount
          FROM invoices WHERE status = 'paid' AND {in_days("paid_at")} GROUP BY ALL
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
        WHERE {" OR ".join(f"{m} <> 0" for m in MEASURES)}
    """


ge0 = pa.Check.ge(0)

DAILY_SUMMARY = GoldTable(
    name="daily_summary",
    description=(
        "One row per (date, tenant_id) with anything to show: new customers, orders, net "
        "revenue, events, active customers, invoices paid and their amount."
    ),
    columns=(
        column("date", PgType.DATE),
        column("tenant_id", PgType.BIGINT),
        column("new_customers", PgType.BIGINT, "customers created on the date", ge0),
        column("orders", PgType.BIGINT, "orders created on the date, any status", ge0),
        column("net_revenue", PgType.MONEY, "as in daily_revenue; 0 without orders"),
        column("events", PgType.BIGINT, "events on the date", ge0),
        column("active_customers", PgType.BIGINT,
               "distinct non-NULL customer_id among events and orders of the date", ge0),
        column("invoices_paid", PgType.BIGINT, "invoices with status paid and paid_at on the date", ge0),
        column("invoices_paid_amount", PgType.MONEY, "sum of their amount"),
    ),
    inputs=(
        reads("customers", OnBusinessDay(), "tenant_id", "created_at"),
        reads("orders", OnBusinessDay(), "id", "tenant_id", "customer_id", "status", "total_amount", "created_at"),
        reads("events", OnBusinessDay(), "tenant_id", "customer_id", "occurred_at"),
        reads("invoices", OnDateOf("paid_at"), "tenant_id", "status", "amount", "paid_at"),
    ),
    sql=sql,
    unique=("date", "tenant_id"),
    checks=(
        pa.Check(lambda d: d.lazyframe.select(pl.any_horizontal([pl.col(m) != 0 for m in MEASURES])),
                 name="a row only where something is not 0"),
    ),
)
