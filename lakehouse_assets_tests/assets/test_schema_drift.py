"""Schema drift (issue: nothing lost): the source table gains a column, and DMS files grow by
one field with no header to say so.

Detected per file: its records go to the rejects with a reason naming the table, the file and
the old and new counts, the table's `no_schema_drift` check fails and the run log says the
same; other tables go on. Replayed once the declaration gains the column (`added_later=True`,
since older files lack it): the landing sensor sees the declaration changed and reads the
table's files again, so the rejected records reach bronze and silver with the new column,
exactly as if the column had always been declared. The replay reads the rejected records
back from `bronze.cdc_rejects` (ingest/replay.py), in a run of the changed declarations
(`assets_for`) or in the one the landing sensor requests (the harness's `redeclare`).

Pinned reading of the contract: the new column arrives after the table's declared columns and
before `_dms_seq`, as DMS appends a source column to its table's columns.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from dagster import AssetCheckKey, AssetKey, DagsterInstance

from lakehouse_assets.sources import TABLES_BY_NAME, Column, PgType, SOURCE_TABLES
from lakehouse_assets_tests.harness import Lakehouse, keys, only_request, snapshot, span
from lakehouse_assets_tests.landing_builder import field, record, write
from lakehouse_assets_tests.pipeline import run_pipeline, table

pytestmark = pytest.mark.pipeline

ORDER = TABLES_BY_NAME["core_order"]
CUSTOMER = TABLES_BY_NAME["core_customer"]
ORDER_AFTER = replace(ORDER, columns=(*ORDER.columns, Column("coupon_code", PgType.TEXT, added_later=True)))
TABLES_AFTER = tuple(ORDER_AFTER if t.name == ORDER.name else t for t in SOURCE_TABLES)
SPAN = ("2024-11-20", "2024-12-02")
DRIFTED = "public/core_order/20241202-080000000.csv"


def order(id, status="paid", created="2024-11-20 10:00:00"):
    return {"id": id, "tenant_id": 1, "customer_id": 1, "status": status, "currency": "EUR",
            "total_amount": "10.00", "created_at": created, "updated_at": created}


def drifted(op, ts, values, coupon, seq):
    """A record of the drifted layout: the table's columns, the new one, then _dms_seq."""
    fields = [op, ts, *(values[c] for c in ORDER.column_names), coupon, seq]
    return ",".join(field(v) for v in fields)


@pytest.fixture(scope="module")
def landing(tmp_path_factory):
    root = tmp_path_factory.mktemp("drift") / "landing"
    write(root, CUSTOMER, "LOAD00000001.csv", [record(CUSTOMER, "I", "2024-11-20 00:00:00", {
        "id": 1, "tenant_id": 1, "email": "a@x.io", "full_name": "A", "country": "DE",
        "attributes": "{}", "created_at": "2024-11-20 09:00:00", "updated_at": "2024-11-20 09:00:00"})])
    write(root, ORDER, "LOAD00000001.csv", [
        record(ORDER, "I", "2024-11-20 00:00:00", order(1)),
        record(ORDER, "I", "2024-11-20 00:00:00", order(2, created="2024-11-21 10:00:00")),
    ])
    write(root, ORDER, "20241201-080000000.csv", [
        record(ORDER, "U", "2024-12-01 07:00:00", order(1, status="shipped"), "1".rjust(35, "0")),
    ])
    # After the source gained coupon_code: every record has one more field.
    write(root, ORDER, DRIFTED.rsplit("/", 1)[1], [
        drifted("U", "2024-12-02 07:00:00", order(2, status="shipped", created="2024-11-21 10:00:00"),
                "WELCOME10", "2".rjust(35, "0")),
        drifted("I", "2024-12-02 07:30:00", order(3, created="2024-12-02 07:29:00"), "", "3".rjust(35, "0")),
    ])
    return root


@pytest.fixture(scope="module")
def before(landing, tmp_path_factory):
    """The run with the declarations as they were."""
    warehouse = tmp_path_factory.mktemp("before") / "w.duckdb"
    instance = DagsterInstance.ephemeral()
    result = run_pipeline(landing, warehouse, *SPAN, instance=instance)
    return warehouse, result, instance


