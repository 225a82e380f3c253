"""A schema-drift fix works after the landing zone has expired the files: the rejected records
are read again from their raw text in `bronze.cdc_rejects`, not from the zone."""

import shutil
from dataclasses import replace

import pytest

from lakehouse_assets.sources import SOURCE_TABLES, TABLES_BY_NAME, Column, PgType
from lakehouse_assets_tests.harness import Lakehouse, assert_same, keys
from lakehouse_assets_tests.landing_builder import field, record, write
from lakehouse_assets_tests.pipeline import table

pytestmark = pytest.mark.pipeline

ORDER = TABLES_BY_NAME["core_order"]
CUSTOMER = TABLES_BY_NAME["core_customer"]
ORDER_AFTER = replace(ORDER, columns=(*ORDER.columns, Column("coupon_code", PgType.TEXT, added_later=True)))
TABLES_AFTER = tuple(ORDER_AFTER if t.name == ORDER.name else t for t in SOURCE_TABLES)


def order(id, status="paid", created="2024-11-20 10:00:00"):
    return {"id": id, "tenant_id": 1, "customer_id": 1, "status": status, "currency": "EUR",
            "total_amount": "10.00", "created_at": created, "updated_at": created}


def drifted(op, ts, values, coupon, seq):
    """A record of the drifted layout: the table's columns, the new one, then _dms_seq."""
    return ",".join(field(v) for v in [op, ts, *(values[c] for c in ORDER.column_names), coupon, seq])


@pytest.fixture
def zone(tmp_path):
    root = tmp_path / "landing"
    write(root, CUSTOMER, "LOAD00000001.csv", [record(CUSTOMER, "I", "2024-11-20 00:00:00", {
        "id": 1, "tenant_id": 1, "email": "a@x.io", "full_name": "A", "country": "DE",
        "attributes": "{}", "created_at": "2024-11-20 09:00:00", "updated_at": "2024-11-20 09:00:00"})])
    write(root, ORDER, "LOAD00000001.csv", [
        record(ORDER, "I", "2024-11-20 00:00:00", order(1)),
        record(ORDER, "I", "2024-11-20 00:00:00", order(2, created="2024-11-21 10:00:00")),
    ])
    write(root, ORDER, "20241202-080000000.csv", [  # the source gained coupon_code
        drifted("U", "2024-12-02 07:00:00", order(2, status="shipped", created="2024-11-21 10:00:00"),
                "WELCOME10", "2".rjust(35, "0")),
        drifted("I", "2024-12-02 07:30:00", order(3, created="2024-12-02 07:29:00"), "", "3".rjust(35, "0")),
        record(ORDER, "U", "2024-12-02 07:40:00", order(1, status="shipped"), "4".rjust(35, "0")) + ",x,y",
    ])
    return root


def test_the_drift_fix_replays_from_rejects_with_every_landing_file_gone(zone, tmp_path):
    lake = Lakehouse(zone, tmp_path / "lakehouse.duckdb")
    lake.tick_and_run()
    rejects = table(lake.warehouse, "bronze.cdc_rejects")
    assert len(rejects) == 3 and rejects["reason"].str.starts_with("schema drift").sum() == 2

    reference = tmp_path / "reference"
    shutil.copytree(zone, reference)
    shutil.rmtree(zone / "public")  # the landing zone expires everything

    lake.tables = TABLES_AFTER  # the column is declared
    request = lake.tick_and_run()
    assert "declaration of core_order changed" in request.tags["lakehouse/reason"]
    assert {"bronze/core_order", "bronze/cdc_rejects", "silver/orders", "gold/daily_revenue"} <= keys(request)

    orders = table(lake.warehouse, "silver.orders", "id")
    assert orders.select("id", "status", "coupon_code").rows() == [
        (1, "paid", None), (2, "shipped", "WELCOME10"), (3, "paid", "")]
    left = table(lake.warehouse, "bronze.cdc_rejects")  # the record no declaration explains stays
    assert len(left) == 1 and left["reason"][0].startswith("wrong column count") and left["_source_row"][0] == 3

    # Exactly what reading the files with the column declared from the start gives.
    rebuilt = Lakehouse(reference, tmp_path / "rebuilt.duckdb", tables=TABLES_AFTER)
    rebuilt.tick_and_run()
    assert_same(lake.snapshot(), rebuilt.snapshot())
