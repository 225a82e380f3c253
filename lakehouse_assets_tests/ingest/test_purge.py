"""Deleting data is an explicit act: the purge job removes exactly what it names, leaves an
audit row, and no later run brings the rows back from files still in the landing zone."""

import shutil
from datetime import date

import polars as pl
import pytest

from lakehouse_assets.jobs.purge import purge_job
from lakehouse_assets.sample_data import generate_landing_zone
from lakehouse_assets_tests.harness import Lakehouse, assert_same
from lakehouse_assets_tests.pipeline import resources, table

pytestmark = pytest.mark.pipeline

FIRST, LAST = "2024-11-25", "2024-12-03"
TENANT_TABLES = ("core_customer", "core_product", "core_order", "core_orderitem", "core_event",
                 "core_subscription", "core_invoice")


@pytest.fixture(scope="module")
def zone(tmp_path_factory):
    root = tmp_path_factory.mktemp("zone") / "landing"
    generate_landing_zone(root, scale=0.02, seed=9, load_date=date(2024, 12, 1), cdc_days=3, history_days=6)
    return root


def copy_of(zone, tmp_path, name) -> Lakehouse:
    landing = tmp_path / name / "landing"
    shutil.copytree(zone, landing)
    return Lakehouse(landing, tmp_path / name / "lakehouse.duckdb")


def purge(lake: Lakehouse, **config):
    config = {"reason": "GDPR erasure #1234", "requested_by": "jane@ops", **config}
    result = purge_job.execute_in_process(
        run_config={"ops": {"purge_rows": {"config": config}}},
        resources={"warehouse": resources(lake.landing, lake.warehouse)["warehouse"]},
        instance=lake.instance,
    )
    assert result.success
    return result


def tenant_rows(lake: Lakehouse, tenant: int) -> dict[str, int]:
    out = {}
    for name in TENANT_TABLES:
        bronze = table(lake.warehouse, f"bronze.{name}")
        out[name] = int((bronze["tenant_id"] == str(tenant)).sum())
    for layer in ("silver.customers", "silver.orders", "silver.order_items", "silver.events", "gold.daily_revenue",
                  "gold.daily_summary", "gold.customer_segments", "gold.subscription_mrr"):
        out[layer] = int((table(lake.warehouse, layer)["tenant_id"] == tenant).sum())
    return out


def test_a_tenant_purge_removes_it_everywhere_and_is_audited(zone, tmp_path):
    lake = copy_of(zone, tmp_path, "purged")
    lake.tick_and_run()
    tenant = int(table(lake.warehouse, "silver.orders")["tenant_id"].mode()[0])
    before = tenant_rows(lake, tenant)
    assert all(before[t] > 0 for t in ("core_order", "silver.orders", "gold.daily_revenue"))

    purge(lake, column="tenant_id", value=str(tenant))
    after_purge = tenant_rows(lake, tenant)
    assert all(after_purge[t] == 0 for t in TENANT_TABLES)  # bronze: gone at once
    audit = table(lake.warehouse, "bronze.purge_log")
    assert set(audit["table_name"]) == set(TENANT_TABLES)
    assert audit.filter(pl.col("table_name") == "core_order")["bronze_rows"][0] == before["core_order"]
    assert set(audit["requested_by"]) == {"jane@ops"} and set(audit["reason"]) == {"GDPR erasure #1234"}
    manifest = table(lake.warehouse, "bronze.landing_manifest")
    assert manifest["purged"].sum() == sum(before[t] for t in TENANT_TABLES)
    assert (manifest["records"] == manifest["changes"] + manifest["rejects"] + manifest["purged"]).all()

    request = lake.tick_and_run()  # silver and gold follow, as a run with its reason
    assert request is not None and "left to write" in request.tags["lakehouse/reason"]
    assert all(v == 0 for v in tenant_rows(lake, tenant).values())

    # Nothing brings them back: a full backfill re-reads every file still in the zone.
    lake.backfill(FIRST, LAST)
    assert all(v == 0 for v in tenant_rows(lake, tenant).values())

    # And the result is what ingesting the zone with the purge in force from the start gives.
    fresh = copy_of(zone, tmp_path, "fresh")
    purge(fresh, column="tenant_id", value=str(tenant))
    fresh.tick_and_run()
    got, want = lake.snapshot(), fresh.snapshot()
    for snap in (got, want):
        snap.pop("bronze.purge_log")
    assert_same(got, want)


def test_a_bad_load_is_purged_by_file_and_never_read_again(zone, tmp_path):
    lake = copy_of(zone, tmp_path, "file")
    lake.tick_and_run()
    path = sorted((lake.landing / "public" / "core_order").glob("2024*.csv"))[0]
    relative = str(path.relative_to(lake.landing))
    rows = int((table(lake.warehouse, "bronze.core_order")["_source_file"] == relative).sum())
    assert rows > 0
    purge(lake, column="_source_file", value=relative, table="core_order")
    assert not (table(lake.warehouse, "bronze.core_order")["_source_file"] == relative).any()
    lake.tick_and_run()
    path.write_bytes(path.read_bytes() + b"")  # landed again: still purged
    lake.backfill(FIRST, LAST)
    assert not (table(lake.warehouse, "bronze.core_order")["_source_file"] == relative).any()
    manifest = table(lake.warehouse, "bronze.landing_manifest").filter(pl.col("_source_file") == relative)
    assert manifest["purged"].sum() == rows and manifest["changes"].sum() == 0
    audit = table(lake.warehouse, "bronze.purge_log")
    assert audit.select("table_name", "column_name", "value", "bronze_rows").rows() == [
        ("core_order", "_source_file", relative, rows)]


def test_a_purge_needs_a_reason_and_who_asked(zone, tmp_path):
    lake = copy_of(zone, tmp_path, "refused")
    with pytest.raises(Exception, match="needs a reason"):
        purge_job.execute_in_process(
            run_config={"ops": {"purge_rows": {"config": {"column": "tenant_id", "value": "1", "reason": " ",
                                                          "requested_by": "x"}}}},
            resources={"warehouse": resources(lake.landing, lake.warehouse)["warehouse"]},
            instance=lake.instance,
        )
