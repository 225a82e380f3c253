"""Values that look like SQL, through the whole pipeline into the DuckDB file (issue "Nothing
lost under bad files", item 6): unchanged, and no SQL run from them. (The reader's side is
landing/test_hostile_inputs.py.)"""

from __future__ import annotations

import json

import duckdb
import pytest

from lakehouse_assets.schemas.tables import ALL_SPECS
from lakehouse_assets.sources import TABLES_BY_NAME
from lakehouse_assets_tests.harness import failures
from lakehouse_assets_tests.landing_builder import SQL_VALUES, order_record, record, write
from lakehouse_assets_tests.pipeline import run_pipeline

pytestmark = pytest.mark.pipeline

ORDER = TABLES_BY_NAME["core_order"]
CUSTOMER = TABLES_BY_NAME["core_customer"]
TS = "2024-12-08 22:15:00"


def test_sql_looking_values_reach_duckdb_unchanged_and_run_no_sql(tmp_path):
    """The whole pipeline over a tiny landing zone (in a root and a warehouse path with shell
    and SQL characters) whose values are SQL payloads: bronze, silver, quarantine and rejects
    in the DuckDB file hold them unchanged, no payload ran (no extra table, schema, view or
    attached database, no file written by COPY) and every table is in bronze/silver/gold."""
    canary = tmp_path / "canary"
    canary.mkdir()
    copy_to = canary / "pwned.csv"
    payloads = SQL_VALUES + [
        f"'); COPY (SELECT 42) TO '{copy_to}'; --",
        f"\"; COPY (SELECT 42) TO '{copy_to}' (FORMAT csv); --",
        "'; CREATE TABLE main.pwned AS SELECT 1; --",
        "'; CREATE VIEW bronze.pwned AS SELECT 1; --",
        f"'; ATTACH '{canary / 'evil.duckdb'}' AS evil; --",
    ]
    root = tmp_path / "land $(touch PWNED); 'it''s' \"q\"" / "zone"
    warehouse = tmp_path / "wh; '$(x)' \"y\"" / "lake house.duckdb"
    orders = {
        str(k + 1): {"currency": p, "status": "paid" if k % 2 else p, "customer_id": str(k + 1)}
        for k, p in enumerate(payloads)
    }
    write(root, ORDER, "LOAD00000001.csv", [order_record(i, op="I", **v) for i, v in orders.items()])
    customers = {
        str(k + 1): {
            "id": str(k + 1), "tenant_id": "1", "email": p, "full_name": p[::-1], "country": p[:2],
            "attributes": json.dumps({"note": p, p: [p]}), "created_at": "2024-12-08 10:00:00",
            "updated_at": "2024-12-08 10:00:00",
        }
        for k, p in enumerate(payloads)
    }
    write(root, CUSTOMER, "LOAD00000001.csv", [record(CUSTOMER, "I", TS, v) for v in customers.values()])
    bad_op = payloads[0]
    rejected = order_record(999, op=bad_op, currency=payloads[1])
    write(root, ORDER, "20241208-221500123.csv", [rejected])

    result = run_pipeline(root, warehouse, "2024-12-08", "2024-12-08")
    assert result.success, failures(result)
    materialized = {tuple(e.asset_key.path) for e in result.get_asset_materialization_events()}

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        bronze = {r[0]: r for r in con.execute(
            "SELECT id, currency, status FROM bronze.core_order").fetchall()}
        assert {i: (i, v["currency"], v["status"]) for i, v in orders.items()} == bronze
        silver = dict(con.execute("SELECT CAST(id AS VARCHAR), currency FROM silver.orders").fetchall())
        quarantined = dict(con.execute(
            "SELECT CAST(id AS VARCHAR), status FROM silver.orders_quarantine").fetchall())
        for i, v in orders.items():
            if v["status"] == "paid":
                assert silver[i] == v["currency"]
            else:  # not an order status: quarantined, with the text unchanged
                assert quarantined[i] == v["status"] and i not in silver
        cust = {str(r[0]): r[1:] for r in con.execute(
            "SELECT id, email, full_name, country, attributes FROM silver.customers").fetchall()}
        assert set(cust) == set(customers)
        for i, v in customers.items():
            email, full_name, country, attributes = cust[i]
            assert (email, full_name, country) == (v["email"], v["full_name"], v["country"])
            assert json.loads(attributes) == json.loads(v["attributes"])
        rejects = con.execute("SELECT raw_text, reason FROM bronze.cdc_rejects").fetchall()
        assert [r[0] for r in rejects] == [rejected]
        assert bad_op in rejects[0][1]

        tables = set(con.execute("SELECT schema_name, table_name FROM duckdb_tables()").fetchall())
        # the assets' tables, and the run's bookkeeping (key state, marks, ...): declared ones only
        bookkeeping = {(s, n) for s, n in tables if s == "state"}
        assert bookkeeping and bookkeeping <= {(r.layer, r.name) for r in ALL_SPECS}, bookkeeping
        assert tables - bookkeeping == materialized, (tables - bookkeeping) ^ materialized
        assert {s for s, _ in tables} == {"bronze", "silver", "gold", "state"}
        views = con.execute("SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal").fetchall()
        assert views == []
        schemas = {r[0] for r in con.execute("SELECT schema_name FROM duckdb_schemas() WHERE NOT internal").fetchall()}
        assert schemas <= {"main", "bronze", "silver", "gold", "state"}, schemas
        databases = {r[0] for r in con.execute("SELECT database_name FROM duckdb_databases() WHERE NOT internal").fetchall()}
        assert "evil" not in databases and len(databases) == 1, databases
    finally:
        con.close()
    assert list(canary.iterdir()) == []
    assert not list(tmp_path.rglob("PWNED"))


# --- partition filters, identifiers and literals ----------------------------------------------
