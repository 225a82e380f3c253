"""One daily partitioning for every table, from LAKEHOUSE_PARTITIONS_START."""

from __future__ import annotations

from datetime import date

from dagster import DailyPartitionsDefinition

from lakehouse_assets.settings import settings

# end_offset=1: today's partition exists, so today's CDC reaches gold today.
daily_partitions = DailyPartitionsDefinition(
    start_date=settings().partitions_start.isoformat(), timezone="UTC", end_offset=1
)


def first_partition() -> date:
    return date.fromisoformat(daily_partitions.get_first_partition_key())


def last_partition() -> date:
    return date.fromisoformat(daily_partitions.get_last_partition_key())
