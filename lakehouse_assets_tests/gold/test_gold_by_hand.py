"""Gold numbers computed by hand (CONTRACT section 5) from a small landing zone.

The zone goes through the real path: landing files -> bronze -> silver -> gold, one Dagster
run. Every expected number below is worked out in the comments next to it.
"""

from datetime import date
from decimal import Decimal

import polars as pl
import pytest

from lakehouse_assets.sources import TABLES_BY_NAME as T
from lakehouse_assets_tests.landing_builder import record, write
from lakehouse_assets_tests.pipeline import run_pipeline, table

pytestmark = pytest.mark.pipeline

LOAD_TS = "2024-12-01 00:00:00.5"
# The run covers the zone's earliest business date (tenants and customer 4) to its last
# commit; every daily partition of it costs a materialization per asset, so it starts late.
FIRST, LAST = "2024-09-01", "2024-12-03"
D1, D2, D3 = date(2024, 12, 1), date(2024, 12, 2), date(2024, 12, 3)


def m(x: str) -> Decimal:
    return Decimal(x)


def customer(id, tenant, created, email=None):
    return {"id": id, "tenant_id": tenant, "email": email or f"c{id}@example.com",
            "full_name": f"Customer {id}", "country": "DE", "attributes": "{}",
            "created_at": created, "updated_at": created}


def order(id, tenant, cust, status, total, created):
    return {"id": id, "tenant_id": tenant, "customer_id": cust, "status": status,
            "currency": "EUR", "total_amount": total, "created_at": created, "updated_at": created}


def item(id, order_id, qty, created="2024-12-01 08:00:00", tenant=1):
    return {"id": id, "tenant_id": tenant, "order_id": order_id, "product_id": 1,
            "quantity": qty, "unit_price": "1.00", "created_at": created, "updated_at": created}


def event(id, tenant, cust, session, etype, at):
    return {"id": id, "tenant_id": tenant, "customer_id": cust, "session_id": session,
            "event_type": etype, "properties": '{"k": "v"}', "occurred_at": at}


def sub(id, tenant, status, mrr, started, canceled=None, created="2024-11-01 00:00:00"):
    return {"id": id, "tenant_id": tenant, "customer_id": 1, "plan": "pro", "status": status,
            "mrr": mrr, "started_at": started, "canceled_at": canceled, "created_at": created,
            "updated_at": created}


def invoice(id, tenant, status, amount, paid_at, created):
    return {"id": id, "tenant_id": tenant, "customer_id": 1, "subscription_id": 1,
            "amount": amount, "status": status, "issued_at": created, "due_at": created,
            "paid_at": paid_at, "created_at": created, "updated_at": created}


def load(table, rows):
    return [record(T[table], "I", LOAD_TS, r) for r in rows]


