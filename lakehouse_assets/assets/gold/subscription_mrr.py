"""gold.subscription_mrr: active subscriptions and MRR movements per tenant and day."""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from lakehouse_assets.assets.gold.common import EVERY_DAY, MONEY, GoldTable, reads, days_sql

# "status is not trialing": a NULL status is not trialing (IS DISTINCT FROM, not <>).
NOT_TRIALING = "s.status IS DISTINCT FROM 'trialing'"
ACTIVE = f"{NOT_TRIALING} AND s.started <= d AND (s.canceled IS NULL OR s.canceled > d)"


def sql(first, last) -> str:
    return f"""
        SELECT * FROM (
          SELECT d AS date, s.tenant_id,
            count(*) FILTER (WHERE {ACTIVE}) AS active_subscriptions,
            coalesce(sum(s.mrr) FILTER (WHERE {ACTIVE}), 0) AS mrr,
            coalesce(sum(s.mrr) FILTER (WHERE {NOT_TRIALING} AND s.started = d), 0) AS new_mrr,
            coalesce(sum(s.mrr) FILTER (WHERE {NOT_TRIALING} AND s.canceled = d), 0) AS churned_mrr
          FROM {days_sql(first, last)} days
          JOIN (
            SELECT tenant_id, status, mrr, CAST(started_at AS DATE) AS started,
                   CAST(canceled_at AS DATE) AS canceled
            FROM subscriptions
          ) s ON s.started <= d OR s.canceled = d
          GROUP BY ALL
        )
        WHERE active_subscriptions <> 0 OR mrr <> 0 OR new_mrr <> 0 OR churned_mrr <> 0
    """


SCHEMA = {
    "date": pl.Date,
    "tenant_id": pl.Int64,
    "active_subscriptions": pl.Int64,
    "mrr": MONEY,
    "new_mrr": MONEY,
    "churned_mrr": MONEY,
}

MODEL = pa.DataFrameSchema(
    {
        "date": pa.Column(pl.Date),
        "tenant_id": pa.Column(pl.Int64),
        "active_subscriptions": pa.Column(pl.Int64, pa.Check.ge(0)),
        "mrr": pa.Column(MONEY, pa.Check.ge(0)),
        "new_mrr": pa.Column(MONEY, pa.Check.ge(0)),
        "churned_mrr": pa.Column(MONEY, pa.Check.ge(0)),
    },
    checks=[
        pa.Check(
            lambda d: d.lazyframe.select(
                (pl.col("active_subscriptions") != 0)
                | (pl.col("mrr") != 0)
                | (pl.col("new_mrr") != 0)
                | (pl.col("churned_mrr") != 0)
            ),
            name="a row only where something is not 0",
        ),
    ],
    unique=["date", "tenant_id"],
    strict=True,
    name="gold.subscription_mrr",
)

SUBSCRIPTION_MRR = GoldTable(
    name="subscription_mrr",
    description=(
        "One row per (date, tenant_id) with anything to show: subscriptions active that day, "
        "their MRR, MRR started and MRR churned that day. Reads every subscription."
    ),
    inputs={
        "subscriptions": reads(EVERY_DAY, "tenant_id", "status", "mrr", "started_at", "canceled_at")
    },
    sql=sql,
    schema=SCHEMA,
    model=MODEL,
    columns={
        "active_subscriptions": (
            "not trialing, started on or before the date, not canceled on or before it"
        ),
        "mrr": "sum of mrr of the active subscriptions",
        "new_mrr": "sum of mrr of non-trialing subscriptions started that day",
        "churned_mrr": "sum of mrr of non-trialing subscriptions canceled that day",
    },
)
