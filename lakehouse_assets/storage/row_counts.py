"""Row counts for an output's materializations, true for every partition they are shown on."""

from __future__ import annotations

from dagster import OutputContext


def row_counts(context: OutputContext, written: int, total: int) -> dict:
    """Dagster copies an output's metadata onto the materialization of each partition it
    covers: the rows a range run wrote are no one partition's count, so they are the run's."""
    one_partition = not context.has_asset_partitions or len(context.asset_partition_keys) == 1
    return {
        "dagster/partition_row_count" if one_partition else "rows_written_by_run": written,
        "dagster/row_count": total,
    }
