"""The whole lakehouse over a generated landing zone: all assets and checks green, reruns
change nothing, a file landed twice is nothing new. (The contract's command line is
system/test_cli.py.)"""

import gzip
import shutil

import polars as pl
import pytest

from lakehouse_assets_tests.harness import assert_same, snapshot
from lakehouse_assets_tests.pipeline import run_pipeline

pytestmark = pytest.mark.pipeline

ENTITY = {
    "core_tenant": "tenants", "core_customer": "customers", "core_product": "products",
    "core_order": "orders", "core_orderitem": "order_items", "core_event": "events",
    "core_subscription": "subscriptions", "core_invoice": "invoices",
}


@pytest.fixture(scope="module")
def zone(small_zone, tmp_path_factory):
    """The module's own copy of the zone (a test lands a file in it)."""
    root = tmp_path_factory.mktemp("e2e") / "landing"
    shutil.copytree(small_zone[0], root)
    return root, small_zone[1]


@pytest.fixture(scope="module")
def first_run(zone, tmp_path_factory):
    root, summary = zone
    warehouse = tmp_path_factory.mktemp("wh") / "lakehouse.duckdb"
    first, last = summary.partition_range.split("...")
    result = run_pipeline(root, warehouse, first, last)
    return result, warehouse, (first, last)


def test_every_asset_materializes_and_every_check_passes(first_run):
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
    for t in summary.tables:
        assert len(tables[f"silver.{ENTITY[t.table]}"]) == t.live_rows, t.table
        assert len(tables[f"bronze.{t.table}"]) == t.records, t.table
    for name in ("daily_revenue", "daily_funnel", "hourly_activity", "subscription_mrr",
                 "customer_segments", "daily_summary"):
        assert len(tables[f"gold.{name}"]) > 0, name


def test_rematerializing_changes_nothing(first_run, zone):
    _, warehouse, (first, last) = first_run
    before = snapshot(warehouse)
    again = run_pipeline(zone[0], warehouse, first, last)
    assert again.success
    after = snapshot(warehouse)
    assert before.keys() == after.keys()
    assert_same(after, before)


def test_landing_a_file_twice_changes_nothing(first_run, zone):
    """DMS restarts re-deliver a file under the same name: the same data, not new data."""
    _, warehouse, (first, last) = first_run
    root = zone[0]
    before = snapshot(warehouse)
    orders = sorted((root / "public" / "core_order").glob("2024*.csv"))
    copy = orders[0].with_name(orders[0].name + ".gz")
    copy.write_bytes(gzip.compress(orders[0].read_bytes()))
    try:
        assert run_pipeline(root, warehouse, first, last).success
    finally:
        copy.unlink()
    after = snapshot(warehouse)
    # The twin is a file seen, listed in the manifest as landed twice, with no record of its
    # own: no count changes anywhere.
    manifest = after.pop("bronze.landing_manifest")
    twin = manifest.filter(pl.col("_source_file") == str(copy.relative_to(root)))
    assert twin.select("records_in_file", "records", "changes", "rejects").rows() == [(0, 0, 0, 0)]
    assert twin["note"][0] == f"same content as {orders[0].relative_to(root)}, landed twice: not read again"
    others = manifest.filter(pl.col("_source_file") != twin["_source_file"][0])
    assert others.equals(before.pop("bronze.landing_manifest"))
    assert before.keys() == after.keys()
    assert_same(after, before)
