"""What a run is asked to do, read off its partition range and tags.

A run of the landing sensor carries `lakehouse/mode=changes`: its steps write what changed
(new landing files, keys whose winner moved, gold cells made stale) within its days. Any other
run (a backfill from the UI or the command line, the daily schedule) writes its days whole.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from dagster import AssetExecutionContext

from lakehouse_assets.cdc.write_plan import CHANGES, DAYS

# Dagster's own tags for a run over a range of partitions (what a single-run backfill carries;
# RunRequest has no parameter for it).
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"

MODE_TAG = "lakehouse/mode"
LANDED_BEFORE_TAG = "lakehouse/landed_before"  # the sensor's tick: later files are the next tick's
TRIGGER_TAG = "lakehouse/trigger"
REASON_TAG = "lakehouse/reason"


def range_tags(first: date, last: date) -> dict[str, str]:
    return {RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat()}


def run_days(context: AssetExecutionContext) -> frozenset[date]:
    window = context.partition_time_window
    first, end = window.start.date(), window.end.date()
    return frozenset(first + timedelta(days=i) for i in range((end - first).days))


def run_mode(context: AssetExecutionContext) -> str:
    return CHANGES if context.run.tags.get(MODE_TAG) == CHANGES else DAYS


def landed_before(context: AssetExecutionContext) -> datetime | None:
    raw = context.run.tags.get(LANDED_BEFORE_TAG)
    return datetime.fromisoformat(raw) if raw else None
