"""What the landing sensor requests after a CDC drop, executed, gives exactly the warehouse a
full rebuild gives: the impact analysis misses no stale partition."""

from datetime import datetime, timezone

import pytest

from lakehouse_assets.sample_data import generate_landing_zone, write_cdc_drop
from lakehouse_assets.sources import TABLES_BY_NAME as T
from lakehouse_assets_tests.harness import Lakehouse, assert_same, keys, only_request, span
from lakehouse_assets_tests.landing_builder import record, write
from lakehouse_assets_tests.pipeline import table

pytestmark = pytest.mark.pipeline


def test_sensor_runs_after_drops_equal_a_full_rebuild(tmp_path):
    landing = tmp_path / "landing"
    summary = generate_landing_zone(landing, scale=0.02, seed=11, dirty_rate=0.002)
    lake = Lakehouse(landing, tmp_path / "incremental.duckdb")
    first = only_request(lake.tick())
    assert span(first) == tuple(summary.partition_range.split("..."))
    lake.run(first)

    # A realistic drop (status changes, new orders and items, deletes) and a hand-made one:
    # an update that moves an order to another day, and a key-only delete of a customer.
    write_cdc_drop(landing, 0.02, 11, datetime(2024, 12, 10, 23, 0, tzinfo=timezone.utc))
    request = lake.tick_and_run()
    assert {"silver/orders", "gold/daily_revenue"} <= keys(request)

    moved = table(lake.warehouse, "silver.orders", "id").row(0, named=True)
    customer = table(lake.warehouse, "silver.customers", "id").row(0, named=True)
    values = {c: moved[c] for c in T["core_order"].column_names}
    values["created_at"] = values["updated_at"] = "2024-12-10 12:00:00"  # a new business day
    values["status"] = "paid"
    seq = "9" * 35
    write(landing, "core_order", "20241210-235900000.csv",
          [record(T["core_order"], "U", "2024-12-10 23:58:00", values, seq)])
    write(landing, "core_customer", "20241210-235900000.csv",
          [record(T["core_customer"], "D", "2024-12-10 23:58:01", {"id": customer["id"]}, seq)])
    request = lake.tick_and_run()
    assert {"silver/orders", "silver/customers", "gold/customer_segments"} <= keys(request)

    rebuilt = Lakehouse(landing, tmp_path / "rebuilt.duckdb")
    rebuilt.backfill(*summary.partition_range.split("..."))
    assert_same(lake.snapshot(), rebuilt.snapshot())
    assert moved["id"] in table(lake.warehouse, "silver.orders")["id"].to_list()
    assert customer["id"] not in table(lake.warehouse, "silver.customers")["id"].to_list()
