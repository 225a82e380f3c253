"""The real services (`dagster dev`) over a generated landing zone: the landing sensor, on by
default, loads the zone into gold with no click; a CDC file that lands later refreshes the
gold day it touches by exactly what it changes (CONTRACT section 5); a backfill of some days
launched as the UI does targets those days of every asset and nothing else; files landing
during a long backfill are all taken in after it."""

from __future__ import annotations

import shutil
import time
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from lakehouse_assets.definitions import defs
from lakehouse_assets.landing.span import landing_span
from lakehouse_assets.sample_data import generate_landing_zone
from lakehouse_assets.schemas.tables import ALL_SPECS
from lakehouse_assets.sources import TABLES_BY_NAME
from lakehouse_assets.storage.tables import TableRef
from lakehouse_assets_tests.dagster_services import FINISHED, listening_addresses, log_tail, running_dagster
from lakehouse_assets_tests.harness import assert_same, snapshot
from lakehouse_assets_tests.landing_builder import record, write
from lakehouse_assets_tests.pipeline import run_pipeline

pytestmark = pytest.mark.system

SCALE, SEED = 0.02, 7
SENSOR = "landing_sensor"
ALL_KEYS = {k.to_user_string() for k in defs.resolve_all_asset_keys()}
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


BACKFILL_STATUS = """
query Status($id: String!) { partitionBackfillOrError(backfillId: $id) {
  ... on PartitionBackfill { status } ... on PythonError { message } } }"""

BACKFILL = """
mutation Backfill($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message }
  ... on InvalidSubsetError { message } } }"""

TARGETED = """
query Targeted($id: String!, $key: AssetKeyInput!) { partitionBackfillOrError(backfillId: $id) {
  ... on PartitionBackfill { partitionsTargetedForAssetKey(assetKey: $key) {
    ranges { start end } partitionKeys } } } }"""


def launch_backfill(services, days: list[str], title: str) -> str:
    """A backfill of these days of every asset, launched as the UI's launch dialog does."""
    keys = [{"path": k.split("/")} for k in sorted(ALL_KEYS)]
    launched = services.graphql(BACKFILL, p={"assetSelection": keys, "partitionNames": days,
                                             "title": title})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    return launched["backfillId"]


def wait_for_backfill(services, backfill_id: str, timeout: float) -> str:
    def done():
        found = services.graphql(BACKFILL_STATUS, id=backfill_id)["partitionBackfillOrError"]
        return found["status"] if found["status"] not in ("REQUESTED", "CANCELING", "FAILING") else None

    return services.wait(f"backfill {backfill_id} to complete", done, timeout=timeout, every=2)


def live_copy(services, tmp_path: Path) -> Path:
    """The services' warehouse, copied while no run writes it."""
    live = tmp_path / "live.duckdb"
    services.wait_until_idle(300)
    shutil.copyfile(services.warehouse, live)
    if Path(f"{services.warehouse}.wal").exists():
        shutil.copyfile(f"{services.warehouse}.wal", f"{live}.wal")
    return live


def on_days(tables: dict[str, pl.DataFrame], days: list[str]) -> dict[str, pl.DataFrame]:
    """The rows of each table in its partitions of these days."""
    wanted = [datetime.fromisoformat(d).date() for d in days]
    out = {}
    for name, frame in tables.items():
        column = ALL_SPECS[TableRef(*name.split("."))].partition_column
        out[name] = frame if column is None else frame.filter(pl.col(column).cast(pl.Date).is_in(wanted))
    return out


def test_a_backfill_of_three_days_from_the_ui_targets_those_days_of_every_asset(loaded, tmp_path):
    """The UI's backfill of 3 days of every asset targets exactly those 3 days of each (the old
    design's silver-to-gold AllPartitionMapping targeted every later day of gold), and the 3
    days of every table equal a rebuild's."""
    services, summary, _ = loaded
    last = datetime.fromisoformat(summary.partition_range.split("...")[1]).date()
    days = [str(last - timedelta(days=n)) for n in (3, 2, 1)]
    backfill = launch_backfill(services, days, "three days")
    assert wait_for_backfill(services, backfill, timeout=600) in ("COMPLETED", "COMPLETED_SUCCESS")
    for key in sorted(ALL_KEYS):
        found = services.graphql(TARGETED, id=backfill, key={"path": key.split("/")})["partitionBackfillOrError"]
        targeted = found["partitionsTargetedForAssetKey"]
        assert targeted["ranges"] == [{"start": days[0], "end": days[-1]}], (key, targeted)
    for key in ("bronze/core_order", "silver/orders", "gold/daily_revenue", "gold/customer_segments"):
        materialized = {m["partition"] for m in services.materializations(key, limit=50)
                        if m["runId"] in backfill_runs(services, backfill)}
        assert materialized == set(days), (key, materialized)

    got = on_days(snapshot(live_copy(services, tmp_path)), days)
    fresh = tmp_path / "fresh.duckdb"
    first, final = landing_span(str(services.landing))
    assert run_pipeline(services.landing, fresh, str(first), str(final)).success
    assert_same(got, on_days(snapshot(fresh), days))


