"""Bronze is the system of record: once a file's records are in bronze they stay, whatever the
landing zone later does (a lifecycle rule expiring the oldest files, a hand clean-up). Every
kind of run after the files are gone leaves the warehouse exactly as it was."""

import dataclasses
import random
import shutil
from datetime import date, datetime, timezone

import pytest
from dagster import build_schedule_context

from lakehouse_assets.runs import RANGE_END_TAG, RANGE_START_TAG
from lakehouse_assets.sample_data import generate_landing_zone
from lakehouse_assets.sensors.operations import daily_refresh
from lakehouse_assets.sources import SOURCE_TABLES, TABLES_BY_NAME
from lakehouse_assets_tests.harness import Lakehouse, assert_same, keys
from lakehouse_assets_tests.pipeline import table

pytestmark = pytest.mark.pipeline

FIRST, LAST = "2024-11-25", "2024-12-04"  # its last file is named after midnight


@pytest.fixture(scope="module")
def zone(tmp_path_factory):
    root = tmp_path_factory.mktemp("zone") / "landing"
    summary = generate_landing_zone(root, scale=0.02, seed=5, load_date=date(2024, 12, 1), cdc_days=3,
                                    history_days=6)
    assert summary.partition_range == f"{FIRST}...{LAST}"
    return root


@pytest.fixture(scope="module")
def built(zone, tmp_path_factory):
    """The zone ingested once by the landing sensor's run; each test gets a copy of it."""
    root = tmp_path_factory.mktemp("built")
    shutil.copytree(zone, root / "landing")
    lake = Lakehouse(root / "landing", root / "lakehouse.duckdb")
    lake.tick_and_run()
    return root, lake.cursor, lake.snapshot()


@pytest.fixture
def ingested(built, tmp_path):
    """A copy of the built lakehouse (zone, warehouse, the sensor's cursor; file times kept),
    then about a third of its files gone: every LOAD file and a random third of the CDC files."""
    root, cursor, before = built
    shutil.copytree(root / "landing", tmp_path / "landing")
    shutil.copy2(root / "lakehouse.duckdb", tmp_path / "lakehouse.duckdb")
    lake = Lakehouse(tmp_path / "landing", tmp_path / "lakehouse.duckdb", cursor=cursor)
    files = sorted(lake.landing.rglob("*.csv*"))
    rng = random.Random(7)
    gone = [f for f in files if f.name.startswith("LOAD") or rng.random() < 0.33]
    for f in gone:
        f.unlink()
    assert any(f.name.startswith("LOAD") for f in gone) and any(not f.name.startswith("LOAD") for f in gone)
    return lake, before, gone


def test_the_sensor_finds_nothing_to_do_and_keeps_everything(ingested):
    lake, before, _ = ingested
    assert not lake.tick().run_requests
    assert_same(lake.snapshot(), before)


def test_a_full_backfill_keeps_the_rows_of_files_that_are_gone(ingested):
    lake, before, gone = ingested
    result = lake.backfill(FIRST, LAST)
    assert_same(lake.snapshot(), before)
    bronze = next(e for e in result.get_asset_materialization_events()
                  if e.asset_key.to_user_string() == "bronze/core_order")
    kept = bronze.materialization.metadata["files_gone_rows_kept"].value
    assert kept == len([f for f in gone if f.parent.name == "core_order"])
    logs = [e.message for e in lake.instance.all_logs(result.run_id) if e.message]
    assert any("gone from the landing zone" in m and "rows are kept" in m for m in logs)


def test_a_backfill_of_early_days_keeps_them(ingested):
    lake, before, _ = ingested
    lake.backfill(FIRST, "2024-11-27")
    lake.backfill("2024-12-01", "2024-12-01")  # the day every LOAD file is filed under
    assert_same(lake.snapshot(), before)


def test_the_daily_schedule_keeps_them(ingested):
    lake, before, _ = ingested
    tick = datetime(2024, 12, 3, 0, 30, tzinfo=timezone.utc)  # yesterday and today: the zone's last days
    request = daily_refresh(build_schedule_context(scheduled_execution_time=tick))
    assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == ("2024-12-02", "2024-12-03")
    lake.backfill(request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG])
    assert_same(lake.snapshot(), before)


def test_a_declaration_change_replays_from_the_warehouse(ingested):
    lake, before, _ = ingested
    # A change of the declaration that changes no value (its description): the sensor asks for
    # a replay of the table from bronze and its rejects; the files gone are not needed.
    order = dataclasses.replace(TABLES_BY_NAME["core_order"], description="orders, described anew")
    lake.tables = tuple(order if t.name == "core_order" else t for t in SOURCE_TABLES)
    request = lake.tick_and_run()
    assert request is not None and "declaration of core_order changed" in request.tags["lakehouse/reason"]
    assert {"bronze/core_order", "silver/orders"} <= keys(request)
    assert_same(lake.snapshot(), before)
    assert not lake.tick().run_requests


def test_a_manifest_lists_what_is_gone(ingested):
    lake, _, gone = ingested
    result = lake.backfill(FIRST, LAST)
    check = next(e for e in result.get_asset_check_evaluations() if e.check_name == "ingested_files_still_landed")
    assert not check.passed
    listed = check.metadata["gone"].value
    assert sum(v["count"] for v in listed.values()) == len(gone)
    manifest = table(lake.warehouse, "bronze.landing_manifest")
    assert set(manifest["_source_file"]) >= {str(f.relative_to(lake.landing)) for f in gone}
