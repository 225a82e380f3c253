"""gold.subscription_mrr: active subscriptions and MRR movements per tenant and day."""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from lakehouse_assets.gold.table import FromDateOf, GoldTable, column, reads
from lakehouse_assets.schemas.types import PgType

# "status is not trialing": a NULL status is not trialing (IS DISTINCT FROM, not <>).
NOT_TRIALING = "s.status IS DISTINCT FROM 'trialing'"
ACTIVE = f"{NOT_TRIALING} AND s.started <= d AND (s.canceled IS NULL OR s.canceled > d)"
MEASURES = ("active_subscriptions", "mrr", "new_mrr", "churned_mrr")


def sql() -> str:
    return f"""
        SELECT * FROM (
          SELECT d AS date, s.tenant_id,
            count(*) FILTER (WHERE {ACTIVE}) AS active_subscriptions,
            coalesce(sum(s.mrr) FILTER (WHERE {ACTIVE}), 0) AS mrr,
            coalesce(sum(s.mrr) FILTER (WHERE {NOT_TRIALING} AND s.started = d), 0) AS new_mrr,
            coalesce(sum(s.mrr) FILTER (WHERE {NOT_TRIALING} AND s.canceled = d), 0) AS churned_mrr
          FROM _days
          JOIN (
            SELECT tenant_id, status, mrr, CAST(started_at AS DATE) AS started,
                   CAST(canceled_at AS DATE) AS canceled
            FROM subscriptions
          ) s ON s.started <= d OR s.canceled = d
          GROUP BY ALL
        )
        WHERE {" OR ".join(f"{m} <> 0" for m in MEASURES)}
    """


ge0 = pa.Check.ge(0)

SUBSCRIPTION_MRR = GoldTable(
    name="subscription_mrr",
    description=(
        "One row per (date, tenant_id) with anything to show: subscriptions active that day, "
        "their MRR, MRR started and MRR churned that day. Reads every subscription."
    ),
    columns=(
        column("date", PgType.DATE),
        column("tenant_id", PgType.BIGINT),
        column("active_subscriptions", PgType.BIGINT,
               "not trialing, started on or before the date, not canceled on or before it", ge0),
        column("mrr", PgType.MONEY, "sum of mrr of the active subscriptions", ge0),
        column("new_mrr", PgType.MONEY, "sum of mrr of non-trialing subscriptions started that day", ge0),
        column("churned_mrr", PgType.MONEY, "sum of mrr of non-trialing subscriptions canceled that day", ge0),
    ),
    inputs=(
        reads("subscriptions", FromDateOf(("started_at", "canceled_at")),
              "tenant_id", "status", "mrr", "started_at", "canceled_at"),
    ),
    sql=sql,
    unique=("date", "tenant_id"),
    checks=(
        pa.Check(lambda d: d.lazyframe.select(pl.any_horizontal([pl.col(m) != 0 for m in MEASURES])),
                 name="a row only where something is not 0"),
    ),
)
