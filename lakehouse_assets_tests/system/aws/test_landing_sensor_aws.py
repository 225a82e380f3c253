"""The landing sensor in AWS mode: the landing zone an S3 prefix (moto), the warehouse whose key
state it foresees from Iceberg tables in Glue. Each tick's request is run, and after each run
the warehouse equals local mode's driven by the same files through the same ticks."""

import pytest

from lakehouse_assets.sources import TABLES_BY_NAME as T
from lakehouse_assets_tests.aws_lakehouse import AwsLakehouse, AwsMode, assert_same_as_local
from lakehouse_assets_tests.harness import Lakehouse, keys, only_request, span
from lakehouse_assets_tests.landing_builder import record, write
from lakehouse_assets_tests.moto_server import shared_aws  # noqa: F401 (fixture)
from lakehouse_assets_tests.sensors.test_landing_sensor import LOAD_TS, customer, order, seq

pytestmark = pytest.mark.system


class Twins:
    """One zone landed twice: as a local folder for local mode, on S3 for AWS mode."""

    def __init__(self, mode: AwsMode, tmp_path):
        self.folder = tmp_path / "landing"
        self.aws = AwsLakehouse(mode)
        self.local = Lakehouse(self.folder, tmp_path / "local.duckdb")

    def land(self, table: str, name: str, lines: list[str], gz: bool = False) -> None:
        path = write(self.folder, table, name, lines, gz=gz)
        self.aws.mode.put(path.relative_to(self.folder).as_posix(), path.read_bytes())

    def run(self, request) -> None:
        self.aws.run(request)
        self.local.tick_and_run()
        self.same()

    def same(self) -> None:
        assert_same_as_local(self.aws.mode.snapshot(), self.local.snapshot())


@pytest.fixture(scope="module")
def twins(shared_aws, tmp_path_factory):  # noqa: F811
    twins = Twins(AwsMode(shared_aws, "sensor").create(), tmp_path_factory.mktemp("sensor"))
    twins.land("core_customer", "LOAD00000001.csv", [record(T["core_customer"], "I", LOAD_TS, customer(1))])
    twins.land("core_order", "LOAD00000001.csv", [
        record(T["core_order"], "I", LOAD_TS, order(1)),
        record(T["core_order"], "I", LOAD_TS, order(2, created="2024-11-25 10:00:00")),
    ])
    return twins


def test_first_tick_requests_the_whole_zone_and_its_run_loads_it(twins):
    request = only_request(twins.aws.tick())
    assert span(request) == ("2024-11-01", "2024-12-01")
    assert {"bronze/core_order", "silver/orders", "gold/daily_revenue"} <= keys(request)
    twins.run(request)
    assert twins.aws.mode.snapshot()["silver.orders"].height == 2
    assert not twins.aws.tick().run_requests  # nothing new


def test_a_file_relanded_with_the_same_content_is_nothing_new(twins):
    [key] = [k for k in twins.aws.mode.landing_keys() if k.endswith("core_order/LOAD00000001.csv")]
    twins.aws.mode.put(key, (twins.folder / key).read_bytes())
    assert not twins.aws.tick().run_requests


def test_a_new_cdc_file_refreshes_the_days_of_the_keys_it_touches(twins):
    twins.land("core_order", "20241203-100000000.csv", [
        record(T["core_order"], "U", "2024-12-03 09:00:00",
               order(2, status="refunded", created="2024-11-25 10:00:00"), seq(1))])
    request = only_request(twins.aws.tick())
    assert span(request) == ("2024-11-25", "2024-12-03")  # order 2's day, the commit day
    assert {"silver/orders", "gold/daily_revenue"} <= keys(request)
    twins.run(request)
    orders = twins.aws.mode.snapshot()["silver.orders"]
    assert orders.filter(orders["id"] == 2)["status"].to_list() == ["refunded"]


def test_files_landing_out_of_name_order_are_all_seen(twins):
    twins.land("core_order", "20241205-100000000.csv",
               [record(T["core_order"], "U", "2024-12-05 09:00:00", order(1, status="shipped"), seq(5))])
    twins.run(only_request(twins.aws.tick()))
    # Lands later, but its name sorts earlier; another lands in the same second, gzip-compressed.
    twins.land("core_order", "20241204-100000000.csv",
               [record(T["core_order"], "U", "2024-12-04 09:00:00", order(1, status="delivered"), seq(4))])
    twins.land("core_order", "20241204-100000001.csv.gz", [
        record(T["core_order"], "U", "2024-12-04 09:00:01",
               order(2, status="delivered", created="2024-11-25 10:00:00"), seq(6))], gz=True)
    request = only_request(twins.aws.tick())
    assert request.tags["lakehouse/new_files"] == "2"
    twins.run(request)
    orders = twins.aws.mode.snapshot()["silver.orders"].sort("id")
    # Order 1: the 12-04 change is older than the 12-05 one already applied; order 2: it wins.
    assert orders["status"].to_list() == ["shipped", "delivered"]
    assert not twins.aws.tick().run_requests