def backfill_runs(services, backfill_id: str) -> set[str]:
    return {r["runId"] for r in services.runs()
            if {"key": "dagster/backfill", "value": backfill_id} in r["tags"]}


def test_files_landing_during_a_long_backfill_are_all_taken_in_after_it(loaded, tmp_path):
    """Load: a backfill of every asset over the whole span is launched from the UI's API and
    CDC files keep landing while it runs. While a run writes the DuckDB file the landing
    sensor skips its ticks ("a run is writing the warehouse") and takes the files in after the
    run: every run succeeds, no two ran at once, no lock error, nothing is lost, and the
    warehouse ends exactly as a rebuild of the final landing zone from scratch. (The old
    design's sensor queued runs during the backfill instead.)"""
    services, summary, _ = loaded
    known = {r["runId"] for r in services.runs()}
    first, last = landing_span(str(services.landing))
    days = [str(first + timedelta(days=i)) for i in range((last - first).days + 1)]
    backfill = launch_backfill(services, days, "load test")
    services.wait_for_runs(lambda runs: any(r["runId"] not in known and r["status"] == "STARTED"
                                            for r in runs), timeout=300, what="the backfill's run to start")
    # Orders land while it runs: new keys, on other days, committed after everything else.
    order = TABLES_BY_NAME["core_order"]
    commit = datetime.combine(last + timedelta(days=1), datetime.min.time())
    for n in range(3):
        ts = (commit + timedelta(minutes=n)).strftime("%Y-%m-%d %H:%M:%S.%f")
        created = (first + timedelta(days=3 * n + 1)).isoformat() + " 12:00:00"
        values = {"id": 9_000_000 + n, "tenant_id": 1, "customer_id": 1, "status": "paid",
                  "currency": "EUR", "total_amount": f"{100 + n}.00", "created_at": created,
                  "updated_at": created}
        write(services.landing, order, (commit + timedelta(minutes=n)).strftime("%Y%m%d-%H%M%S000.csv"),
              [record(order, "I", ts, values, seq=str(10**30 + n))])
        time.sleep(6)  # in separate sensor ticks, while the backfill runs
    assert wait_for_backfill(services, backfill, timeout=900) in ("COMPLETED", "COMPLETED_SUCCESS")
    runs = services.wait_for_runs(
        lambda runs: any(by_sensor(r) and r["runId"] not in known for r in runs)
        and all(r["status"] in FINISHED for r in runs),
        timeout=900, what="the sensor's run for the files landed during the backfill")
    new = [r for r in runs if r["runId"] not in known]
    assert len(new) >= 2 and all(r["status"] == "SUCCESS" for r in new), new
    # one writer at a time: no two of these runs were ever in progress together
    spans = sorted((r["startTime"], r["endTime"]) for r in new)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), spans
    assert "Could not set lock" not in services.log.read_text(errors="replace")

    got = snapshot(live_copy(services, tmp_path))
    fresh = tmp_path / "fresh.duckdb"
    final = landing_span(str(services.landing))
    assert final[1] > last
    assert run_pipeline(services.landing, fresh, str(final[0]), str(final[1])).success
    assert {9_000_000, 9_000_001, 9_000_002} <= set(got["silver.orders"]["id"])
    # The files' commit day, after the backfill's: gold tables the files do not feed (e.g.
    # subscription_mrr) get their rows of a new day from the daily refresh, not from the
    # sensor's run; the rebuild's gold is compared up to the backfill's last day.
    expected = snapshot(fresh)
    for tables in (got, expected):
        for name, frame in tables.items():
            if name.startswith("gold."):
                tables[name] = frame.filter(pl.col("date") <= last)
    assert_same(got, expected)
