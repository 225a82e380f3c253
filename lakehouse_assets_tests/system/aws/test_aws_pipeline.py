"""The whole lakehouse in AWS mode (landing zone on moto's S3, every table an Iceberg table in
its Glue) gives exactly the rows of local mode over the same zone; every table is readable by
another Iceberg reader as soon as it exists; each materialization names its snapshot; the
contract's CLI re-runs it changing nothing; and bronze is the system of record: with landing
objects deleted, a full backfill and a sensor tick leave the warehouse as it was."""

from datetime import date

import pytest
from botocore.client import BaseClient
from pyiceberg.catalog.glue import GlueCatalog

from lakehouse_assets.sample_data import generate_landing_zone
from lakehouse_assets.storage.tables import TableRef
from lakehouse_assets_tests.aws_lakehouse import (
    AwsLakehouse,
    AwsMode,
    assert_same_as_local,
    dagster_home,
    finished,
    materialize_cli,
)
from lakehouse_assets_tests.harness import assert_same, snapshot
from lakehouse_assets_tests.deploy.test_deploy_files import S3_ACTION, allowed_actions
from lakehouse_assets_tests.moto_server import ACCESS_KEY, REGION, SECRET_KEY, shared_aws  # noqa: F401 (fixture)
from lakehouse_assets_tests.pipeline import run_pipeline

pytestmark = pytest.mark.system

SCALE = 0.02
TABLES = 10 + 16 + 6  # bronze (8, rejects, manifest), silver (8 and quarantines), gold


@pytest.fixture(scope="module")
def zone(tmp_path_factory):
    root = tmp_path_factory.mktemp("landing")
    # The default rate of dirty records: rejects and quarantine are compared too.
    summary = generate_landing_zone(root, scale=SCALE, seed=11, history_days=30)
    first, last = summary.partition_range.split("...")
    return root, date.fromisoformat(first), date.fromisoformat(last)


@pytest.fixture(scope="module")
def local(zone, tmp_path_factory):
    root, first, last = zone
    warehouse = tmp_path_factory.mktemp("local") / "lakehouse.duckdb"
    assert run_pipeline(root, warehouse, str(first), str(last)).success
    return snapshot(warehouse)


@pytest.fixture(scope="module")
def mode(shared_aws, zone):  # noqa: F811
    mode = AwsMode(shared_aws, "pipe").create()
    mode.upload(zone[0])
    return mode


@pytest.fixture(scope="module")
def lake(mode):
    return AwsLakehouse(mode)


@pytest.fixture(scope="module")
def calls():
    """Every AWS API call made through botocore meanwhile: (service, operation)."""
    made: set[tuple[str, str]] = set()
    original = BaseClient._make_api_call

    def recorded(self, operation, params):
        made.add((self.meta.service_model.service_name, operation))
        return original(self, operation, params)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(BaseClient, "_make_api_call", recorded)
        yield made


@pytest.fixture(scope="module")
def backfill(lake, zone, calls):
    _, first, last = zone
    result = lake.backfill(first, last)
    return result, lake.mode.snapshot(), set(calls)


def test_aws_mode_gives_exactly_the_rows_of_local_mode(local, backfill):
    _, tables, _ = backfill
    assert len(local) == TABLES and sorted(tables) == sorted(local)
    assert_same_as_local(tables, local)
    for name in ("silver.orders_quarantine", "gold.customer_segments"):
        assert tables[name].height > 0, name  # dirty records went somewhere; gold was computed


def test_every_table_is_an_iceberg_table_in_glue_that_another_reader_reads(mode, backfill, local):
    glue = mode.aws.glue()
    databases = {d["Name"] for d in glue.get_databases()["DatabaseList"]}
    assert {f"{mode.prefix}_{layer}" for layer in ("bronze", "silver", "gold", "state")} <= databases
    # A reader that is not the project: pyiceberg's Glue catalog, as Athena or Spark would find them.
    catalog = GlueCatalog("reader", **{"glue.region": REGION, "glue.endpoint": mode.aws.endpoint,
                                       "s3.region": REGION, "s3.endpoint": mode.aws.endpoint})
    tables = mode.glue_tables(("bronze", "silver", "gold", "state"))
    state = {name for layer, name in tables if layer == "state"}
    assert len(tables) == TABLES + len(state)
    assert {"orders_keys", "events_keys", "marks", "gold_pending"} <= state and len(state) >= 8 + 2
    for layer, name in tables:
        registered = glue.get_table(DatabaseName=f"{mode.prefix}_{layer}", Name=name)["Table"]
        assert registered["Parameters"]["table_type"] == "ICEBERG", name
        assert registered["StorageDescriptor"]["Location"] == f"{mode.warehouse_uri}/{layer}/{name}"
        rows = catalog.load_table((f"{mode.prefix}_{layer}", name)).scan().to_arrow().num_rows
        if layer != "state":
            assert rows == local[f"{layer}.{name}"].height, name


