"""The whole lakehouse over a generated landing zone: all assets and checks green, reruns
change nothing, and the contract's partition-range CLI works with only its variables set."""

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest

from lakehouse_assets.sample_data import generate_landing_zone
from lakehouse_assets_tests.pipeline import run_pipeline

SCALE = 0.02
PROJECT = Path(__file__).resolve().parents[1]


RUN_COLUMNS = ("_ingested_at", "_run_id", "last_seen_at")  # when and by which run, not what


def snapshot(warehouse: Path) -> dict[str, pl.DataFrame]:
    """Every bronze, silver and gold table, sorted, without the columns that record when and
    by which run a row was written (the bookkeeping schema `state` is not compared)."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        tables = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema IN ('bronze', 'silver', 'gold') ORDER BY 1, 2"
        ).fetchall()
        out = {}
        for schema, name in tables:
            frame = con.sql(f'SELECT * FROM "{schema}"."{name}"').pl()
            frame = frame.drop(*RUN_COLUMNS, strict=False)
            out[f"{schema}.{name}"] = frame.sort(frame.columns, nulls_last=True)
        return out
    finally:
        con.close()


@pytest.fixture(scope="module")
def zone(tmp_path_factory):
    root = tmp_path_factory.mktemp("landing")
    summary = generate_landing_zone(root, scale=SCALE, seed=7, dirty_rate=0.0)
    return root, summary


@pytest.fixture(scope="module")
def first_run(zone, tmp_path_factory):
    root, summary = zone
    warehouse = tmp_path_factory.mktemp("wh") / "lakehouse.duckdb"
    first, last = summary.partition_range.split("...")
    result = run_pipeline(root, warehouse, first, last)
    return result, warehouse, (first, last)


def test_every_asset_materializes_and_every_check_passes(first_run, zone):
    result, warehouse, _ = first_run
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    failed = [
        (e.asset_key.to_user_string(), e.check_name, e.metadata)
        for e in evaluations
        if not e.passed and e.check_name != "email_unique_per_tenant_id"
    ]
    assert failed == []
    # bronze+rejects+manifest schemas, per-table reconcile and drift, the manifest's storage
    # reconciliation, silver (schemas, keys), gold
    assert len(evaluations) >= 10 + 8 + 8 + 1 + 16 + 8 + 6
    assert any(e.check_name == "files_reconcile" and e.passed for e in evaluations)
    tables = snapshot(warehouse)
    assert len(tables) == 10 + 16 + 6
    assert tables["bronze.cdc_rejects"].is_empty()


def test_silver_holds_the_generated_live_rows(first_run, zone):
    _, warehouse, _ = first_run
    _, summary = zone
    tables = snapshot(warehouse)
    entity = {
        "core_tenant": "tenants", "core_customer": "customers", "core_product": "products",
        "core_order": "orders", "core_orderitem": "order_items", "core_event": "events",
        "core_subscription": "subscriptions", "core_invoice": "invoices",
    }
    for t in summary.tables:
        assert len(tables[f"silver.{entity[t.table]}"]) == t.live_rows, t.table
        assert len(tables[f"bronze.{t.table}"]) == t.records, t.table
    for name in ("daily_revenue", "daily_funnel", "hourly_activity", "subscription_mrr",
                 "customer_segments", "daily_summary"):
        assert len(tables[f"gold.{name}"]) > 0, name


def test_rematerializing_changes_nothing(first_run, zone):
    result, warehouse, (first, last) = first_run
    before = snapshot(warehouse)
    root, _ = zone
    again = run_pipeline(root, warehouse, first, last)
    assert again.success
    after = snapshot(warehouse)
    assert before.keys() == after.keys()
    for name in before:
        assert before[name].equals(after[name]), name


def test_landing_a_file_twice_changes_nothing(first_run, zone, tmp_path):
    """DMS restarts re-deliver a file under the same name: the same data, not new data."""
    result, warehouse, (first, last) = first_run
    root, _ = zone
    before = snapshot(warehouse)
    orders = sorted((root / "public" / "core_order").glob("2024*.csv"))
    copy = orders[0].with_name(orders[0].name + ".gz")
    import gzip

    copy.write_bytes(gzip.compress(orders[0].read_bytes()))
    try:
        assert run_pipeline(root, warehouse, first, last).success
    finally:
        copy.unlink()
    after = snapshot(warehouse)
    for name in before:
        assert before[name].equals(after[name]), name


def test_partition_range_cli_with_only_the_contract_variables(zone, tmp_path):
    """The contract's command, in a fresh DAGSTER_HOME, from outside the project folder."""
    root, summary = zone
    warehouse = tmp_path / "wh" / "lakehouse.duckdb"
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("LAKEHOUSE_", "DAGSTER_"))
    }
    env.update(
        DAGSTER_HOME=str(home),
        LAKEHOUSE_LANDING_URI=str(root),
        LAKEHOUSE_DUCKDB_PATH=str(warehouse),
        LAKEHOUSE_PARTITIONS_START="2024-01-01",
    )
    dagster = Path(sys.executable).with_name("dagster")
    proc = subprocess.run(
        [str(dagster), "asset", "materialize", "-m", "lakehouse_assets.definitions",
         "--select", "*", "--partition-range", summary.partition_range],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    tables = snapshot(warehouse)
    assert len(tables) == 10 + 16 + 6  # bronze (8, rejects, manifest), silver, gold
    assert len(tables["silver.orders"]) == summary.table("core_order").live_rows
