"""The landing sensor over an S3 landing prefix, on moto's S3 server on 127.0.0.1: the same
code as for a local folder (the store differs), the same decisions."""

import pytest

from lakehouse_assets.sources import TABLES_BY_NAME as T
from lakehouse_assets_tests.landing_builder import record, write
from lakehouse_assets_tests.moto_server import aws  # noqa: F401  (fixture)
from lakehouse_assets_tests.test_landing_sensor import (
    LOAD_TS,
    Sensor,
    customer,
    only_request,
    order,
    seq,
)

BUCKET = "landing-bucket"


@pytest.fixture
def s3_zone(aws, tmp_path):  # noqa: F811
    aws.reset()
    aws.create_bucket(BUCKET)
    write(tmp_path, "core_customer", "LOAD00000001.csv",
          [record(T["core_customer"], "I", LOAD_TS, customer(1))])
    write(tmp_path, "core_order", "LOAD00000001.csv", [
        record(T["core_order"], "I", LOAD_TS, order(1)),
        record(T["core_order"], "I", LOAD_TS, order(2, created="2024-11-25 10:00:00")),
    ])
    aws.upload_folder(tmp_path, BUCKET, "dms/cdc")
    return aws, tmp_path


def put(aws, tmp_path, table, name, lines, gz=False):
    path = write(tmp_path / "next", table, name, lines, gz=gz)
    aws.s3().put_object(Bucket=BUCKET, Key=f"dms/cdc/public/{table}/{name}", Body=path.read_bytes())


def test_s3_ticks_first_new_relanded_out_of_order_delete_midnight_corrupt(s3_zone):
    aws, tmp = s3_zone
    sensor = Sensor(f"s3://{BUCKET}/dms/cdc")
    _, keys, span = only_request(sensor.tick())  # first tick: everything
    assert span == ("2024-11-01", "2024-12-01") and "gold/daily_revenue" in keys
    assert not sensor.tick().run_requests  # no new files

    # Re-landed under the same key with the same bytes: same ETag, nothing new.
    body = aws.s3().get_object(Bucket=BUCKET, Key="dms/cdc/public/core_order/LOAD00000001.csv")
    aws.s3().put_object(Bucket=BUCKET, Key="dms/cdc/public/core_order/LOAD00000001.csv",
                        Body=body["Body"].read())
    assert not sensor.tick().run_requests

    # A file that sorts before one already seen, and a key-only delete.
    put(aws, tmp, "core_order", "20241206-100000000.csv",
        [record(T["core_order"], "U", "2024-12-06 09:00:00", order(2, status="shipped",
                created="2024-11-25 10:00:00"), seq(6))])
    sensor.tick()
    put(aws, tmp, "core_order", "20241205-100000000.csv",
        [record(T["core_order"], "D", "2024-12-05 09:00:00", {"id": 1}, seq(5))])
    _, keys, span = only_request(sensor.tick())
    assert span == ("2024-11-20", "2024-12-05")  # order 1's old day, the delete's commit day

    # A file spanning midnight, gzip-compressed.
    put(aws, tmp, "core_order", "20241208-000100000.csv.gz", [
        record(T["core_order"], "I", "2024-12-07 23:59:59", order(7, created="2024-12-07 23:59:59"), seq(10)),
        record(T["core_order"], "I", "2024-12-08 00:00:01", order(8, created="2024-12-08 00:00:01"), seq(11)),
    ], gz=True)
    _, _, span = only_request(sensor.tick())
    assert span == ("2024-12-07", "2024-12-08")

    # A corrupt file: the tick does not fail, its records go to rejects in the run.
    aws.s3().put_object(Bucket=BUCKET, Key="dms/cdc/public/core_order/20241209-100000000.csv.gz",
                        Body=b"\x1f\x8b not gzip at all")
    _, keys, _ = only_request(sensor.tick())
    assert "bronze/cdc_rejects" in keys