def test_each_materialization_records_the_snapshot_it_committed(mode, backfill):
    result, _, _ = backfill
    warehouse = mode.warehouse()
    with warehouse.reader() as look:
        materializations = result.get_asset_materialization_events()
        assert len(materializations) >= TABLES  # one per asset (a range run records each partition)
        snapshots = {}
        for event in materializations:
            m = event.event_specific_data.materialization
            layer, name = m.asset_key.path
            if (layer, name) not in snapshots:
                snapshots[layer, name] = {s.snapshot_id: s for s in look.table(TableRef(layer, name)).snapshots()}
            snapshot = snapshots[layer, name].get(int(m.metadata["snapshot_id"].value))
            assert snapshot is not None, (layer, name)
            assert "lakehouse.write-id" in snapshot.summary.additional_properties  # this project's commit
        assert len(snapshots) == TABLES


def test_the_iam_policy_allows_every_aws_call_of_a_run(backfill):
    """deploy/iam-policy.json against what a run did: Glue and S3 calls through botocore
    (pyiceberg's catalog, the landing zone), and the S3 calls of pyarrow's file system, which
    pyiceberg reads and writes data and metadata files with (not botocore: not recorded)."""
    _, _, made = backfill
    pyarrow_s3 = {"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListBucket"}
    needed = {f"{service}:{S3_ACTION.get(op, op)}" for service, op in made} | pyarrow_s3
    assert {"glue:CreateTable", "glue:UpdateTable", "s3:ListBucket"} <= needed  # the run was recorded
    assert sorted(needed - allowed_actions()) == []
    # Nothing more: but listing databases, which maintenance and pyiceberg's namespace checks do.
    assert allowed_actions() - needed <= {"glue:GetDatabase", "glue:GetDatabases"}


def test_no_credential_reaches_logs_or_metadata(backfill):
    result, _, _ = backfill
    text = "\n".join(repr(e) for e in result.all_events)
    assert "snapshot_id" in text  # metadata is in what was searched
    assert SECRET_KEY not in text and ACCESS_KEY not in text


def test_the_contract_cli_reruns_in_aws_mode_changing_nothing(mode, zone, backfill, tmp_path):
    _, before, _ = backfill
    _, first, last = zone
    snapshots = _snapshot_count(mode, "silver", "orders")
    out = finished(materialize_cli("*", f"{first}...{last}", mode.cli_env(dagster_home(tmp_path / "home")), tmp_path))
    assert SECRET_KEY not in out
    assert _snapshot_count(mode, "silver", "orders") > snapshots  # it did write
    assert_same(mode.snapshot(), before)


def test_bronze_is_the_system_of_record(mode, lake, zone, backfill, tmp_path):
    """Landing objects deleted after ingest (the zone's retention, a cleanup): a full backfill
    through the CLI and a sensor tick and its run leave every table as it was."""
    _, before, _ = backfill
    _, first, last = zone
    lake.tick_and_run()  # the sensor knows the zone as ingested
    keys = mode.landing_keys()
    first_loads = {k.rsplit("/", 1)[0]: k for k in reversed(keys) if "/LOAD" in k}
    gone = [*first_loads.values(), *[k for k in keys if "/LOAD" not in k][::3]]
    assert len(first_loads) == 8 and any("core_order/2024" in k for k in gone)
    for key in gone:
        mode.delete(key)
    finished(materialize_cli("*", f"{first}...{last}", mode.cli_env(dagster_home(tmp_path / "home")), tmp_path))
    assert_same(mode.snapshot(), before)
    assert lake.tick_and_run() == []  # nothing new: a vanished file is no change
    assert_same(mode.snapshot(), before)


def _snapshot_count(mode: AwsMode, layer: str, name: str) -> int:
    with mode.warehouse().reader() as look:
        return len(look.table(TableRef(layer, name)).snapshots())