def seq(n: int) -> str:
    return str(n).rjust(35, "0")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    root = tmp_path_factory.mktemp("landing")
    write(root, "core_tenant", "LOAD00000001.csv", load("core_tenant", [
        {"id": 1, "name": "One", "slug": "one", "plan": "pro", "settings": "{}",
         "is_active": "t", "created_at": "2024-09-01 00:00:00", "updated_at": "2024-09-01 00:00:00"},
        {"id": 2, "name": "Two", "slug": "two", "plan": "free", "settings": "{}",
         "is_active": "f", "created_at": "2024-09-01 00:00:00", "updated_at": "2024-09-01 00:00:00"},
    ]))
    write(root, "core_customer", "LOAD00000001.csv", load("core_customer", [
        customer(1, 1, "2024-12-01 10:00:00"),
        customer(2, 1, "2024-12-02 09:00:00"),
        customer(3, 2, "2024-12-02 23:59:59.999999"),
        customer(4, 2, "2024-09-01 00:00:00"),
        customer(5, 2, "2024-10-01 00:00:00"),
        customer(6, 2, "2024-09-01 00:00:00"),
        customer(7, None, "2024-12-02 00:00:00"),  # quarantined: tenant_id is NULL
    ]))
    write(root, "core_order", "LOAD00000001.csv", load("core_order", [
        order(1, 1, 1, "paid", "100.00", "2024-12-01 08:00:00"),
        order(2, 1, 2, "refunded", "40.00", "2024-12-01 09:00:00"),
        order(3, 1, 1, "pending", "10.00", "2024-12-01 10:00:00"),  # cancelled by CDC
        order(8, 1, 999, "delivered", "0.01", "2024-12-01 12:00:00"),  # customer 999: nowhere
        order(9, 1, 1, "paid", "500.00", "2024-12-01 13:00:00"),  # deleted by CDC
        order(10, 1, 1, "bogus", "1.00", "2024-12-01 14:00:00"),  # quarantined
        order(4, 2, 3, "delivered", "33.33", "2024-12-02 10:00:00"),
        order(5, 2, 3, "shipped", "33.33", "2024-12-02 11:00:00"),
        order(6, 2, 3, "paid", "33.34", "2024-12-02 12:00:00"),
        # customer 4: five paid orders of 200.00, the first exactly 89 days before 12-02
        order(41, 2, 4, "paid", "200.00", "2024-09-04 10:00:00"),
        order(42, 2, 4, "paid", "200.00", "2024-10-01 10:00:00"),
        order(43, 2, 4, "paid", "200.00", "2024-11-01 10:00:00"),
        order(44, 2, 4, "paid", "200.00", "2024-11-20 10:00:00"),
        order(45, 2, 4, "paid", "200.00", "2024-11-25 10:00:00"),
        order(51, 2, 5, "paid", "10.00", "2024-10-25 10:00:00"),
        order(61, 2, 6, "paid", "10.00", "2024-09-20 10:00:00"),
    ]))
    write(root, "core_order", "20241202-090000000.csv", [
        record(T["core_order"], "U", "2024-12-02 08:00:00",
               order(3, 1, 1, "cancelled", "10.00", "2024-12-01 10:00:00"), seq(100)),
        record(T["core_order"], "D", "2024-12-02 08:00:01", {"id": 9}, seq(101)),
    ])
    write(root, "core_order", "20241203-120000000.csv", [
        record(T["core_order"], "I", "2024-12-03 11:00:00",
               order(7, 1, 2, "cancelled", "20.00", "2024-12-03 11:00:00"), seq(200)),
    ])
    write(root, "core_orderitem", "LOAD00000001.csv", load("core_orderitem", [
        item(1, 1, 2),
        item(2, 1, 3, created="2024-12-02 08:00:00"),  # an item on another day than its order
        item(3, 8, 1),
        item(4, 2, 7),  # order refunded: not sold
        item(5, 4, 4, tenant=2),
        item(6, 5, 1, tenant=2),
        item(7, 12345, 9),  # order that does not exist: counts nowhere
        item(8, 6, 0, tenant=2),  # quantity 0: quarantined
    ]))
    write(root, "core_event", "LOAD00000001.csv", load("core_event", [
        event(1, 1, 1, "s1", "page_view", "2024-12-01 10:05:00"),
        event(2, 1, 1, "s1", "add_to_cart", "2024-12-01 10:06:00"),
        event(3, 1, 1, "s1", "purchase", "2024-12-01 10:07:00"),
        event(4, 1, None, "s2", "page_view", "2024-12-01 10:30:00"),
        event(5, 1, 2, "s3", "error", "2024-12-01 11:00:00"),
        event(6, 1, 2, None, "purchase", "2024-12-01 11:10:00"),
        event(7, 1, 2, "s3", "page_view", "2024-12-01 23:59:59.999999"),
        event(8, 1, 1, "s9", "signup", "2024-12-01 12:00:00"),  # deleted by CDC
        event(12, 1, None, None, "error", "2024-12-01 23:30:00"),
        event(13, 1, 1, "s5", "page_view", "2024-12-01 23:40:00"),
        event(9, 2, 3, "s4", "signup", "2024-12-02 00:00:00"),
        event(10, 2, 3, "s4", "product_view", "2024-12-02 00:30:00"),
        event(11, 2, 3, "s4", "click", "2024-12-02 00:40:00"),  # quarantined
    ]))
    write(root, "core_event", "20241202-000100000.csv.gz", [
        record(T["core_event"], "D", "2024-12-02 00:00:30", {"id": 8}, seq(150)),
    ], gz=True)
    write(root, "core_subscription", "LOAD00000001.csv", load("core_subscription", [
        sub(1, 1, "active", "10.00", "2024-11-15 00:00:00"),
        sub(2, 1, "canceled", "20.00", "2024-11-01 00:00:00", "2024-12-02 10:00:00"),
        sub(3, 1, "trialing", "99.00", "2024-12-01 00:00:00"),
        sub(4, 2, "active", "5.50", "2024-12-02 08:00:00"),
        sub(5, 2, "past_due", "7.25", "2024-12-03 01:00:00", "2024-12-03 02:00:00"),
    ]))
    write(root, "core_invoice", "LOAD00000001.csv", load("core_invoice", [
        invoice(1, 1, "paid", "10.00", "2024-12-01 15:00:00", "2024-11-30 00:00:00"),
        invoice(2, 1, "open", "5.55", None, "2024-12-01 00:00:00"),  # paid by CDC
        invoice(3, 2, "open", "3.00", None, "2024-12-02 00:00:00"),
        invoice(4, 2, "void", "4.00", "2024-12-02 10:00:00", "2024-12-02 00:00:00"),
        invoice(5, 2, "paid", "7.00", "2024-12-03 10:00:00", "2024-11-02 00:00:00"),
    ]))
    write(root, "core_invoice", "20241201-170000000.csv", [
        record(T["core_invoice"], "U", "2024-12-01 16:00:00",
               invoice(2, 1, "paid", "5.55", "2024-12-01 16:00:00", "2024-12-01 00:00:00"), seq(50)),
    ])
    wh = tmp_path_factory.mktemp("warehouse") / "lakehouse.duckdb"
    result = run_pipeline(root, wh, FIRST, LAST)
    assert result.success
    CHECKS.extend(result.get_asset_check_evaluations())
    return wh


