"""The real services (`dagster dev`) over a generated landing zone: the landing sensor, on by
default, loads the zone into gold with no click, and a CDC file that lands later refreshes
the gold day it touches by exactly what it changes (CONTRACT section 5)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from lakehouse_assets.sample_data import generate_landing_zone
from lakehouse_assets.sources import TABLES_BY_NAME
from lakehouse_assets_tests.dagster_services import FINISHED, listening_addresses, log_tail, running_dagster
from lakehouse_assets_tests.landing_builder import record, write

SCALE, SEED = 0.02, 7
SENSOR = "landing_sensor"
REVENUE = ("order_count", "paid_order_count", "gross_revenue", "refunded_amount",
           "net_revenue", "items_sold")


def by_sensor(run: dict) -> bool:
    return {"key": "dagster/sensor_name", "value": SENSOR} in run["tags"]


@pytest.fixture(scope="module")
def live(tmp_path_factory, request):
    tmp = tmp_path_factory.mktemp("live")
    summary = generate_landing_zone(tmp / "landing", scale=SCALE, seed=SEED, dirty_rate=0.0)
    failed_before = request.session.testsfailed
    # No -h: dagster's own default address, which must be loopback.
    with running_dagster(tmp, tmp / "landing", tmp / "warehouse" / "lakehouse.duckdb", host=None) as s:
        yield s, summary
        if request.session.testsfailed > failed_before:
            print(f"--- dagster dev log ({s.log}), tail ---\n{log_tail(s.log, 20000)}")


@pytest.fixture(scope="module")
def loaded(live):
    """The services once the sensor's first load has finished."""
    services, summary = live
    started = time.monotonic()
    runs = services.wait_for_runs(
        lambda runs: any(map(by_sensor, runs)) and all(r["status"] in FINISHED for r in runs),
        timeout=480, what="the landing sensor's first load to finish")
    print(f"first load finished {time.monotonic() - started:.0f} s after the services were up")
    return services, summary, runs


def test_the_webserver_listens_on_loopback_only(live):
    services, _ = live
    addresses = listening_addresses(services.port)
    assert addresses, "nothing listens on the webserver's port"
    assert addresses <= {"127.0.0.1", "::1"}, addresses


def test_the_sensor_runs_by_default_and_loads_the_zone_with_no_click(live, loaded):
    services, summary = live
    assert services.sensor_status(SENSOR) == "RUNNING"
    _, _, runs = loaded
    sensor_runs = [r for r in runs if by_sensor(r)]
    assert sensor_runs and all(r["status"] == "SUCCESS" for r in sensor_runs), sensor_runs
    first, last = summary.partition_range.split("...")
    for key in ("bronze/core_order", "silver/orders", "gold/daily_revenue", "gold/daily_summary"):
        ranges = services.asset_partitions_materialized(key)
        assert any(a <= first and b >= last for a, b in ranges), (key, ranges)
    [(orders,)] = services.query_warehouse("SELECT count(*) FROM silver.orders")
    assert orders == summary.table("core_order").live_rows
    [(revenue_rows,)] = services.query_warehouse("SELECT count(*) FROM gold.daily_revenue")
    assert revenue_rows > 0


def revenue(services, day, tenant) -> dict:
    cols = ", ".join(REVENUE)
    rows = services.query_warehouse(
        f"SELECT {cols} FROM gold.daily_revenue WHERE date = DATE '{day}' AND tenant_id = {tenant}")
    assert len(rows) == 1, rows
    return dict(zip(REVENUE, rows[0]))


def test_a_cdc_drop_refreshes_gold_on_its_own(loaded):
    services, summary, runs_before = loaded
    # A paid order, as landed (raw DMS text), and what it adds to its day's revenue.
    order = services.query_warehouse(
        "SELECT id, created_at::DATE, tenant_id, total_amount, "
        "  (SELECT coalesce(sum(quantity), 0) FROM silver.order_items i WHERE i.order_id = o.id) "
        "FROM silver.orders o WHERE status = 'paid' ORDER BY id LIMIT 1")
    assert order, "the zone holds no paid order"
    order_id, day, tenant, amount, quantity = order[0]
    assert amount > Decimal("0")
    columns = ("id", "tenant_id", "customer_id", "status", "currency", "total_amount",
               "created_at", "updated_at")
    (raw,) = services.query_warehouse(
        f"SELECT {', '.join(columns)} FROM bronze.core_order WHERE id = '{order_id}' "
        "ORDER BY _commit_ts DESC, _seq DESC LIMIT 1")
    before = revenue(services, day, tenant)

    # DMS lands the refund after everything else: a later commit, a higher sequence number.
    commit = datetime.combine(summary.last_commit_date + timedelta(days=1), datetime.min.time())
    commit += timedelta(minutes=1)
    ts = commit.strftime("%Y-%m-%d %H:%M:%S.%f")
    values = dict(zip(columns, raw)) | {"status": "refunded", "updated_at": ts}
    line = record(TABLES_BY_NAME["core_order"], "U", ts, values, seq="9" * 35)
    path = write(services.landing, "core_order", commit.strftime("%Y%m%d-%H%M%S000.csv"), [line])
    landed = time.time()
    print(f"landed {path.name}: order {order_id} of {day}, tenant {tenant}: paid -> refunded")

    known = {r["runId"] for r in runs_before}
    runs = services.wait_for_runs(
        lambda runs: any(by_sensor(r) and r["runId"] not in known for r in runs)
        and all(r["status"] in FINISHED for r in runs),
        timeout=300, what="a landing-sensor run for the new file to finish")
    new = [r for r in runs if by_sensor(r) and r["runId"] not in known]
    assert all(r["status"] == "SUCCESS" for r in new), new

    after = revenue(services, day, tenant)
    assert after == before | {
        "paid_order_count": before["paid_order_count"] - 1,
        "refunded_amount": before["refunded_amount"] + amount,
        "net_revenue": before["net_revenue"] - amount,
        "items_sold": before["items_sold"] - quantity,
    }

    # When the refreshed day reached gold, by Dagster's own clock.
    new_ids = {r["runId"] for r in new}
    mats = [m for m in services.materializations("gold/daily_revenue", limit=200)
            if m["runId"] in new_ids and m["partition"] == str(day)]
    assert mats, f"no gold/daily_revenue materialization of {day} by runs {new_ids}"
    gold_at = int(mats[-1]["timestamp"]) / 1000
    first = min(new, key=lambda r: r["creationTime"])
    print(f"latency, file landed -> run requested by the sensor: "
          f"{first['creationTime'] - landed:.1f} s; -> run started: "
          f"{first['startTime'] - landed:.1f} s; -> gold/daily_revenue {day} materialized: "
          f"{gold_at - landed:.1f} s (run took {first['endTime'] - first['startTime']:.1f} s)")
