"""The whole lakehouse in AWS mode (landing zone and warehouse on moto's S3, tables in its Glue)
gives exactly the rows of local mode, registers every table and day in Glue, and re-runs
through the contract's CLI command leave one copy of each partition."""

import hashlib
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import polars as pl
import pytest
from dagster import DagsterInstance, materialize
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from lakehouse_assets.landing.files import LandingFile
from lakehouse_assets.landing.s3 import S3LandingStore
from lakehouse_assets.resources import resources_for_environment
from lakehouse_assets.resources.landing import LandingZone
from lakehouse_assets.sample_data import generate_landing_zone
from lakehouse_assets.storage.glue import GlueTable, glue_columns
from lakehouse_assets_tests.moto_server import ACCESS_KEY, SECRET_KEY, aws  # noqa: F401  (fixture)
from lakehouse_assets_tests.pipeline import ALL_ASSETS, run_pipeline

SCALE = 0.02
HISTORY_DAYS = 30  # business dates span 40 days: 32 tables x 40 partitions
PREFIX = "lh"
LANDING = "s3://lakehouse-landing/dms/landing"
WAREHOUSE_BUCKET = "lakehouse-warehouse"
WAREHOUSE = f"s3://{WAREHOUSE_BUCKET}/tables"
LAYERS = ("bronze", "silver", "gold")
EVENTS_IN_MEMORY = """
event_log_storage:
  module: dagster._core.storage.event_log
  class: InMemoryEventLogStorage
"""


def aws_mode_env() -> dict[str, str]:
    return {
        "LAKEHOUSE_ENV": "aws",
        "LAKEHOUSE_LANDING_URI": LANDING,
        "LAKEHOUSE_WAREHOUSE_URI": WAREHOUSE,
        "LAKEHOUSE_GLUE_DATABASE_PREFIX": PREFIX,
    }


def tidy(frame: pl.DataFrame) -> pl.DataFrame:
    """Comparable: without the columns that record when and by which run it was read."""
    frame = frame.drop("_ingested_at", "_run_id", strict=False)
    return frame.sort(frame.columns, nulls_last=True)


def local_tables(warehouse: Path) -> dict[str, pl.DataFrame]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        names = con.execute("SELECT table_schema, table_name FROM information_schema.tables").fetchall()
        return {f"{s}.{t}": con.sql(f'SELECT * FROM "{s}"."{t}"').pl() for s, t in names}
    finally:
        con.close()


def glue_tables(aws) -> dict[str, GlueTable]:
    glue = aws.glue()
    out = {}
    for layer in LAYERS:
        for page in glue.get_paginator("get_tables").paginate(DatabaseName=f"{PREFIX}_{layer}"):
            out.update({f"{layer}.{t['Name']}": GlueTable(glue, f"{PREFIX}_{layer}", t["Name"]) for t in page["TableList"]})
    return out


def read_through_catalog(aws) -> dict[str, pl.DataFrame]:
    """What a catalog reader (Athena) sees: the files in the registered partitions' folders."""
    keys = aws.keys(WAREHOUSE_BUCKET)
    out = {}
    for name, table in glue_tables(aws).items():
        locations = {p.location for p in table.partitions()}
        files = [f"s3://{WAREHOUSE_BUCKET}/{k}" for k in keys
                 if f"s3://{WAREHOUSE_BUCKET}/{k.rsplit('/', 1)[0]}/" in locations]
        assert len(files) == len(locations), name  # one file in each partition
        out[name] = pl.read_parquet(files)
    return out


@pytest.fixture(scope="module")
def zone(tmp_path_factory):
    root = tmp_path_factory.mktemp("landing")
    # With the default rate of dirty records, so rejects and quarantine are compared too.
    return root, generate_landing_zone(root, scale=SCALE, seed=11, history_days=HISTORY_DAYS)


@pytest.fixture(scope="module")
def local_run(zone, tmp_path_factory):
    root, summary = zone
    warehouse = tmp_path_factory.mktemp("wh") / "lakehouse.duckdb"
    started = time.perf_counter()
    result = run_pipeline(root, warehouse, *summary.partition_range.split("..."))
    print(f"\nwall time, local mode: {time.perf_counter() - started:.1f}s")
    assert result.success
    return local_tables(warehouse)


@pytest.fixture(scope="module")
def aws_run(aws, zone):
    root, summary = zone
    aws.create_bucket("lakehouse-landing")
    aws.create_bucket(WAREHOUSE_BUCKET)
    aws.upload_folder(root, "lakehouse-landing", "dms/landing")
    first, last = summary.partition_range.split("...")
    with pytest.MonkeyPatch.context() as mp:
        for name, value in aws_mode_env().items():
            mp.setenv(name, value)
        started = time.perf_counter()
        result = materialize(
            ALL_ASSETS,
            resources=resources_for_environment(),  # the environment decides, as in production
            instance=DagsterInstance.ephemeral(),
            tags={ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last},
            raise_on_error=False,
        )
        print(f"\nwall time, aws mode: {time.perf_counter() - started:.1f}s")
    assert result.success
    return result, read_through_catalog(aws)


def test_aws_mode_gives_exactly_the_rows_of_local_mode(local_run, aws_run):
    _, aws_tables = aws_run
    assert sorted(aws_tables) == sorted(local_run)
    assert len(local_run) == 10 + 16 + 6
    for name, local in local_run.items():
        assert aws_tables[name].schema == local.schema, name
        assert tidy(aws_tables[name]).equals(tidy(local)), name
    assert local_run["silver.orders_quarantine"].height > 0  # the dirty records went somewhere


