"""What the landing sensor requests after a CDC drop, executed, gives exactly the warehouse a
full rebuild gives: the impact analysis misses no stale partition."""

from datetime import datetime, timezone

from dagster import materialize

from lakehouse_assets.sample_data import generate_landing_zone, write_cdc_drop
from lakehouse_assets_tests.landing_builder import record, write
from lakehouse_assets_tests.pipeline import ALL_ASSETS, resources, run_pipeline
from lakehouse_assets_tests.test_end_to_end import snapshot
from lakehouse_assets_tests.test_landing_sensor import Sensor, only_request
from lakehouse_assets.sources import TABLES_BY_NAME as T


def execute(request, landing, warehouse, instance):
    """Run a sensor's request the way the daemon would: its assets, checks and range tags."""
    result = materialize(
        ALL_ASSETS,
        selection=list(request.asset_selection),
        resources=resources(landing, warehouse),
        instance=instance,
        tags=request.tags,
        raise_on_error=False,
    )
    assert result.success, [e.event_specific_data.error.to_string()[:2000] for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    return result


def test_sensor_runs_after_drops_equal_a_full_rebuild(tmp_path):
    landing = tmp_path / "landing"
    summary = generate_landing_zone(landing, scale=0.02, seed=11, dirty_rate=0.002)
    warehouse = tmp_path / "incremental.duckdb"
    sensor = Sensor(landing, warehouse)
    first, _, span = only_request(sensor.tick())
    assert span == tuple(summary.partition_range.split("..."))
    execute(first, landing, warehouse, sensor.instance)

    # A realistic drop (status changes, new orders and items, deletes) and a hand-made one:
    # an update that moves an order to another day, and a key-only delete of a customer.
    write_cdc_drop(landing, 0.02, 11, datetime(2024, 12, 10, 23, 0, tzinfo=timezone.utc))
    request, keys, _ = only_request(sensor.tick())
    assert {"silver/orders", "gold/daily_revenue"} <= keys
    execute(request, landing, warehouse, sensor.instance)

    orders = snapshot(warehouse)["silver.orders"]
    moved = orders.row(0, named=True)
    customer = snapshot(warehouse)["silver.customers"].row(0, named=True)
    values = {c: moved[c] for c in T["core_order"].column_names}
    values["created_at"] = values["updated_at"] = "2024-12-10 12:00:00"  # a new business day
    values["status"] = "paid"
    seq = "9" * 35
    write(landing, "core_order", "20241210-235900000.csv",
          [record(T["core_order"], "U", "2024-12-10 23:58:00", values, seq)])
    write(landing, "core_customer", "20241210-235900000.csv",
          [record(T["core_customer"], "D", "2024-12-10 23:58:01", {"id": customer["id"]}, seq)])
    request, keys, span = only_request(sensor.tick())
    assert {"silver/orders", "silver/customers", "gold/customer_segments"} <= keys
    execute(request, landing, warehouse, sensor.instance)

    rebuilt = tmp_path / "rebuilt.duckdb"
    assert run_pipeline(landing, rebuilt, *summary.partition_range.split("...")).success
    incremental, full = snapshot(warehouse), snapshot(rebuilt)
    assert incremental.keys() == full.keys()
    for name in full:
        assert incremental[name].equals(full[name]), name
    assert moved["id"] in snapshot(warehouse)["silver.orders"]["id"].to_list()
    assert customer["id"] not in snapshot(warehouse)["silver.customers"]["id"].to_list()
