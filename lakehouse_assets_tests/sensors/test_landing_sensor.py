"""The landing sensor, ticked with build_sensor_context over a temporary landing folder, and
the runs it asks for executed in-process, as the daemon would."""

import os
import time

import pytest

from lakehouse_assets.definitions import defs
from lakehouse_assets.sensors.cursor import Cursor
from lakehouse_assets.sources import TABLES_BY_NAME as T
from lakehouse_assets_tests.harness import Lakehouse, keys, only_request, span
from lakehouse_assets_tests.landing_builder import record, write

pytestmark = pytest.mark.pipeline

LOAD_TS = "2024-12-01 00:00:01"


def order(id, status="paid", created="2024-11-20 10:00:00", customer=1):
    return {"id": id, "tenant_id": 1, "customer_id": customer, "status": status,
            "currency": "EUR", "total_amount": "10.00", "created_at": created,
            "updated_at": created}


def customer(id, created="2024-11-01 10:00:00"):
    return {"id": id, "tenant_id": 1, "email": f"{id}@x.io", "full_name": "X", "country": "DE",
            "attributes": "{}", "created_at": created, "updated_at": created}


def seq(n):
    return str(n).rjust(35, "0")


@pytest.fixture
def lake(tmp_path):
    zone = tmp_path / "landing"
    write(zone, "core_customer", "LOAD00000001.csv", [record(T["core_customer"], "I", LOAD_TS, customer(1))])
    write(zone, "core_order", "LOAD00000001.csv", [
        record(T["core_order"], "I", LOAD_TS, order(1)),
        record(T["core_order"], "I", LOAD_TS, order(2, created="2024-11-25 10:00:00")),
    ])
    return Lakehouse(zone, tmp_path / "lakehouse.duckdb")


@pytest.fixture
def loaded(lake):
    lake.run(only_request(lake.tick()))
    return lake


def test_first_tick_requests_everything_the_zone_holds(lake):
    request = only_request(lake.tick())
    assert {"bronze/core_order", "bronze/core_customer", "bronze/landing_manifest", "bronze/cdc_rejects",
            "silver/orders", "silver/customers", "gold/daily_revenue", "gold/customer_segments",
            "gold/daily_summary"} <= keys(request)
    assert "gold/daily_funnel" not in keys(request)  # no events landed
    # From the earliest business date (customer 2024-11-01) to the load's commit date.
    assert span(request) == ("2024-11-01", "2024-12-01")
    assert request.tags["lakehouse/mode"] == "changes"
    assert request.asset_check_keys  # the checks of the selected assets run too
    assert request.run_key


def test_no_new_files_no_run(loaded):
    result = loaded.tick()
    assert not result.run_requests and "nothing new" in result.skip_reason.skip_message


def test_a_requested_file_is_not_requested_again_before_its_run(lake):
    lake.tick()
    assert not lake.tick().run_requests  # its run has not run yet: nothing new
    assert set(Cursor.decode(lake.cursor).requested) == {
        "public/core_customer/LOAD00000001.csv", "public/core_order/LOAD00000001.csv"}


def test_new_cdc_file_refreshes_the_days_of_the_keys_it_touches(loaded):
    write(loaded.landing, "core_order", "20241203-100000000.csv", [
        record(T["core_order"], "U", "2024-12-03 09:00:00", order(2, status="refunded",
               created="2024-11-25 10:00:00"), seq(1)),
    ])
    request = only_request(loaded.tick())
    # subscription_mrr too: it has a row for every day, and the zone now reaches 12-02 and
    # 12-03, which it was not computed for (a rebuild would compute them).
    assert keys(request) == {"bronze/core_order", "bronze/landing_manifest", "bronze/cdc_rejects",
                             "silver/orders", "silver/orders_quarantine", "gold/daily_revenue",
                             "gold/daily_summary", "gold/customer_segments", "gold/subscription_mrr"}
    # silver/gold: order 2's day (11-25) on; bronze: the commit day (12-03).
    assert span(request) == ("2024-11-25", "2024-12-03")


def test_relanded_file_with_same_content_is_nothing_new(loaded):
    path = loaded.landing / "public" / "core_order" / "LOAD00000001.csv"
    data = path.read_bytes()
    time.sleep(0.01)
    path.write_bytes(data)  # DMS restart: same name, same bytes, new mtime
    os.utime(path, ns=(time.time_ns(), time.time_ns()))
    assert not loaded.tick().run_requests
    assert "public/core_order/LOAD00000001.csv" in Cursor.decode(loaded.cursor).relanded
    assert not loaded.tick().run_requests  # and not read again to find that out


def test_changed_content_under_a_seen_name_is_new(loaded):
    write(loaded.landing, "core_order", "LOAD00000001.csv", [
        record(T["core_order"], "I", LOAD_TS, order(1)),
        record(T["core_order"], "I", LOAD_TS, order(3, created="2024-11-27 10:00:00")),
    ])
    request = only_request(loaded.tick())
    assert "silver/orders" in keys(request) and span(request)[0] <= "2024-11-25"  # order 2 leaves its day


