"""The landing sensor evaluated with build_sensor_context on a temporary landing folder."""

import os
import time

import pytest
from dagster import AssetKey, DagsterInstance, SensorResult, build_sensor_context

from lakehouse_assets.definitions import defs
from lakehouse_assets.resources import LandingZone
from lakehouse_assets.runs import RANGE_END_TAG, RANGE_START_TAG
from lakehouse_assets.sensors.cursor import Cursor
from lakehouse_assets.sensors.landing import landing_sensor
from lakehouse_assets.storage.warehouse import DuckDBWarehouse
from lakehouse_assets.sources import TABLES_BY_NAME as T
from lakehouse_assets_tests.landing_builder import record, write

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
def zone(tmp_path):
    write(tmp_path, "core_customer", "LOAD00000001.csv",
          [record(T["core_customer"], "I", LOAD_TS, customer(1))])
    write(tmp_path, "core_order", "LOAD00000001.csv", [
        record(T["core_order"], "I", LOAD_TS, order(1)),
        record(T["core_order"], "I", LOAD_TS, order(2, created="2024-11-25 10:00:00")),
    ])
    return tmp_path


class Sensor:
    """Ticks of the landing sensor over one folder, carrying the cursor like the daemon."""

    def __init__(self, root, warehouse):
        self.root = root
        self.warehouse = warehouse
        self.cursor = None
        self.instance = DagsterInstance.ephemeral()

    def tick(self) -> SensorResult:
        with build_sensor_context(
            instance=self.instance,
            cursor=self.cursor,
            definitions=defs,
            resources={"landing": LandingZone(uri=str(self.root)),
                       "warehouse": DuckDBWarehouse(path=str(self.warehouse))},
        ) as context:
            result = landing_sensor(context)
        self.cursor = result.cursor
        return result


def only_request(result: SensorResult):
    assert len(result.run_requests) == 1, result.skip_reason
    request = result.run_requests[0]
    keys = {k.to_user_string() for k in request.asset_selection}
    span = (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG])
    return request, keys, span


def test_first_tick_requests_everything_the_zone_holds(zone):
    request, keys, span = only_request(Sensor(zone).tick())
    assert {"bronze/core_order", "bronze/core_customer", "silver/orders", "silver/customers",
            "gold/daily_revenue", "gold/customer_segments", "gold/daily_summary"} <= keys
    assert "gold/daily_funnel" not in keys  # no events landed
    # From the earliest business date (customer 2024-11-01) to the load's commit date.
    assert span == ("2024-11-01", "2024-12-01")
    assert request.asset_check_keys  # the checks of the selected assets run too
    assert request.run_key


def test_no_new_files_no_run(zone):
    sensor = Sensor(zone)
    sensor.tick()
    cursor = sensor.cursor
    result = sensor.tick()
    assert not result.run_requests and "no new" in result.skip_reason.skip_message
    assert sensor.cursor == cursor


def test_new_cdc_file_refreshes_the_days_of_the_keys_it_touches(zone):
    sensor = Sensor(zone)
    sensor.tick()
    write(zone, "core_order", "20241203-100000000.csv", [
        record(T["core_order"], "U", "2024-12-03 09:00:00", order(2, status="refunded",
               created="2024-11-25 10:00:00"), seq(1)),
    ])
    _, keys, span = only_request(sensor.tick())
    assert keys == {"bronze/core_order", "bronze/landing_manifest", "silver/orders",
                    "silver/orders_quarantine", "gold/daily_revenue", "gold/daily_summary",
                    "gold/customer_segments"}
    # silver/gold: order 2's day (11-25); bronze: the commit day (12-03).
    assert span == ("2024-11-25", "2024-12-03")


def test_relanded_file_with_same_content_is_nothing_new(zone):
    sensor = Sensor(zone)
    sensor.tick()
    path = zone / "public" / "core_order" / "LOAD00000001.csv"
    data = path.read_bytes()
    time.sleep(0.01)
    path.write_bytes(data)  # DMS restart: same name, same bytes, new mtime
    os.utime(path, ns=(time.time_ns(), time.time_ns()))
    result = sensor.tick()
    assert not result.run_requests


