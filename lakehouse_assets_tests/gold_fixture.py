"""A tiny landing zone (one tenant, two orders) for tests that need some data, fast: its span,
from the customer's creation to the load's commit, is 2024-11-28...2024-12-01."""

from pathlib import Path

from lakehouse_assets.sources import TABLES_BY_NAME as T
from lakehouse_assets_tests.landing_builder import record, write


def tiny_zone(root: Path) -> Path:
    ts = "2024-12-01 10:00:00"
    write(root, "core_customer", "LOAD00000001.csv", [record(T["core_customer"], "I", ts, {
        "id": 1, "tenant_id": 1, "email": "a@x.io", "full_name": "A", "country": "DE",
        "attributes": "{}", "created_at": "2024-11-28 00:00:00",
        "updated_at": "2024-11-28 00:00:00"})])
    write(root, "core_order", "LOAD00000001.csv", [
        record(T["core_order"], "I", ts, {"id": i, "tenant_id": 1, "customer_id": 1,
               "status": "paid", "currency": "EUR", "total_amount": "10.00",
               "created_at": "2024-11-29 10:00:00", "updated_at": "2024-11-29 10:00:00"})
        for i in (1, 2)
    ])
    return root