def test_glue_holds_every_table_with_its_columns_and_one_partition_per_day(aws, aws_run, zone, local_run):
    _, summary = zone
    first, last = summary.partition_range.split("...")
    days = pl.date_range(pl.date(*map(int, first.split("-"))), pl.date(*map(int, last.split("-"))), eager=True)
    expected_days = [d.isoformat() for d in days]
    for name, table in glue_tables(aws).items():
        raw = table.get()
        assert raw["PartitionKeys"] == [{"Name": "dt", "Type": "string"}], name
        assert raw["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")
        assert raw["StorageDescriptor"]["Columns"] == glue_columns(local_run[name].schema), name
        partitions = table.partitions()
        assert sorted(p.day for p in partitions) == expected_days, name
        assert sum(p.rows for p in partitions) == local_run[name].height, name
    # One file per partition: nothing else is left under the warehouse.
    total_partitions = sum(len(t.partitions()) for t in glue_tables(aws).values())
    assert len(aws.keys(WAREHOUSE_BUCKET)) == total_partitions


def test_no_credential_reaches_logs_or_metadata(aws, aws_run):
    result, _ = aws_run
    text = "\n".join(repr(e) for e in result.all_events)
    assert "dagster/row_count" in text  # metadata is in what we searched
    assert SECRET_KEY not in text and ACCESS_KEY not in text


def test_the_contract_cli_reruns_in_aws_mode_with_one_copy_per_partition(aws, aws_run, zone, tmp_path):
    """The same backfill command as local mode, with only section 6's variables set."""
    _, before = aws_run
    root, summary = zone
    home = tmp_path / "dagster_home"
    home.mkdir()
    # Events in memory: a sqlite event log spends minutes on fsyncs for ~1,300 partition events.
    (home / "dagster.yaml").write_text(EVENTS_IN_MEMORY)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKEHOUSE_", "DAGSTER_"))}
    env.update(aws_mode_env(), DAGSTER_HOME=str(home), LAKEHOUSE_PARTITIONS_START="2024-01-01")
    dagster = Path(sys.executable).with_name("dagster")
    started = time.perf_counter()
    proc = subprocess.run(
        [str(dagster), "asset", "materialize", "-m", "lakehouse_assets.definitions",
         "--select", "*", "--partition-range", summary.partition_range],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    print(f"\nwall time, aws mode through the CLI (a re-run): {time.perf_counter() - started:.1f}s")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert SECRET_KEY not in proc.stdout + proc.stderr
    after = read_through_catalog(aws)
    for name in before:
        assert tidy(after[name]).equals(tidy(before[name])), name
    total_partitions = sum(len(t.partitions()) for t in glue_tables(aws).values())
    assert len(aws.keys(WAREHOUSE_BUCKET)) == total_partitions


# ---- the S3 landing store on its own ------------------------------------------------------

STORE_BUCKET = "landing-store"


@pytest.fixture(scope="module")
def store(aws):
    aws.create_bucket(STORE_BUCKET)
    s3 = aws.s3()
    folder = "dms/landing/public/core_order"
    keys = [f"{folder}/20241201-{i:09d}.csv" for i in range(1005)]  # > one ListObjectsV2 page
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda key: s3.put_object(Bucket=STORE_BUCKET, Key=key, Body=b"I,x\n"), keys))
    s3.put_object(Bucket=STORE_BUCKET, Key=f"{folder}/LOAD00000001.csv", Body=b"first load\n")
    s3.put_object(Bucket=STORE_BUCKET, Key=f"{folder}/", Body=b"")  # a folder marker
    s3.put_object(Bucket=STORE_BUCKET, Key=f"{folder}/notes.txt", Body=b"")
    s3.put_object(Bucket=STORE_BUCKET, Key=f"{folder}/nested/LOAD00000002.csv", Body=b"")
    s3.put_object(Bucket=STORE_BUCKET, Key="dms/landing-other/public/core_order/LOAD00000009.csv", Body=b"")
    s3.put_object(Bucket=STORE_BUCKET, Key="dms/secret.csv", Body=b"do not read")
    return LandingZone(uri=f"s3://{STORE_BUCKET}/dms/landing/").store()


def test_the_s3_landing_store_lists_a_table_folder_like_a_local_one(store):
    assert isinstance(store, S3LandingStore)
    assert store.describe() == f"s3://{STORE_BUCKET}/dms/landing"
    files, ignored = store.list_files("public/core_order")
    assert len(files) == 1006
    assert files[-1].path == "public/core_order/LOAD00000001.csv"
    assert files[-1].size == len(b"first load\n")
    assert files[-1].etag == hashlib.md5(b"first load\n").hexdigest()
    assert ignored == [
        "public/core_order/nested: not a regular file",
        "public/core_order/notes.txt: not a LOAD or CDC file name",
    ]
    assert store.read_bytes(files[-1]) == b"first load\n"
    assert store.list_files("public/core_customer") == ([], [])


@pytest.mark.parametrize("path", ["public/../../secret.csv", "/dms/secret.csv", "public//x.csv", "./x.csv"])
def test_the_s3_landing_store_reads_nothing_outside_its_prefix(store, path):
    with pytest.raises(ValueError, match="outside the landing root"):
        store.read_bytes(LandingFile(path, 0))
