"""Daily refresh schedule, gold freshness against the landing zone, run-failure visibility
(sensors/operations.py; here, not under sensors/, whose landing-sensor tests have their
own owner)."""

import os
import time
from datetime import datetime, timezone

import pytest
from dagster import AssetKey, AssetSelection, DagsterInstance, build_schedule_context, materialize

from lakehouse_assets.assets.gold import GOLD_TABLES
from lakehouse_assets.definitions import defs
from lakehouse_assets.landing.files import LocalLandingStore
from lakehouse_assets.runs import RANGE_END_TAG, RANGE_START_TAG
from lakehouse_assets.sensors.operations import (
    FRESHNESS_CHECK,
    daily_refresh,
    freshness,
    gold_freshness,
    newest_landing,
)
from lakehouse_assets_tests.pipeline import ALL_ASSETS, resources, run_pipeline

pytestmark = pytest.mark.pipeline
SPAN = ("2024-11-28", "2024-12-01")  # the tiny zone's: its first customer to its load's commit


def test_daily_refresh_covers_yesterday_and_today():
    context = build_schedule_context(
        scheduled_execution_time=datetime(2024, 12, 11, 0, 30, tzinfo=timezone.utc)
    )
    request = daily_refresh(context)
    assert request.tags[RANGE_START_TAG] == "2024-12-10"
    assert request.tags[RANGE_END_TAG] == "2024-12-11"
    assert request.run_key == "daily_refresh_2024-12-11"


def test_gold_is_stale_when_a_newer_file_lands(tmp_path, tiny_landing):
    landing = tiny_landing
    instance = DagsterInstance.ephemeral()
    store = LocalLandingStore(str(landing))
    key = next(k for k in defs.resolve_asset_graph().get_all_asset_keys()
               if k.to_user_string() == "gold/daily_revenue")
    fresh, meta = freshness(instance, newest_landing(store), key)
    assert not fresh and meta["last_materialized"] == "None"  # never materialized
    assert run_pipeline(landing, tmp_path / "wh.duckdb", *SPAN, instance=instance).success
    fresh, meta = freshness(instance, newest_landing(store), key)
    assert fresh, meta
    later = time.time() + 3600  # a file lands an hour after gold was built
    for f in (landing / "public" / "core_order").iterdir():
        os.utime(f, (later, later))
    fresh, meta = freshness(instance, newest_landing(store), key)
    assert not fresh and meta["lag_seconds"] > 3000 and meta["threshold_minutes"] == 15


def test_operations_are_on_by_default():
    sensors = {s.name: s for s in defs.sensors}
    assert {"landing_sensor", "gold_freshness_sensor", "run_failure_report"} <= set(sensors)
    for s in sensors.values():
        assert s.default_status.value == "RUNNING", s.name
    assert next(iter(defs.schedules)).default_status.value == "RUNNING"


def test_a_run_checks_the_freshness_of_the_gold_tables_it_refreshes(tmp_path, tiny_landing):
    landing = tiny_landing
    instance = DagsterInstance.ephemeral()
    everything = [*ALL_ASSETS, gold_freshness]
    result = run_pipeline(landing, tmp_path / "wh.duckdb", *SPAN, instance=instance, assets=everything)
    assert result.success

    def checked(result):
        return {e.asset_key.to_user_string(): e.passed
                for e in result.get_asset_check_evaluations() if e.check_name == FRESHNESS_CHECK}

    assert checked(result) == {f"gold/{t.name}": True for t in GOLD_TABLES}
    revenue = AssetKey(["gold", "daily_revenue"])
    one = materialize(everything, selection=AssetSelection.assets(revenue), instance=instance,
                      partition_key="2024-12-01", resources=resources(landing, tmp_path / "wh.duckdb"))
    assert checked(one) == {"gold/daily_revenue": True}  # only the table the run refreshed
