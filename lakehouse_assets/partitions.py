"""One daily partitioning for every table, and the dates a run covers."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
from dagster import AssetExecutionContext, DailyPartitionsDefinition

from lakehouse_assets.environment import partitions_start

# end_offset=1: today's partition exists, so today's CDC reaches gold today.
daily_partitions = DailyPartitionsDefinition(
    start_date=partitions_start().isoformat(), timezone="UTC", end_offset=1
)


def run_dates(context: AssetExecutionContext) -> tuple[date, date]:
    """First and last day (inclusive) of the partitions this run materializes."""
    window = context.partition_time_window
    return window.start.date(), (window.end - timedelta(days=1)).date()


def rows_in_run(frame: pl.DataFrame, day: pl.Expr, first: date, last: date) -> pl.DataFrame:
    """The rows whose day falls in first..last; the frame itself (no copy) when all do, as
    in a backfill of a table's whole span."""
    inside = day.is_between(first, last).fill_null(False)
    return frame if frame.select(inside.all()).item() else frame.filter(inside)