CHECKS = []  # check evaluations of the module's run


def rows(warehouse, name, keys, first=D1):
    frame = table(warehouse, f"gold.{name}").filter(pl.col("date") >= first)
    return sorted(frame.to_dicts(), key=lambda r: tuple(r[k] for k in keys))


def test_daily_revenue(warehouse):
    assert rows(warehouse, "daily_revenue", ["date", "tenant_id"]) == [
        # 12-01 tenant 1: orders 1, 2, 3 (cancelled), 8 (9 deleted, 10 quarantined).
        # P: 1 (paid), 8 (delivered). R adds 2 (refunded): 100.00 + 0.01 + 40.00 = 140.01.
        # net 100.01 / 2 paid = 50.005 -> 50.01 (half away from zero). Items of P: 2+3 + 1.
        {"date": D1, "tenant_id": 1, "order_count": 4, "paid_order_count": 2,
         "gross_revenue": m("140.01"), "refunded_amount": m("40.00"), "net_revenue": m("100.01"),
         "avg_order_value": m("50.01"), "items_sold": 6},
        # 12-02 tenant 2: orders 4, 5, 6, all in P: 100.00 / 3 = 33.333 -> 33.33; items 4 + 1
        # (the item of order 6 has quantity 0 and is quarantined).
        {"date": D2, "tenant_id": 2, "order_count": 3, "paid_order_count": 3,
         "gross_revenue": m("100.00"), "refunded_amount": m("0.00"), "net_revenue": m("100.00"),
         "avg_order_value": m("33.33"), "items_sold": 5},
        # 12-03 tenant 1: order 7, cancelled: nothing paid, average NULL.
        {"date": D3, "tenant_id": 1, "order_count": 1, "paid_order_count": 0,
         "gross_revenue": m("0.00"), "refunded_amount": m("0.00"), "net_revenue": m("0.00"),
         "avg_order_value": None, "items_sold": 0},
    ]
    # Earlier days: only the days of customers 4, 5 and 6's orders, one order each.
    earlier = table(warehouse, "gold.daily_revenue").filter(pl.col("date") < D1)
    assert earlier["date"].to_list() == sorted(earlier["date"].to_list())
    assert [str(d) for d in earlier["date"]] == [
        "2024-09-04", "2024-09-20", "2024-10-01", "2024-10-25", "2024-11-01", "2024-11-20",
        "2024-11-25",
    ]


def test_daily_funnel(warehouse):
    assert rows(warehouse, "daily_funnel", ["date", "tenant_id"]) == [
        # Events 1-7, 12, 13 (8 deleted). Sessions s1 s2 s3 s5; customers 1, 2.
        # page_view 1 4 7 13; purchases 3 and 6; errors 5 and 12.
        # Sessions with a purchase: s1 only (event 6 has no session): 1 / 4.
        {"date": D1, "tenant_id": 1, "sessions": 4, "customers": 2, "page_views": 4,
         "product_views": 0, "add_to_cart": 1, "checkout_started": 0, "purchases": 2,
         "signups": 0, "errors": 2, "conversion_rate": 0.25},
        # Events 9, 10 (11 quarantined): one session, no purchase.
        {"date": D2, "tenant_id": 2, "sessions": 1, "customers": 1, "page_views": 0,
         "product_views": 1, "add_to_cart": 0, "checkout_started": 0, "purchases": 0,
         "signups": 1, "errors": 0, "conversion_rate": 0.0},
    ]


