"""Crash safety in AWS mode (Iceberg tables on S3 in the Glue catalog; a moto server in this
process, so it outlives the runs it serves): a run SIGKILLed inside an Iceberg write, with
its data files, manifests and new metadata file written but Glue not yet switched to them,
or right after Glue switched, leaves every table readable as before the write or as after
it (never in between); a rerun gives exactly the tables of an uninterrupted run.

Runs are the contract's CLI, killed by the test code location `crash_points.py` (which
journals every write, so a test knows which had committed); the rerun is the product as
shipped. The uninterrupted run is local mode's, in-process: both stores give the same rows.
A small selection (orders, bronze to gold) keeps the Iceberg commits, and the time, few.
"""

from __future__ import annotations

import pytest
from dagster import AssetKey

from lakehouse_assets.sample_data import generate_landing_zone
from lakehouse_assets.storage.iceberg_warehouse import IcebergWarehouse
from lakehouse_assets.storage.warehouse import DuckDBWarehouse
from lakehouse_assets_tests.system.crash.crash_helpers import (
    CRASHING,
    PRODUCT,
    Writes,
    check_kill,
    cli_env,
    compared,
    crash_summary,  # noqa: F401  (fixture)
    differences,
    make_home,
    materialize_args,
    run,
    session_tables,
)
from lakehouse_assets_tests.harness import failures
from lakehouse_assets_tests.moto_server import REGION, moto_aws
from lakehouse_assets_tests.pipeline import run_pipeline

pytestmark = pytest.mark.system

ZONE = {"scale": 0.02, "seed": 5, "history_days": 5, "cdc_days": 2, "dirty_rate": 0.01}
SELECT = ["bronze/core_order", "bronze/cdc_rejects", "bronze/landing_manifest", "silver/orders",
          "silver/orders_quarantine", "gold/daily_revenue"]
BUCKET, PREFIX = "crash-warehouse", "crash"


@pytest.fixture(scope="module")
def zone(tmp_path_factory):
    root = tmp_path_factory.mktemp("landing")
    return root, generate_landing_zone(root, **ZONE).partition_range


@pytest.fixture(scope="module")
def reference(zone, tmp_path_factory):
    root, span = zone
    path = tmp_path_factory.mktemp("reference") / "reference.duckdb"
    result = run_pipeline(root, path, *span.split("..."), selection=[AssetKey.from_user_string(k) for k in SELECT])
    assert result.success, failures(result)
    with DuckDBWarehouse(path=str(path)).reader() as session:
        tables = session_tables(session)
    assert all(not tables[k.replace("/", ".")].is_empty() for k in SELECT if k != "bronze/cdc_rejects")
    return tables


@pytest.fixture(scope="module")
def aws():
    with moto_aws() as running:
        running.create_bucket(BUCKET)
        yield running


def metadata_location(aws, table: str) -> str | None:
    """The metadata file Glue points readers at (None: no such table)."""
    layer, name = table.split(".")
    glue = aws.glue()
    try:
        return glue.get_table(DatabaseName=f"{PREFIX}_{layer}", Name=name)["Table"]["Parameters"]["metadata_location"]
    except glue.exceptions.EntityNotFoundException:
        return None


def test_iceberg_killed_before_and_after_the_catalog_commit_then_rerun(zone, reference, aws, tmp_path):
    """On a new warehouse: killed with silver.orders' first snapshot written to S3 but Glue
    not switched (readers see the table empty, as before), then with gold.daily_revenue's
    commit landed in Glue but not returned (readers see it whole); a rerun completes it. On
    the complete warehouse, killed before bronze.core_order's commit: Glue still points at
    its old metadata (the new files are no one's) and every table reads as before."""
    root, span = zone
    warehouse = IcebergWarehouse(warehouse_uri=f"s3://{BUCKET}/w", glue_database_prefix=PREFIX,
                                 region_name=REGION, endpoint_url=aws.endpoint)
    home, journal = make_home(tmp_path), tmp_path / "journal.jsonl"
    env = cli_env(home, root, aws={**aws.env(), "LAKEHOUSE_ENV": "aws", "LAKEHOUSE_GLUE_DATABASE_PREFIX": PREFIX,
                                   "LAKEHOUSE_WAREHOUSE_URI": warehouse.warehouse_uri})
    select = ",".join(SELECT)

    def tables() -> dict:
        with warehouse.reader() as session:
            return session_tables(session)

    def crash(point: str, at: str, before: dict) -> dict:
        crashed = {**env, "LAKEHOUSE_CRASH_POINT": point, "LAKEHOUSE_CRASH_AT": at}
        out = run(materialize_args(CRASHING, span, select), crashed, tmp_path, journal=journal)
        now = check_kill(tables(), before, reference, out)
        writes = Writes.of(out.journal)
        assert (writes.killed["point"], writes.killed["table"]) == (point, at), out.tail()
        # Glue points readers at the killed write's new metadata exactly when it committed.
        switched = metadata_location(aws, at) == writes.targets[at]
        assert switched == (point == "after_commit") == (at in writes.committed), (point, at)
        return now

    now = crash("before_commit", "silver.orders", {})
    assert now.get("silver.orders") is None or now["silver.orders"].is_empty()
    now = crash("after_commit", "gold.daily_revenue", now)
    assert differences({"gold.daily_revenue": now["gold.daily_revenue"]},
                       {"gold.daily_revenue": reference["gold.daily_revenue"]}) == []

    out = run(materialize_args(PRODUCT, span, select), env, tmp_path)
    assert out.returncode == 0, out.tail()
    complete = tables()
    assert differences(compared(complete), compared(reference)) == []

    crash("before_commit", "bronze.core_order", complete)
    assert differences(compared(tables()), compared(reference)) == []
