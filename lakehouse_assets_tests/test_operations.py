"""Daily refresh schedule, gold freshness against the landing zone, run-failure visibility."""

import os
import time
from datetime import datetime, timezone

from dagster import AssetKey, AssetSelection, DagsterInstance, build_schedule_context, materialize
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from lakehouse_assets.definitions import defs
from lakehouse_assets.landing.files import LocalLandingStore
from lakehouse_assets.assets.gold import GOLD_TABLES
from lakehouse_assets.resources.landing import LandingZone
from lakehouse_assets.sensors.operations import (
    FRESHNESS_CHECK,
    daily_refresh,
    freshness,
    gold_freshness,
    newest_landing,
)
from lakehouse_assets.storage.duckdb_io import LakehouseDuckDBIOManager
from lakehouse_assets_tests.gold_fixture import tiny_zone
from lakehouse_assets_tests.pipeline import ALL_ASSETS, run_pipeline


def resources(landing, warehouse):
    return {"landing": LandingZone(uri=str(landing)),
            "io_manager": LakehouseDuckDBIOManager(database=str(warehouse))}


def test_daily_refresh_covers_yesterday_and_today():
    context = build_schedule_context(
        scheduled_execution_time=datetime(2024, 12, 11, 0, 30, tzinfo=timezone.utc)
    )
    request = daily_refresh(context)
    assert request.tags[ASSET_PARTITION_RANGE_START_TAG] == "2024-12-10"
    assert request.tags[ASSET_PARTITION_RANGE_END_TAG] == "2024-12-11"
    assert request.run_key == "daily_refresh_2024-12-11"


def test_gold_is_stale_when_a_newer_file_lands(tmp_path, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_FRESHNESS_MINUTES", "1")
    landing = tiny_zone(tmp_path / "landing")
    instance = DagsterInstance.ephemeral()
    store = LocalLandingStore(str(landing))
    key = next(k for k in defs.resolve_asset_graph().get_all_asset_keys()
               if k.to_user_string() == "gold/daily_revenue")
    fresh, meta = freshness(instance, newest_landing(store), key)
    assert not fresh and meta["last_materialized"] == "None"  # never materialized
    assert run_pipeline(landing, tmp_path / "wh.duckdb", "2024-11-01", "2024-12-02",
                        instance=instance).success
    fresh, meta = freshness(instance, newest_landing(store), key)
    assert fresh, meta
    later = time.time() + 3600  # a file lands an hour after gold was built
    for f in (landing / "public" / "core_order").iterdir():
        os.utime(f, (later, later))
    fresh, meta = freshness(instance, newest_landing(store), key)
    assert not fresh and meta["lag_seconds"] > 3000


def test_operations_are_on_by_default():
    sensors = {s.name: s for s in defs.sensors}
    assert {"landing_sensor", "gold_freshness_sensor", "run_failure_report"} <= set(sensors)
    for s in sensors.values():
        assert s.default_status.value == "RUNNING", s.name
    assert next(iter(defs.schedules)).default_status.value == "RUNNING"


def test_a_run_checks_the_freshness_of_the_gold_tables_it_refreshes(tmp_path):
    landing = tiny_zone(tmp_path / "landing")
    instance = DagsterInstance.ephemeral()
    everything = [*ALL_ASSETS, gold_freshness]
    result = run_pipeline(landing, tmp_path / "wh.duckdb", "2024-11-01", "2024-12-02",
                          instance=instance, assets=everything)
    assert result.success

    def checked(result):
        return {e.asset_key.to_user_string(): e.passed
                for e in result.get_asset_check_evaluations() if e.check_name == FRESHNESS_CHECK}

    assert checked(result) == {t.key.to_user_string(): True for t in GOLD_TABLES}
    revenue = AssetKey(["gold", "daily_revenue"])
    one = materialize(everything, selection=AssetSelection.assets(revenue), instance=instance,
                      partition_key="2024-12-01", resources=resources(landing, tmp_path / "wh.duckdb"))
    assert checked(one) == {"gold/daily_revenue": True}  # only the table the run refreshed