def test_changed_content_under_a_seen_name_is_new(zone):
    sensor = Sensor(zone)
    sensor.tick()
    write(zone, "core_order", "LOAD00000001.csv", [
        record(T["core_order"], "I", LOAD_TS, order(1)),
        record(T["core_order"], "I", LOAD_TS, order(3, created="2024-11-27 10:00:00")),
    ])
    _, keys, span = only_request(sensor.tick())
    assert "silver/orders" in keys and span[0] <= "2024-11-27"


def test_out_of_order_names_and_same_second_files_are_all_seen(zone):
    sensor = Sensor(zone)
    write(zone, "core_order", "20241205-100000000.csv",
          [record(T["core_order"], "U", "2024-12-05 09:00:00", order(1, status="shipped"), seq(5))])
    sensor.tick()
    # Lands later, but its name sorts earlier; another lands in the same second.
    write(zone, "core_order", "20241204-100000000.csv",
          [record(T["core_order"], "U", "2024-12-04 09:00:00", order(1, status="delivered"), seq(4))])
    write(zone, "core_order", "20241204-100000001.csv",
          [record(T["core_order"], "U", "2024-12-04 09:00:01", order(2, status="delivered",
                  created="2024-11-25 10:00:00"), seq(6))])
    request, keys, span = only_request(sensor.tick())
    assert request.tags["lakehouse/new_files"] == "2"
    assert span == ("2024-11-20", "2024-12-04")
    assert len(decode_cursor(sensor.cursor)["files"]) == 5


def test_delete_with_only_the_key_refreshes_the_keys_old_day(zone):
    sensor = Sensor(zone)
    sensor.tick()
    write(zone, "core_order", "20241206-100000000.csv",
          [record(T["core_order"], "D", "2024-12-06 09:00:00", {"id": 1}, seq(9))])
    _, keys, span = only_request(sensor.tick())
    assert {"silver/orders", "gold/daily_revenue"} <= keys
    # Order 1 lived on 11-20: that silver and gold day must lose it.
    assert span == ("2024-11-20", "2024-12-06")


def test_file_spanning_midnight_touches_both_commit_days(zone):
    sensor = Sensor(zone)
    sensor.tick()
    write(zone, "core_order", "20241208-000100000.csv", [
        record(T["core_order"], "I", "2024-12-07 23:59:59.999999",
               order(7, created="2024-12-07 23:59:59"), seq(10)),
        record(T["core_order"], "I", "2024-12-08 00:00:00", order(8, created="2024-12-08 00:00:00"),
               seq(11)),
    ])
    _, keys, span = only_request(sensor.tick())
    assert span == ("2024-12-07", "2024-12-08")


def test_corrupt_file_does_not_fail_the_tick_and_goes_to_rejects(zone):
    sensor = Sensor(zone)
    sensor.tick()
    folder = zone / "public" / "core_order"
    (folder / "20241209-100000000.csv.gz").write_bytes(b"\x1f\x8b\x08 this is not gzip")
    (folder / "20241209-110000000.csv").write_bytes(b'I,"unterminated\n\xff\xfe,\x00\n')
    _, keys, span = only_request(sensor.tick())
    assert "bronze/cdc_rejects" in keys
    assert span[1] <= "2024-12-09"


def test_files_that_are_not_landing_files_are_ignored(zone):
    sensor = Sensor(zone)
    sensor.tick()
    folder = zone / "public" / "core_order"
    (folder / "README.txt").write_text("not data")
    (folder / "20241210-100000000.csv").mkdir()  # a directory named like a file
    result = sensor.tick()
    assert not result.run_requests


def test_asset_keys_of_requests_exist_in_the_definitions(zone):
    _, keys, _ = only_request(Sensor(zone).tick())
    all_keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert keys <= all_keys
    assert AssetKey(["bronze", "cdc_rejects"]).to_user_string() in keys