def test_drift_is_detected_per_file_and_its_records_kept_as_rejects(before):
    warehouse, result, instance = before
    rejects = table(warehouse, "bronze.cdc_rejects")
    assert rejects["_source_file"].to_list() == [DRIFTED, DRIFTED]
    assert rejects["_source_row"].to_list() == [1, 2]
    reason = rejects["reason"][0]
    for words in ("schema drift", DRIFTED, "12 fields per record", "core_order has 11",
                  "8 columns", "9 columns now", "1 more than declared"):
        assert words in reason, (words, reason)
    assert "WELCOME10" in rejects["raw_text"][0]  # kept as landed
    # The table's check fails and names the file; the run log says the same.
    [check] = [e for e in result.get_asset_check_evaluations()
               if e.asset_check_key == AssetCheckKey(AssetKey(["bronze", "core_order"]), "no_schema_drift")]
    assert not check.passed and DRIFTED in check.description
    assert check.metadata["files"].value == [
        {"_source_file": DRIFTED, "fields_expected": 11, "fields_found": 12, "rejects": 2}]
    logged = [e.user_message for e in instance.all_logs(result.run_id) if e.level >= 40]
    assert any("schema drift in core_order" in m and DRIFTED in m and "12 fields per record" in m
               and "the declaration 11" in m for m in logged), logged


def test_other_tables_and_the_older_records_go_on(before):
    warehouse, result, _ = before
    assert result.success  # the drift check fails as an ERROR without blocking the rest
    orders = table(warehouse, "silver.orders", "id")
    assert orders.select("id", "status").rows() == [(1, "shipped"), (2, "paid")]
    assert table(warehouse, "silver.customers").height == 1
    assert "coupon_code" not in orders.columns


def test_once_declared_the_column_replays_the_rejected_records(landing, before, tmp_path):
    warehouse, _, _ = before
    # Same warehouse, the declaration with the new column: the rejected records come in.
    assert run_pipeline(landing, warehouse, *SPAN, tables=TABLES_AFTER).success
    assert table(warehouse, "bronze.cdc_rejects").is_empty()
    orders = table(warehouse, "silver.orders", "id")
    assert orders.select("id", "status", "coupon_code").rows() == [
        (1, "shipped", None), (2, "shipped", "WELCOME10"), (3, "paid", "")]
    # ... exactly as if the column had always been declared.
    fresh = tmp_path / "fresh.duckdb"
    assert run_pipeline(landing, fresh, *SPAN, tables=TABLES_AFTER).success
    replayed, rebuilt = snapshot(warehouse), snapshot(fresh)
    assert replayed.keys() == rebuilt.keys()
    for name in rebuilt:
        # a grown table has the new column last; the rows are the same
        columns = sorted(rebuilt[name].columns)
        assert sorted(replayed[name].columns) == columns, name
        a, b = (f.select(columns).sort(columns, nulls_last=True) for f in (replayed[name], rebuilt[name]))
        assert a.equals(b), name


def test_files_landed_before_the_column_read_it_as_null_with_or_without_op(tmp_path):
    """A LOAD file may lack Op; after the column was added its old records then have as many
    fields as a new record without Op would: the first field tells."""
    write(tmp_path, ORDER, "LOAD00000001.csv", [
        record(ORDER, "I", "2024-11-20 00:00:00", order(1)),  # old layout, with Op
        record(ORDER, None, "2024-11-20 00:00:00", order(2)),  # old layout, without Op
        drifted(None, "2024-11-20 00:00:00", order(4), "X", None)[1:],  # new layout, without Op
    ])
    # one LOAD file, committed and created on 2024-11-20: one day
    result = run_pipeline(tmp_path, tmp_path / "w.duckdb", "2024-11-20", "2024-11-20", tables=TABLES_AFTER)
    assert result.success
    bronze = table(tmp_path / "w.duckdb", "bronze.core_order", "id")
    assert bronze.select("id", "_op", "coupon_code", "_seq").rows() == [
        ("1", "I", None, None), ("2", "I", None, None), ("4", "I", "X", None)]


def test_the_landing_sensor_replays_a_table_whose_declaration_changed(landing, tmp_path):
    """No command to run: the cursor remembers each declaration; a changed one makes its
    table's files new again, and the run covers the table's whole span."""
    lake = Lakehouse(landing, tmp_path / "w.duckdb")
    lake.run(only_request(lake.tick()))  # the first load, with the old declarations
    assert table(lake.warehouse, "bronze.cdc_rejects").height == 2
    assert not lake.tick().run_requests
    lake.redeclare(TABLES_AFTER)
    request = only_request(lake.tick())
    # (the reason is in the run's tags: the old `lakehouse/redeclared` tag is now one of them)
    assert "the declaration of core_order changed" in request.tags["lakehouse/reason"]
    assert {"bronze/core_order", "bronze/cdc_rejects", "bronze/landing_manifest", "silver/orders",
            "gold/daily_revenue"} <= keys(request)
    assert not {"bronze/core_customer", "silver/customers"} & keys(request)
    assert span(request) == SPAN  # every day of the table: its first business date to its last commit
    lake.run(request)
    assert not lake.tick().run_requests  # replayed once
    assert table(lake.warehouse, "bronze.cdc_rejects").is_empty()
    assert table(lake.warehouse, "silver.orders", "id")["coupon_code"].to_list() == [None, "WELCOME10", ""]