def test_hourly_activity(warehouse):
    assert rows(warehouse, "hourly_activity", ["date", "hour", "tenant_id"]) == [
        {"date": D1, "hour": 10, "tenant_id": 1, "events": 4, "sessions": 2, "errors": 0,
         "error_rate": 0.0},
        {"date": D1, "hour": 11, "tenant_id": 1, "events": 2, "sessions": 1, "errors": 1,
         "error_rate": 0.5},
        # 23:30 error (no session), 23:40 s5, 23:59:59.999999 s3: 1 / 3 -> 0.3333
        {"date": D1, "hour": 23, "tenant_id": 1, "events": 3, "sessions": 2, "errors": 1,
         "error_rate": 0.3333},
        {"date": D2, "hour": 0, "tenant_id": 2, "events": 2, "sessions": 1, "errors": 0,
         "error_rate": 0.0},
    ]


def test_subscription_mrr(warehouse):
    assert rows(warehouse, "subscription_mrr", ["date", "tenant_id"]) == [
        # Sub 1 (10.00) and 2 (20.00, canceled 12-02) active; 3 is trialing.
        {"date": D1, "tenant_id": 1, "active_subscriptions": 2, "mrr": m("30.00"),
         "new_mrr": m("0.00"), "churned_mrr": m("0.00")},
        # Sub 2 canceled on 12-02: not active that day, churned.
        {"date": D2, "tenant_id": 1, "active_subscriptions": 1, "mrr": m("10.00"),
         "new_mrr": m("0.00"), "churned_mrr": m("20.00")},
        {"date": D2, "tenant_id": 2, "active_subscriptions": 1, "mrr": m("5.50"),
         "new_mrr": m("5.50"), "churned_mrr": m("0.00")},
        {"date": D3, "tenant_id": 1, "active_subscriptions": 1, "mrr": m("10.00"),
         "new_mrr": m("0.00"), "churned_mrr": m("0.00")},
        # Sub 5 started and canceled on 12-03: new and churned, never active.
        {"date": D3, "tenant_id": 2, "active_subscriptions": 1, "mrr": m("5.50"),
         "new_mrr": m("7.25"), "churned_mrr": m("7.25")},
    ]
    # Before 12-01 only tenant 1 has active subscriptions (sub 2 from 11-01, sub 1 from 11-15).
    earlier = table(warehouse, "gold.subscription_mrr").filter(pl.col("date") < D1)
    assert set(earlier["tenant_id"]) == {1}
    assert str(earlier["date"].min()) == "2024-11-01"


def test_customer_segments(warehouse):
    got = rows(warehouse, "customer_segments", ["date", "customer_id"])
    expected = []
    for d, days in ((D1, 0), (D2, 1), (D3, 2)):
        # Customer 1: order 1 (paid, 12-01, 100.00) only; order 3 is cancelled.
        expected.append({"date": d, "tenant_id": 1, "customer_id": 1, "orders_90d": 1,
                         "revenue_90d": m("100.00"), "last_order_date": D1,
                         "days_since_last_order": days, "segment": "regular", "churn_risk": "low"})
    for d in (D2, D3):
        # Customer 2: refunded and cancelled orders do not count.
        expected.append({"date": d, "tenant_id": 1, "customer_id": 2, "orders_90d": 0,
                         "revenue_90d": m("0.00"), "last_order_date": None,
                         "days_since_last_order": None, "segment": "inactive",
                         "churn_risk": "high"})
        # Customer 3 (created 12-02 23:59:59.999999): three orders of 12-02, 100.00.
        expected.append({"date": d, "tenant_id": 2, "customer_id": 3, "orders_90d": 3,
                         "revenue_90d": m("100.00"), "last_order_date": D2,
                         "days_since_last_order": (d - D2).days, "segment": "active",
                         "churn_risk": "low"})
    # Customer 4: 5 x 200.00 from 09-04 to 11-25. Window D-89..D: 12-01 from 09-03, 12-02 from
    # 09-04 (still all five: vip), 12-03 from 09-05 (four, 800.00: active).
    for d, n, rev, seg in ((D1, 5, "1000.00", "vip"), (D2, 5, "1000.00", "vip"),
                           (D3, 4, "800.00", "active")):
        expected.append({"date": d, "tenant_id": 2, "customer_id": 4, "orders_90d": n,
                         "revenue_90d": m(rev), "last_order_date": date(2024, 11, 25),
                         "days_since_last_order": (d - date(2024, 11, 25)).days, "segment": seg,
                         "churn_risk": "low"})
    for d in (D1, D2, D3):
        # Customer 5: one order on 10-25, 37..39 days ago: medium.
        expected.append({"date": d, "tenant_id": 2, "customer_id": 5, "orders_90d": 1,
                         "revenue_90d": m("10.00"), "last_order_date": date(2024, 10, 25),
                         "days_since_last_order": (d - date(2024, 10, 25)).days,
                         "segment": "regular", "churn_risk": "medium"})
        # Customer 6: one order on 09-20, 72..74 days ago: high, still within 90 days.
        expected.append({"date": d, "tenant_id": 2, "customer_id": 6, "orders_90d": 1,
                         "revenue_90d": m("10.00"), "last_order_date": date(2024, 9, 20),
                         "days_since_last_order": (d - date(2024, 9, 20)).days,
                         "segment": "regular", "churn_risk": "high"})
    assert got == sorted(expected, key=lambda r: (r["date"], r["customer_id"]))
    # Every customer of a day created on or before it: customer 4 from 09-01 on, one row a day.
    c4 = table(warehouse, "gold.customer_segments").filter(pl.col("customer_id") == 4)
    assert c4["date"].min() == date(2024, 9, 1) and len(c4) == (D3 - date(2024, 9, 1)).days + 1