def test_out_of_order_names_and_same_second_files_are_all_seen(loaded):
    write(loaded.landing, "core_order", "20241205-100000000.csv",
          [record(T["core_order"], "U", "2024-12-05 09:00:00", order(1, status="shipped"), seq(5))])
    loaded.run(only_request(loaded.tick()))
    # Lands later, but its name sorts earlier; another lands in the same second.
    write(loaded.landing, "core_order", "20241204-100000000.csv",
          [record(T["core_order"], "U", "2024-12-04 09:00:00", order(1, status="delivered"), seq(4))])
    write(loaded.landing, "core_order", "20241204-100000001.csv",
          [record(T["core_order"], "U", "2024-12-04 09:00:01", order(2, status="delivered",
                  created="2024-11-25 10:00:00"), seq(6))])
    request = only_request(loaded.tick())
    assert request.tags["lakehouse/new_files"] == "2"
    # Segments run from order 1's day through the newest day they were computed for (12-05).
    assert span(request) == ("2024-11-20", "2024-12-05")
    loaded.run(request)
    assert Cursor.decode(loaded.cursor).requested == {} or not loaded.tick().run_requests


def test_delete_with_only_the_key_refreshes_the_keys_old_day(loaded):
    write(loaded.landing, "core_order", "20241206-100000000.csv",
          [record(T["core_order"], "D", "2024-12-06 09:00:00", {"id": 1}, seq(9))])
    request = only_request(loaded.tick())
    assert {"silver/orders", "gold/daily_revenue"} <= keys(request)
    # Order 1 lived on 11-20 (the key state says so): that silver and gold day must lose it.
    assert span(request) == ("2024-11-20", "2024-12-06")


def test_file_spanning_midnight_touches_both_commit_days(loaded):
    write(loaded.landing, "core_order", "20241208-000100000.csv", [
        record(T["core_order"], "I", "2024-12-07 23:59:59.999999",
               order(7, created="2024-12-07 23:59:59"), seq(10)),
        record(T["core_order"], "I", "2024-12-08 00:00:00", order(8, created="2024-12-08 00:00:00"),
               seq(11)),
    ])
    request = only_request(loaded.tick())
    # Both commit days for bronze; segments and MRR reach the new days since the load (12-02 on).
    assert span(request) == ("2024-12-02", "2024-12-08")
    loaded.run(request)


def test_corrupt_file_does_not_fail_the_tick_and_goes_to_rejects(loaded):
    folder = loaded.landing / "public" / "core_order"
    (folder / "20241209-100000000.csv.gz").write_bytes(b"\x1f\x8b\x08 this is not gzip")
    (folder / "20241209-110000000.csv").write_bytes(b'I,"unterminated\n\xff\xfe,\x00\n')
    request = only_request(loaded.tick())
    assert "bronze/cdc_rejects" in keys(request)
    assert span(request)[1] <= "2024-12-09"
    loaded.run(request)


def test_files_that_are_not_landing_files_are_ignored(loaded):
    folder = loaded.landing / "public" / "core_order"
    (folder / "README.txt").write_text("not data")
    (folder / "20241210-100000000.csv").mkdir()  # a directory named like a file
    assert not loaded.tick().run_requests


def test_a_tick_waits_while_a_run_writes_the_warehouse(loaded):
    from lakehouse_assets.storage.warehouse import DuckDBWarehouse

    writer = DuckDBWarehouse(path=str(loaded.warehouse))
    writer.session()  # a run holds the file
    try:
        write(loaded.landing, "core_order", "20241211-100000000.csv",
              [record(T["core_order"], "U", "2024-12-11 09:00:00", order(1, status="shipped"), seq(12))])
        before = loaded.cursor
        result = loaded.tick()
        assert not result.run_requests and "writing the warehouse" in result.skip_reason.skip_message
        assert loaded.cursor == before
    finally:
        writer.release()
    assert only_request(loaded.tick())


def test_asset_keys_of_requests_exist_in_the_definitions(lake):
    request = only_request(lake.tick())
    all_keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert keys(request) <= all_keys


def test_a_backfill_leaves_nothing_for_a_key_born_and_deleted_within_it(lake):
    # Order 3 is inserted and deleted in the days the backfill writes: silver never holds it.
    write(lake.landing, "core_order", "20241203-100000000.csv", [
        record(T["core_order"], "I", "2024-12-03 09:00:00", order(3, created="2024-12-03 09:00:00"), seq(1)),
        record(T["core_order"], "D", "2024-12-03 10:00:00", {"id": 3}, seq(2)),
    ])
    lake.backfill("2024-11-01", "2024-12-03")
    result = lake.tick()
    # Nothing is left to write for it: no follow-up run (one after every backfill otherwise).
    assert not result.run_requests, [r.tags.get("lakehouse/reason") for r in result.run_requests]


def test_a_drop_on_days_gold_never_held_gives_every_customer_its_segment_row(lake):
    write(lake.landing, "core_customer", "LOAD00000001.csv", [
        record(T["core_customer"], "I", LOAD_TS, customer(1)), record(T["core_customer"], "I", LOAD_TS, customer(2))])
    lake.run(only_request(lake.tick()))  # gold holds days up to the load's commit day, 12-01
    write(lake.landing, "core_order", "20241205-100000000.csv", [
        record(T["core_order"], "U", "2024-12-05 09:00:00", order(1, status="shipped"), seq(1))])
    request = only_request(lake.tick())
    assert span(request)[1] == "2024-12-05"
    lake.run(request)
    segments = lake.snapshot()["gold.customer_segments"]
    new_days = segments.filter(segments["date"].cast(str) > "2024-12-01")
    # Customer 2 changed nothing, yet exists on those days: a day gold never held is whole.
    assert sorted(zip(new_days["date"].cast(str), new_days["customer_id"])) == [
        (d, c) for d in ("2024-12-02", "2024-12-03", "2024-12-04", "2024-12-05") for c in (1, 2)]
