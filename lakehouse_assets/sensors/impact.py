"""Which partitions new landing files make stale, per asset.

A new file changes bronze on its records' commit dates. In silver it changes the partitions of
every version of every key it touches: the new version's business date and the old one's
(an update may move a key; a key-only delete leaves the key's old partition to rewrite). Gold
partitions follow from what each gold table reads (CONTRACT section 5). The history of a
touched table comes from its landing files, so no warehouse is read: the same code serves the
local folder and S3.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

import polars as pl
from dagster import AssetKey

from lakehouse_assets.assets.bronze import MANIFEST_KEY, REJECTS_KEY, bronze_key
from lakehouse_assets.assets.silver import quarantine_key, silver_key
from lakehouse_assets.cdc.merge import business_date_sql, comparable_sql, key_sql
from lakehouse_assets.landing.files import LandingFile, LandingStore
from lakehouse_assets.landing.reader import read_table
from lakehouse_assets.sources import TABLES_BY_NAME, PgType, SourceTable
from lakehouse_assets.values import parse_sql, quote_ident, run_sql


def gold(name: str) -> AssetKey:
    return AssetKey(["gold", name])


@dataclass
class Impact:
    """Stale partitions (dates) per asset, and the dates from which on an asset is stale up to
    its newest partition (windows that reach forward: segments, MRR)."""

    dates: dict[AssetKey, set[date]] = field(default_factory=lambda: defaultdict(set))
    from_date: dict[AssetKey, date] = field(default_factory=dict)

    def add(self, key: AssetKey, dates) -> None:
        self.dates[key].update(d for d in dates if d is not None)

    def add_from(self, key: AssetKey, dates) -> None:
        dates = [d for d in dates if d is not None]
        if dates:
            self.from_date[key] = min([*dates, self.from_date.get(key, max(dates))])

    def keys(self) -> set[AssetKey]:
        return {k for k, v in self.dates.items() if v} | set(self.from_date)

    def span(self, first: date, last: date, newest: dict[AssetKey, date]) -> tuple[date, date] | None:
        """One partition range covering everything, clamped to the partitions that exist."""
        days: list[date] = [d for v in self.dates.values() for d in v]
        for key, start in self.from_date.items():
            days += [start, max(start, newest.get(key, start))]
        days = [min(max(d, first), last) for d in days]
        return (min(days), max(days)) if days else None


# What gold reads of a source table besides its business date (CONTRACT section 5).
DATE_COLUMNS = {"core_subscription": ("started_at", "canceled_at"), "core_invoice": ("paid_at",)}
REFERENCES = {"core_orderitem": ("order_id", "core_order")}  # an item counts on its order's day


def _history(store: LandingStore, table: SourceTable) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Every change of `table` with its key, business date and the dates/references gold reads;
    and its rejects. The business date falls back to the commit date where it does not parse,
    as for quarantine."""
    read = read_table(store, table, datetime.now(timezone.utc))
    keys = f"[{', '.join(key_sql(table))}]"
    extra = [
        f", CAST(({parse_sql(quote_ident(c), PgType.TIMESTAMPTZ)}) AS DATE) AS {quote_ident(c)}"
        for c in DATE_COLUMNS.get(table.name, ())
    ]
    if table.name in REFERENCES:
        col, target = REFERENCES[table.name]
        target_key = TABLES_BY_NAME[target].column("id").type
        extra.append(f", {comparable_sql(col, target_key)} AS __ref")
    history = run_sql(
        f"""
        SELECT {keys} AS __key, _source_file, _commit_ts,
               coalesce({business_date_sql(table)}, CAST(_commit_ts AS DATE)) AS _business_date
               {"".join(extra)}
        FROM changes
        """,
        changes=read.changes,
    )
    return history, read.rejects


def _versions_of(history: pl.DataFrame, keys: pl.Series) -> pl.DataFrame:
    return history.filter(pl.col("__key").is_in(keys.implode()))


def compute_impact(
    store: LandingStore, new_paths: dict[str, set[str]], tables: dict[str, SourceTable] = TABLES_BY_NAME
) -> Impact:
    """Stale partitions of every asset after the files `new_paths` (table -> paths) landed."""
    impact = Impact()
    touched: dict[str, pl.DataFrame] = {}
    histories: dict[str, pl.DataFrame] = {}
    for name, paths in sorted(new_paths.items()):
        table = tables[name]
        history, rejects = _history(store, table)
        histories[name] = history
        new = pl.col("_source_file").is_in(sorted(paths))
        days = history.filter(new)["_commit_ts"].dt.date()
        rejected_days = rejects.filter(new)["_partition_date"]
        impact.add(bronze_key(table), days)
        impact.add(REJECTS_KEY, rejected_days)
        # The manifest accounts for every record of a new file, wherever it went (a file
        # with no record, under its CDC name's date).
        named = [LandingFile(p, 0).cdc_date for p in paths]
        impact.add(MANIFEST_KEY, [*days, *rejected_days, *(date.fromisoformat(d) for d in named if d)])
        versions = _versions_of(history, history.filter(new)["__key"].unique())
        touched[table.entity] = versions
        impact.add(silver_key(table), versions["_business_date"])
        impact.add(quarantine_key(table), versions["_business_date"])

    def days(entity: str, column: str = "_business_date") -> set[date]:
        frame = touched.get(entity)
        return set() if frame is None else set(frame[column].drop_nulls())

    item_order_days: set[date] = set()
    if "order_items" in touched:
        orders = histories.get("core_order")
        if orders is None:
            orders, _ = _history(store, tables["core_order"])
        refs = touched["order_items"]["__ref"].drop_nulls().unique()
        ids = orders.filter(pl.col("__key").list.first().is_in(refs.implode()))
        item_order_days = set(ids["_business_date"])

    orders, events, customers = days("orders"), days("events"), days("customers")
    impact.add(gold("daily_revenue"), orders | item_order_days)
    impact.add(gold("daily_funnel"), events)
    impact.add(gold("hourly_activity"), events)
    impact.add(gold("daily_summary"), customers | orders | events | days("invoices", "paid_at"))
    # A customer or paid order counts on every later day (90-day window, last order date).
    impact.add_from(gold("customer_segments"), customers | orders)
    # A subscription counts on every day from its start (or cancellation) on.
    impact.add_from(
        gold("subscription_mrr"), days("subscriptions", "started_at") | days("subscriptions", "canceled_at")
    )
    return impact
