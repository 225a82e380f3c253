"""A tick costs what the new files cost: as the landing zone's history grows drop after drop,
the records a tick reads stay those of the new drop, and its cursor (only what is in flight)
does not grow."""

import pytest

from lakehouse_assets.sensors.cursor import Cursor
from lakehouse_assets.sources import TABLES_BY_NAME as T
from lakehouse_assets_tests.harness import Lakehouse, only_request
from lakehouse_assets_tests.landing_builder import record, write

pytestmark = pytest.mark.pipeline

DROP_ORDERS = 20


def order(id, day):
    at = f"2024-11-{day:02d} 10:00:00"
    return {"id": id, "tenant_id": 1, "customer_id": 1, "status": "paid", "currency": "EUR",
            "total_amount": "10.00", "created_at": at, "updated_at": at}


def drop(root, n: int) -> None:
    """The n-th drop: DROP_ORDERS new orders and an update of an order of the first drop."""
    ts = f"2024-12-{1 + n:02d} 08:00:00"
    lines = [record(T["core_order"], "I", ts, order(n * 1000 + i, 1 + (n + i) % 28), str(n * 100 + i).rjust(35, "0"))
             for i in range(DROP_ORDERS)]
    lines.append(record(T["core_order"], "U", ts, {**order(1000, 2), "status": "shipped"}, str(n * 100 + 99).rjust(35, "0")))
    write(root, "core_order", f"202412{1 + n:02d}-080000000.csv", lines)


def test_records_read_and_cursor_stay_flat_as_history_grows(tmp_path):
    lake = Lakehouse(tmp_path / "landing", tmp_path / "lakehouse.duckdb")
    read, cursors, in_flight = [], [], []
    for n in range(1, 6):
        drop(lake.landing, n)
        request = only_request(lake.tick())
        read.append((int(request.tags["lakehouse/new_files"]), int(request.tags["lakehouse/records_read"])))
        in_flight.append(len(Cursor.decode(lake.cursor).requested))
        lake.run(request)
        lake.tick()  # after the run: the manifest has caught up with the cursor
        cursors.append(len(lake.cursor))
    assert read == [(1, DROP_ORDERS + 1)] * 5  # history grows fivefold, a tick reads one drop
    assert in_flight == [1] * 5
    assert max(cursors) == min(cursors)  # nothing about the history is kept in the cursor
    assert Cursor.decode(lake.cursor).requested == {}