def test_daily_summary(warehouse):
    z = m("0.00")
    assert rows(warehouse, "daily_summary", ["date", "tenant_id"]) == [
        # Customer 1; orders 1 2 3 8; net 100.01; 9 events; active: customers 1, 2 (events)
        # and 1, 2, 999 (orders) = 3; invoices 1 and 2 paid on 12-01: 10.00 + 5.55.
        {"date": D1, "tenant_id": 1, "new_customers": 1, "orders": 4, "net_revenue": m("100.01"),
         "events": 9, "active_customers": 3, "invoices_paid": 2,
         "invoices_paid_amount": m("15.55")},
        {"date": D2, "tenant_id": 1, "new_customers": 1, "orders": 0, "net_revenue": z,
         "events": 0, "active_customers": 0, "invoices_paid": 0, "invoices_paid_amount": z},
        # Customer 3 (customer 7 is quarantined); orders 4 5 6; events 9 10; invoice 4 is void.
        {"date": D2, "tenant_id": 2, "new_customers": 1, "orders": 3, "net_revenue": m("100.00"),
         "events": 2, "active_customers": 1, "invoices_paid": 0, "invoices_paid_amount": z},
        {"date": D3, "tenant_id": 1, "new_customers": 0, "orders": 1, "net_revenue": z,
         "events": 0, "active_customers": 1, "invoices_paid": 0, "invoices_paid_amount": z},
        {"date": D3, "tenant_id": 2, "new_customers": 0, "orders": 0, "net_revenue": z,
         "events": 0, "active_customers": 0, "invoices_paid": 1, "invoices_paid_amount": m("7.00")},
    ]


def test_quarantine_and_rejects_hold_what_gold_left_out(warehouse):
    q = table(warehouse, "silver.orders_quarantine")
    assert q["id"].to_list() == ["10"]
    assert "status" in q["_dq_reason"][0]
    assert table(warehouse, "silver.customers_quarantine")["_dq_reason"].to_list() == [
        "tenant_id is NULL"
    ]
    assert table(warehouse, "silver.order_items_quarantine")["id"].to_list() == ["8"]
    assert table(warehouse, "bronze.cdc_rejects").is_empty()


def test_checks_pass_except_the_warnings_this_zone_deserves(warehouse):
    failed = {(e.asset_key.to_user_string(), e.check_name) for e in CHECKS if not e.passed}
    # Order 8 points to customer 999 and item 7 to order 12345: WARN, nothing else fails.
    assert failed == {
        ("silver/orders", "customer_id_points_to_customers"),
        ("silver/order_items", "order_id_points_to_orders"),
        ("silver/order_items", "product_id_points_to_products"),
    }
    severities = {e.severity.value for e in CHECKS if not e.passed}
    assert severities == {"WARN"}
    names = {e.check_name for e in CHECKS}
    assert {"pandera_schema", "records_reconcile", "keys_reconcile"} <= names
