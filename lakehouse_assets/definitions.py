"""The code location: every asset, check, sensor and resource, for the settings in force."""

from __future__ import annotations

from dagster import Definitions, colored_console_logger, in_process_executor

from lakehouse_assets.assets.bronze import bronze_landing
from lakehouse_assets.assets.gold import gold_assets
from lakehouse_assets.assets.silver import silver_assets
from lakehouse_assets.checks.reconcile import files_reconcile
from lakehouse_assets.checks.warnings import warning_checks
from lakehouse_assets.jobs.purge import purge_job
from lakehouse_assets.resources import resources_for
from lakehouse_assets.sensors.landing import landing_sensor
from lakehouse_assets.sensors.operations import (
    daily_refresh,
    freshness_checks,
    gold_freshness_sensor,
    run_failure_report,
)
from lakehouse_assets.settings import settings


def _maintenance() -> tuple[list, list]:
    """The store's own jobs and schedules: Iceberg tables (AWS mode) need maintenance, and take
    concurrent writers (the layer jobs of a fan-out backfill, jobs/fanout.py)."""
    if settings().environment != "aws":
        return [], []
    from lakehouse_assets.jobs.fanout import LAYER_JOBS
    from lakehouse_assets.storage.iceberg_maintenance import iceberg_maintenance_job, iceberg_maintenance_schedule

    return [iceberg_maintenance_job, *LAYER_JOBS], [iceberg_maintenance_schedule]


MAINTENANCE_JOBS, MAINTENANCE_SCHEDULES = _maintenance()


ASSETS = [bronze_landing, *silver_assets, *gold_assets]
CHECKS = [files_reconcile, *warning_checks, *freshness_checks]

defs = Definitions(
    assets=ASSETS,
    asset_checks=CHECKS,
    sensors=[landing_sensor, gold_freshness_sensor, run_failure_report],
    schedules=[daily_refresh, *MAINTENANCE_SCHEDULES],
    jobs=[purge_job, *MAINTENANCE_JOBS],
    resources=resources_for(settings()),
    # One process writes the DuckDB file at a time: steps of a run go one after another.
    executor=in_process_executor,
    # A run's console shows what it says (INFO and up), not a DEBUG line for each of the
    # thousands of per-partition events of a range run; the UI keeps every event.
    loggers={"console": colored_console_logger.configured({"log_level": "INFO"})},
)
