"""Silver from change records (CONTRACT 2 "Order of changes" and section 4), computed by hand.

Change frames come from the real path: landing files written with landing_builder, read with
read_table, then merged by the product's SQL merge (cdc/state.py, cdc/write_plan.py) and
written to silver and quarantine in a scratch warehouse session (silver_merge.py).
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timezone
from decimal import Decimal

import polars as pl
import pytest

from lakehouse_assets.sources import TABLES_BY_NAME, Column, PgType, SourceTable
from lakehouse_assets_tests.landing_builder import record, write
from lakehouse_assets_tests.silver_merge import silver_from_landing

pytestmark = pytest.mark.unit

ORDER = TABLES_BY_NAME["core_order"]
ITEM = TABLES_BY_NAME["core_orderitem"]
TENANT = TABLES_BY_NAME["core_tenant"]
EVENT = TABLES_BY_NAME["core_event"]
FIRST = date(2024, 1, 1)
INGESTED = datetime(2024, 12, 10, tzinfo=timezone.utc)
T1, T2, T3 = "2024-12-08 22:15:00", "2024-12-08 22:15:01.5", "2024-12-09 08:00:00.000001"
CDC1, CDC2 = "20241208-221500123.csv", "20241208-221600000.csv"
SEQ35 = "20241208221500123000000000000000061"


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def order(i, op="U", ts=T1, seq=None, **over) -> str:
    values = {
        "id": None if i is None else str(i),
        "tenant_id": "1",
        "customer_id": "10",
        "status": "paid",
        "currency": "EUR",
        "total_amount": "12.50",
        "created_at": "2024-12-08 10:00:00",
        "updated_at": "2024-12-08 11:00:00",
    }
    values.update(over)
    return record(ORDER, op, ts, values, seq)


def item(i, op="U", ts=T1, seq=None, **over) -> str:
    values = {
        "id": str(i),
        "tenant_id": "1",
        "order_id": "100",
        "product_id": "200",
        "quantity": "2",
        "unit_price": "3.50",
        "created_at": "2024-12-08 10:00:00",
        "updated_at": "2024-12-08 11:00:00",
    }
    values.update(over)
    return record(ITEM, op, ts, values, seq)


def tenant(i, op="U", ts=T1, seq=None, **over) -> str:
    values = {
        "id": str(i),
        "name": "Acme",
        "slug": "acme",
        "plan": "pro",
        "settings": '{"theme": "dark"}',
        "is_active": "true",
        "created_at": "2024-12-01 09:00:00",
        "updated_at": "2024-12-01 09:00:00",
    }
    values.update(over)
    return record(TENANT, op, ts, values, seq)


def delete(table: SourceTable, key: str, ts: str, seq=None) -> str:
    """A D record carrying only the primary key."""
    return record(table, "D", ts, {"id": key}, seq)


def silver(tmp_path, table: SourceTable, files: dict[str, list[str]]):
    for name, lines in files.items():
        write(tmp_path, table, name, lines)
    return silver_from_landing(tmp_path, table, INGESTED, FIRST)


def by_id(frame: pl.DataFrame, *cols: str) -> list[tuple]:
    return [tuple(r) for r in frame.sort("id").select("id", *cols).iter_rows()]


def names_column(reason: str, column: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(column)}(?![A-Za-z0-9_])", reason) is not None


def money(value) -> Decimal:
    """Decimal(12,2) or Float64 rounded to 2 places (both allowed by CONTRACT 4)."""
    if isinstance(value, float):
        return Decimal(repr(value)).quantize(Decimal("0.01"))
    return value


# --- order of changes -----------------------------------------------------------------------

STATUSES = ["pending", "paid", "shipped", "delivered", "cancelled"]


@pytest.mark.parametrize(
    "seqs, winner",
    [
        (["10", "9"], 0),  # as numbers 10 > 9 (as text "9" > "10")
        (["9", "10"], 1),
        ([SEQ35[:-2] + "11", SEQ35[:-2] + "10"], 0),  # 35 digits, beyond float precision
        ([SEQ35[:-2] + "09", SEQ35[:-2] + "10"], 1),
        (["00000000000000000000000000000000010", "9"], 0),  # leading zeros: 10 > 9
        (["1", None], 0),  # empty first
        (["0", None], 0),
        ([None, "0"], 1),
        (["1", ""], 0),  # a quoted empty seq is empty too
        (["7", "12", "3"], 1),
        ([SEQ35, "99999999999999999999999999999999999", "100000000000000000000000000000000000"], 2),
    ],
)
def test_same_commit_ts_broken_by_seq_as_a_number(tmp_path, seqs, winner):
    lines = [order(1, ts=T1, seq=s, status=STATUSES[k]) for k, s in enumerate(seqs)]
    result = silver(tmp_path, ORDER, {CDC1: lines})
    assert by_id(result.valid, "status") == [(1, STATUSES[winner])]
    assert result.quarantine.is_empty()


def test_delete_with_higher_seq_wins_over_later_record_with_lower_seq(tmp_path):
    lines = [delete(ORDER, "1", T1, seq="10"), order(1, ts=T1, seq="9"), order(2, ts=T1, seq="9")]
    result = silver(tmp_path, ORDER, {CDC1: lines})
    assert by_id(result.valid) == [(2,)]
    assert result.quarantine.is_empty()


def test_commit_ts_comes_before_seq_file_and_position(tmp_path):
    result = silver(
        tmp_path,
        ORDER,
        {
            # key 1: the later file holds an earlier commit: it loses
            CDC1: [order(1, ts=T2, seq="1", status="paid"), order(2, ts=T2, seq=None, status="paid"), order(2, ts=T1, seq="99", status="shipped")],
            CDC2: [order(1, ts=T1, seq="999", status="shipped")],
            # key 3: a LOAD row committed later than the CDC row
            "LOAD00000001.csv": [order(3, op=None, ts=T3, status="delivered")],
            "20241209-000000000.csv": [order(3, ts=T2, seq="5", status="cancelled")],
        },
    )
    assert by_id(result.valid, "status", "_source_file", "_commit_ts") == [
        (1, "paid", f"public/core_order/{CDC1}", utc(2024, 12, 8, 22, 15, 1, 500000)),
        (2, "paid", f"public/core_order/{CDC1}", utc(2024, 12, 8, 22, 15, 1, 500000)),
        (3, "delivered", "public/core_order/LOAD00000001.csv", utc(2024, 12, 9, 8, 0, 0, 1)),
    ]


def test_same_ts_and_seq_load_files_come_before_cdc_files(tmp_path):
    # "20241208-..." sorts before "LOAD..." by name, yet every LOAD file comes first.
    result = silver(
        tmp_path,
        ORDER,
        {
            "LOAD00000001.csv": [order(1, op=None, status="shipped"), order(2, op="I", seq="5", status="shipped")],
            "LOAD0000000F.csv": [order(3, op=None, status="shipped")],
            CDC1: [order(1, op="U", status="paid"), order(2, op="U", seq="5", status="paid"), order(3, op="U", status="paid")],
        },
    )
    assert by_id(result.valid, "status", "_source_file") == [
        (1, "paid", f"public/core_order/{CDC1}"),
        (2, "paid", f"public/core_order/{CDC1}"),
        (3, "paid", f"public/core_order/{CDC1}"),
    ]


def test_same_ts_and_seq_files_of_one_kind_by_name(tmp_path):
    result = silver(
        tmp_path,
        ORDER,
        {
            "LOAD00000002.csv": [order(1, op=None, status="delivered")],
            "LOAD00000001.csv": [order(1, op=None, status="paid"), order(2, op=None, status="shipped")],
            "LOAD00000009.csv": [order(2, op=None, status="paid")],
            "LOAD0000000A.csv": [order(2, op=None, status="cancelled")],
            "20241208-221500124.csv": [order(3, seq="7", status="shipped")],
            "20241208-221500123.csv": [order(3, seq="7", status="paid"), order(4, seq="7", status="delivered")],
            "20241208-221459999.csv": [order(4, seq="7", status="paid")],
        },
    )
    assert by_id(result.valid, "status", "_source_file") == [
        (1, "delivered", "public/core_order/LOAD00000002.csv"),
        (2, "cancelled", "public/core_order/LOAD0000000A.csv"),
        (3, "shipped", "public/core_order/20241208-221500124.csv"),
        (4, "delivered", "public/core_order/20241208-221500123.csv"),
    ]


def test_same_ts_seq_and_file_broken_by_position(tmp_path):
    lines = [
        order(1, seq="5", status="pending"),
        order(2, seq="5", status="paid", currency="a\nb"),  # a multi-line record
        order(1, seq="5", status="shipped"),
        order(2, seq="5", status="delivered"),
        order(1, seq="5", status="cancelled"),
        order(2, seq="5", status="refunded", currency="XY"),
    ]
    result = silver(tmp_path, ORDER, {CDC1: lines})
    assert by_id(result.valid, "status", "currency") == [(1, "cancelled", "EUR"), (2, "refunded", "XY")]


def test_delete_then_reinsert_of_the_same_key(tmp_path):
    result = silver(
        tmp_path,
        ORDER,
        {
            "LOAD00000001.csv": [order(1, op=None, status="pending"), order(2, op=None, status="pending")],
            CDC1: [delete(ORDER, "1", T2, "1"), delete(ORDER, "2", T2, "1")],
            CDC2: [order(1, op="I", ts=T3, seq="2", status="paid", total_amount="99.90")],
        },
    )
    assert by_id(result.valid, "status", "total_amount", "_commit_ts") == [
        (1, "paid", Decimal("99.90"), utc(2024, 12, 9, 8, 0, 0, 1))
    ]
    assert result.quarantine.is_empty()


def test_delete_as_last_change_removes_the_key_from_silver_and_quarantine(tmp_path):
    result = silver(
        tmp_path,
        ORDER,
        {
            CDC1: [
                order(1, op="I"),  # valid, then deleted
                order(2, op="I", total_amount="-5.00"),  # invalid, then deleted
                order(3, op="I", tenant_id=None),  # invalid, then deleted
                order(5, op="I"),
            ],
            CDC2: [
                delete(ORDER, "1", T2),
                delete(ORDER, "2", T2),
                delete(ORDER, "3", T2),
                delete(ORDER, "4", T2),  # never inserted
            ],
        },
    )
    assert by_id(result.valid) == [(5,)]
    assert result.quarantine.is_empty()


def test_delete_carrying_only_the_key_is_not_quarantined(tmp_path):
    d = delete(ORDER, "1", T2)
    assert d == "D,2024-12-08 22:15:01.5,1,,,,,,,,"
    result = silver(tmp_path, ORDER, {CDC1: [order(1, op="I"), d, order(2, op="I")]})
    assert by_id(result.valid) == [(2,)]
    assert result.quarantine.is_empty()


def test_redelivered_records_in_a_later_file(tmp_path):
    first = [
        order(1, op="I", ts=T1, seq="1", status="pending"),
        order(1, op="U", ts=T2, seq="2", status="paid"),
        order(2, op="I", ts=T1, seq="3", status="pending"),
        order(2, op="U", ts=T2, seq="4", status="shipped"),
    ]
    result = silver(
        tmp_path,
        ORDER,
        {
            CDC1: first,
            CDC2: first[:2],  # DMS restart: key 1 re-delivered whole
            "20241208-221700000.csv": [first[2]],  # key 2: only its older record re-delivered
        },
    )
    assert by_id(result.valid, "status", "_source_file", "_commit_ts") == [
        (1, "paid", f"public/core_order/{CDC2}", utc(2024, 12, 8, 22, 15, 1, 500000)),
        (2, "shipped", f"public/core_order/{CDC1}", utc(2024, 12, 8, 22, 15, 1, 500000)),
    ]
    assert result.valid.height == 2


def test_keys_007_and_7_are_the_same_key(tmp_path):
    result = silver(
        tmp_path,
        ORDER,
        {
            CDC1: [
                order("007", op="I", ts=T1, status="pending"),
                order("8", op="I", ts=T1),
                order("010", op="I", ts=T1, status="shipped"),
                order("0011", op="I", ts=T1, status="paid"),
            ],
            CDC2: [
                order("7", op="U", ts=T2, status="paid"),
                delete(ORDER, "0008", T2),
                order("11", op="U", ts=T2, status="bogus"),
            ],
        },
    )
    assert by_id(result.valid, "status") == [(7, "paid"), (10, "shipped")]
    assert result.quarantine.select("id", "status").rows() == [("11", "bogus")]


# --- quarantine -----------------------------------------------------------------------------


QUARANTINE_CASES = [
    (ORDER, {"id": None}, "id", True),
    (ORDER, {"created_at": None}, "created_at", True),
    (ORDER, {"tenant_id": None}, "tenant_id", True),
    (ORDER, {"tenant_id": "1.0"}, "tenant_id", False),
    (ORDER, {"customer_id": "12a"}, "customer_id", False),
    (ORDER, {"customer_id": "9223372036854775808"}, "customer_id", False),  # beyond bigint
    (ORDER, {"total_amount": "12,50"}, "total_amount", False),
    (ORDER, {"total_amount": "10000000000.00"}, "total_amount", False),  # > numeric(12,2)
    (ORDER, {"total_amount": "1e10"}, "total_amount", False),
    (ORDER, {"total_amount": "abc"}, "total_amount", False),
    (ORDER, {"total_amount": "NaN"}, "total_amount", False),
    (ORDER, {"total_amount": "Infinity"}, "total_amount", False),
    (ORDER, {"total_amount": "9999999999.995"}, "total_amount", False),  # rounds past 12 digits
    (ORDER, {"total_amount": ""}, "total_amount", False),  # "" is not NULL and not a number
    (ORDER, {"total_amount": "-0.01"}, "total_amount", False),
    (ORDER, {"total_amount": "-1.25000000e+02"}, "total_amount", False),
    (ORDER, {"status": "archived"}, "status", False),
    (ORDER, {"status": ""}, "status", False),
    (ORDER, {"created_at": "2024-12-08T10:00:00"}, "created_at", False),
    (ORDER, {"updated_at": "2024-02-30 10:00:00"}, "updated_at", False),
    (ITEM, {"quantity": "0"}, "quantity", False),
    (ITEM, {"quantity": "-1"}, "quantity", False),
    (ITEM, {"quantity": "1.0"}, "quantity", False),
    (ITEM, {"quantity": "2147483648"}, "quantity", False),  # beyond integer
    (ITEM, {"unit_price": "-3.50"}, "unit_price", False),
    (ITEM, {"tenant_id": None}, "tenant_id", True),
    (TENANT, {"is_active": "yes"}, "is_active", False),
    (TENANT, {"is_active": "2"}, "is_active", False),
    (TENANT, {"is_active": ""}, "is_active", False),
    (TENANT, {"settings": '{"a":'}, "settings", False),
    (TENANT, {"settings": "not json"}, "settings", False),
    (TENANT, {"settings": "[1,]"}, "settings", False),  # trailing comma: not JSON
    (TENANT, {"settings": '{"a": 1,}'}, "settings", False),
    (TENANT, {"settings": "NaN"}, "settings", False),  # not a JSON value (RFC 8259)
    (TENANT, {"settings": "Infinity"}, "settings", False),
    (TENANT, {"settings": '{"a": [nan]}'}, "settings", False),
    (TENANT, {"settings": '{"a": -Infinity}'}, "settings", False),
    (TENANT, {"settings": '{"a": [1, ]}'}, "settings", False),
    (TENANT, {"settings": '{"a": [1,\n\t]}'}, "settings", False),
    (TENANT, {"settings": '{"a": INF, "b": "x"}'}, "settings", False),
    (TENANT, {"settings": '{"a": "x"} {"b": 1}'}, "settings", False),
    (TENANT, {"settings": '{"a": tru}'}, "settings", False),
    (TENANT, {"settings": "{'a': 1}"}, "settings", False),
    (TENANT, {"settings": ""}, "settings", False),  # "" is not NULL and not JSON
    (TENANT, {"plan": "gold"}, "plan", False),
    (TENANT, {"created_at": None}, "created_at", True),
]


@pytest.mark.parametrize(
    "table, over, column, is_null",
    [pytest.param(*case, id=f"{case[0].name}-{case[2]}={next(iter(case[1].values()))!r}") for case in QUARANTINE_CASES],
)
def test_quarantine_rules_one_by_one(tmp_path, table, over, column, is_null):
    make = {"core_order": order, "core_orderitem": item, "core_tenant": tenant}[table.name]
    bad_id = None if over.get("id", "x") is None else "1"
    lines = [make(1, op="I", **over), make(2, op="I")]
    result = silver(tmp_path, table, {CDC1: lines})
    assert by_id(result.valid) == [(2,)]
    assert result.quarantine.height == 1
    row = result.quarantine.row(0, named=True)
    assert row["id"] == bad_id
    assert row[column] == over[column]  # landed text kept
    assert names_column(row["_dq_reason"], column), row["_dq_reason"]
    if is_null:
        assert "null" in row["_dq_reason"].lower()


def test_event_without_business_date_is_quarantined_null_customer_is_not(tmp_path):
    def event(i, **over):
        values = {
            "id": str(i),
            "tenant_id": "1",
            "customer_id": "10",
            "session_id": "s1",
            "event_type": "page_view",
            "properties": "{}",
            "occurred_at": "2024-12-08 09:00:00",
        }
        values.update(over)
        return record(EVENT, "I", T1, values)

    result = silver(
        tmp_path,
        EVENT,
        {CDC1: [event(1, occurred_at=None), event(2, customer_id=None, session_id=None, properties=None), event(3, event_type="click")]},
    )
    assert by_id(result.valid, "customer_id", "session_id", "properties") == [(2, None, None, None)]
    assert sorted(result.quarantine["id"].to_list()) == ["1", "3"]
    reasons = dict(result.quarantine.select("id", "_dq_reason").rows())
    assert names_column(reasons["1"], "occurred_at") and "null" in reasons["1"].lower()
    assert names_column(reasons["3"], "event_type")


def test_null_in_other_columns_is_not_a_reason(tmp_path):
    result = silver(
        tmp_path,
        ORDER,
        {CDC1: [order(1, op="I", customer_id=None, status=None, currency=None, total_amount=None, updated_at=None)]},
    )
    assert by_id(result.valid, "customer_id", "status", "currency", "total_amount", "updated_at") == [
        (1, None, None, None, None, None)
    ]
    assert result.quarantine.is_empty()
    items = silver(tmp_path / "items", ITEM, {CDC1: [item(1, op="I", order_id=None, product_id=None, quantity=None, unit_price=None)]})
    assert by_id(items.valid, "order_id", "product_id", "quantity", "unit_price") == [(1, None, None, None, None)]
    tenants = silver(tmp_path / "tenants", TENANT, {CDC1: [tenant(1, op="I", name=None, plan=None, settings=None, is_active=None)]})
    assert by_id(tenants.valid, "name", "plan", "settings", "is_active") == [(1, None, None, None, None)]


def test_older_valid_version_of_a_quarantined_key_does_not_come_back(tmp_path):
    result = silver(
        tmp_path,
        ORDER,
        {
            CDC1: [
                order(1, op="I", ts=T1, status="paid"),
                order(2, op="I", ts=T1, status="paid"),
                order(3, op="I", ts=T1, status="paid"),
            ],
            CDC2: [
                order(1, op="U", ts=T2, status="bogus"),
                order(2, op="U", ts=T2, total_amount="-1.00"),
                order(3, op="U", ts=T2, status="bogus"),
                order(3, op="U", ts=T3, status="delivered"),  # a newer valid version does
            ],
        },
    )
    assert by_id(result.valid, "status", "_commit_ts") == [(3, "delivered", utc(2024, 12, 9, 8, 0, 0, 1))]
    assert by_id(result.quarantine, "status", "total_amount", "_op", "_commit_ts", "_source_file") == [
        ("1", "bogus", "12.50", "U", utc(2024, 12, 8, 22, 15, 1, 500000), f"public/core_order/{CDC2}"),
        ("2", "paid", "-1.00", "U", utc(2024, 12, 8, 22, 15, 1, 500000), f"public/core_order/{CDC2}"),
    ]


def test_quarantine_partition_is_business_date_else_commit_date(tmp_path):
    result = silver(
        tmp_path,
        ORDER,
        {
            CDC1: [
                order(1, op="I", ts="2024-12-08 23:59:59.999999", created_at=None),
                order(2, op="I", ts="2024-12-09 00:00:00", created_at="2024-13-45 00:00:00"),
                order(3, op="I", ts="2024-12-09 00:00:00", created_at="2024-12-09T00:00:00"),
                order(4, op="I", ts="2024-12-09 00:00:00", created_at="2024-12-01 10:00:00", total_amount="-1"),
                order(5, op="I", ts="2024-12-09 00:00:00", created_at="2024-12-05 23:30:00", tenant_id=None),
            ]
        },
    )
    assert result.valid.is_empty()
    assert by_id(result.quarantine, "_partition_date") == [
        ("1", date(2024, 12, 8)),
        ("2", date(2024, 12, 9)),
        ("3", date(2024, 12, 9)),
        ("4", date(2024, 12, 1)),
        ("5", date(2024, 12, 5)),
    ]


# --- typed values ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("125", "125.00"),
        ("+1.25000000e+02", "125.00"),
        ("1.005", "1.01"),  # half away from zero
        ("2.675", "2.68"),  # not binary floating point
        ("0.125", "0.13"),
        ("0.005", "0.01"),
        ("0.004", "0.00"),
        ("+3.23800011e+01", "32.38"),
        ("1.2E1", "12.00"),
        ("9999999999.99", "9999999999.99"),
        ("0", "0.00"),
        ("007.5", "7.50"),
    ],
)
def test_numeric_values(tmp_path, text, expected):
    result = silver(tmp_path, ORDER, {CDC1: [order(1, op="I", total_amount=text)]})
    assert result.quarantine.is_empty()
    assert [money(v) for v in result.valid["total_amount"]] == [Decimal(expected)]


SIGNED = SourceTable(
    name="signed_numbers",
    entity="signed_numbers",
    columns=(
        Column("id", PgType.BIGINT, nullable=False),
        Column("amount", PgType.NUMERIC),
        Column("created_at", PgType.TIMESTAMPTZ),
    ),
)


def test_negative_numeric_rounds_half_away_from_zero(tmp_path):
    values = ["-1.005", "-2.675", "-0.125", "-1.25000000e+02", "-0.004", "1.005"]
    lines = [
        record(SIGNED, "I", T1, {"id": str(k + 1), "amount": v, "created_at": "2024-12-08 10:00:00"})
        for k, v in enumerate(values)
    ]
    result = silver(tmp_path, SIGNED, {CDC1: lines})
    assert result.quarantine.is_empty()
    assert [(i, money(v)) for i, v in by_id(result.valid, "amount")] == [
        (1, Decimal("-1.01")),
        (2, Decimal("-2.68")),
        (3, Decimal("-0.13")),
        (4, Decimal("-125.00")),
        (5, Decimal("0.00")),
        (6, Decimal("1.01")),
    ]


def test_boolean_spellings(tmp_path):
    spellings = ["t", "f", "1", "0", "TRUE", "False", "T", "F", "true", "fAlSe"]
    lines = [tenant(k + 1, op="I", is_active=s) for k, s in enumerate(spellings)]
    result = silver(tmp_path, TENANT, {CDC1: lines})
    assert result.quarantine.is_empty()
    assert result.valid.schema["is_active"] == pl.Boolean
    assert [v for _, v in by_id(result.valid, "is_active")] == [
        True, False, True, False, True, False, True, False, True, False
    ]


def test_json_values(tmp_path):
    docs = ['{"theme": "dark", "seats": 5, "tags": ["a", "b"], "x": null}', "[]", "{}", '{"q": "say \\"hi\\", ok"}',
            # what looks lenient inside a string is text; jsonb takes deep nesting and any number
            '{"a": "NaN", "b": ",]", "c": "Infinity,}", "d": "\\\\"}', "[" * 200 + "]" * 200,
            "[1e999, -1.5E-3, 0, true, false, null]"]
    lines = [tenant(k + 1, op="I", settings=d) for k, d in enumerate(docs)]
    result = silver(tmp_path, TENANT, {CDC1: lines})
    assert result.quarantine.is_empty()
    got = [v for _, v in by_id(result.valid, "settings")]
    if result.valid.schema["settings"] == pl.String:
        got = [json.loads(v) for v in got]
    assert got == [json.loads(d) for d in docs]


def test_typed_output_dtypes_and_values(tmp_path):
    orders = silver(tmp_path / "o", ORDER, {CDC1: [order(1, op="I", ts="2024-12-08 22:15:00.123456", seq=SEQ35)]})
    schema = orders.valid.schema
    for c in ("id", "tenant_id", "customer_id"):
        assert schema[c] == pl.Int64, c
    for c in ("status", "currency"):
        assert schema[c] == pl.String, c
    amount = schema["total_amount"]
    assert amount == pl.Float64 or (isinstance(amount, pl.Decimal) and (amount.precision, amount.scale) == (12, 2))
    for c in ("created_at", "updated_at", "_commit_ts"):
        assert isinstance(schema[c], pl.Datetime) and schema[c].time_zone == "UTC", c
    assert schema["_source_file"] == pl.String
    row = orders.valid.row(0, named=True)
    assert {k: row[k] for k in ORDER.column_names} == {
        "id": 1,
        "tenant_id": 1,
        "customer_id": 10,
        "status": "paid",
        "currency": "EUR",
        "total_amount": row["total_amount"],
        "created_at": utc(2024, 12, 8, 10, 0),
        "updated_at": utc(2024, 12, 8, 11, 0),
    }
    assert money(row["total_amount"]) == Decimal("12.50")
    assert row["_commit_ts"] == utc(2024, 12, 8, 22, 15, 0, 123456)
    assert row["_source_file"] == f"public/core_order/{CDC1}"

    items = silver(tmp_path / "i", ITEM, {CDC1: [item(1, op="I", quantity="2147483647")]})
    assert items.valid.schema["quantity"] == pl.Int32
    assert items.valid.schema["order_id"] == pl.Int64
    assert items.valid["quantity"].to_list() == [2147483647]

    tenants = silver(tmp_path / "t", TENANT, {CDC1: [tenant(1, op="I", is_active="f")]})
    assert tenants.valid.schema["is_active"] == pl.Boolean
    assert tenants.valid.schema["name"] == pl.String
    assert tenants.valid["is_active"].to_list() == [False]


def test_changes_without_a_key_are_one_key_whose_last_version_is_quarantined(tmp_path):
    """A NULL primary key groups like any key (SQL's GROUP BY does): its last version is kept,
    in quarantine, and the versions of keyed rows are unaffected."""
    lines = [
        order(None, op="I", ts="2024-12-08 10:00:00", status="pending"),
        order(None, op="U", ts="2024-12-08 11:00:00", status="paid"),
        order(1, op="I", ts="2024-12-08 10:00:00"),
        order(1, op="U", ts="2024-12-08 12:00:00", status="shipped"),
    ]
    result = silver(tmp_path, ORDER, {CDC1: lines})
    assert by_id(result.valid, "status") == [(1, "shipped")]
    assert result.quarantine.select("id", "status", "_dq_reason").rows() == [(None, "paid", "id is NULL")]
    assert result.live_keys == 2
