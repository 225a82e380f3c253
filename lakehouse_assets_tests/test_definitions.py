"""The code location loads, and the catalog says what every asset is (issue: catalog)."""

import pytest
from dagster import AssetKey, Definitions
from dagster._core.definitions.backfill_policy import BackfillPolicyType

from lakehouse_assets.definitions import defs
from lakehouse_assets.sources import SOURCE_TABLES

pytestmark = pytest.mark.unit


def graph():
    return defs.resolve_asset_graph()


def test_definitions_load():
    Definitions.validate_loadable(defs)


def test_every_table_of_the_contract_is_an_asset():
    keys = {k.to_user_string() for k in graph().get_all_asset_keys()}
    expected = {f"bronze/{t.name}" for t in SOURCE_TABLES} | {"bronze/cdc_rejects", "bronze/landing_manifest"}
    expected |= {f"silver/{t.entity}" for t in SOURCE_TABLES}
    expected |= {f"silver/{t.entity}_quarantine" for t in SOURCE_TABLES}
    expected |= {f"gold/{n}" for n in ("daily_revenue", "daily_funnel", "hourly_activity",
                                       "subscription_mrr", "customer_segments", "daily_summary")}
    assert keys == expected


def test_every_asset_is_catalogued_partitioned_and_single_run():
    g = graph()
    for key in g.get_all_asset_keys():
        node = g.get(key)
        name = key.to_user_string()
        assert node.description, name
        assert node.group_name == key.path[0], name
        assert node.owners == ["team:data-platform"], name
        assert {"duckdb", "polars"} <= set(node.kinds), name
        assert "dagster/column_schema" in node.metadata, name
        assert node.metadata["partition_expr"], name
        assert node.partitions_def is not None and node.partitions_def.get_cron_schedule() == "0 0 * * *", name
        assert node.backfill_policy.policy_type == BackfillPolicyType.SINGLE_RUN, name


def test_every_table_has_a_pandera_check_and_silver_gold_block():
    g = graph()
    specs = [g.get_check_spec(k) for k in g.asset_check_keys]
    checks = {(c.asset_key, c.name): c for c in specs}
    for key in g.get_all_asset_keys():
        spec = checks[(key, "pandera_schema")]
        assert spec.blocking == (key.path[0] in ("silver", "gold")), key
    for t in SOURCE_TABLES:
        assert (AssetKey(["bronze", t.name]), "records_reconcile") in checks
        assert (AssetKey(["bronze", t.name]), "no_schema_drift") in checks
        assert (AssetKey(["silver", t.entity]), "keys_reconcile") in checks
    reconcile = checks[(AssetKey(["bronze", "landing_manifest"]), "files_reconcile")]
    assert reconcile.blocking
    # silver waits for it: a file whose records went missing stops silver
    for t in SOURCE_TABLES:
        assert AssetKey(["bronze", "landing_manifest"]) in g.get(AssetKey(["silver", t.entity])).parent_keys
    warn = {name for (_, name) in checks if "points_to" in name or "unique" in name}
    assert warn == {
        "customer_id_points_to_customers",
        "order_id_points_to_orders",
        "product_id_points_to_products",
        "email_unique_per_tenant_id",
    }


def test_days_of_an_asset_map_to_the_same_days_downstream():
    """A backfill of some days targets those days of every asset below (what a step reads is
    its own business: the key state, silver's days a gold cell counts on), never every later
    partition, as the old AllPartitionMapping from silver to gold did."""
    g = graph()
    days = ["2024-12-01", "2024-12-02", "2024-12-03"]
    for key in g.get_all_asset_keys():
        child = g.get(key)
        for parent_key in child.parent_keys:
            parent = g.get(parent_key)
            mapping = g.get_partition_mapping(key, parent_key)
            subset = parent.partitions_def.empty_subset().with_partition_keys(days)
            downstream = mapping.get_downstream_partitions_for_partitions(
                subset, parent.partitions_def, child.partitions_def)
            assert sorted(downstream.get_partition_keys()) == days, (parent_key, key, mapping)
