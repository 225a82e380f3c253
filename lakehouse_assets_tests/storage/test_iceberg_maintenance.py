"""Iceberg table maintenance on a moto S3 + Glue server: orphan files go only after the grace
period and referenced files never; old snapshots expire; compaction keeps the rows."""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta, timezone

import polars as pl
import pytest

from lakehouse_assets.storage import iceberg_files
from lakehouse_assets.storage.iceberg_maintenance import (
    Maintained,
    MaintenanceConfig,
    compact,
    expire_snapshots,
    iceberg_maintenance_job,
    iceberg_maintenance_schedule,
    maintenance_definitions,
    referenced_files,
    remove_orphans,
)
from lakehouse_assets.storage.iceberg_warehouse import IcebergWarehouse
from lakehouse_assets.schemas.types import PgType
from lakehouse_assets.storage.tables import Scope, TableRef, TableSpec
from lakehouse_assets_tests.moto_server import REGION, MotoAWS, shared_aws  # noqa: F401 (fixture)
from lakehouse_assets_tests.storage.session_contract import EVENTS, at, read, rows

pytestmark = pytest.mark.system

BUCKET = "lakehouse-iceberg-upkeep"
_names = itertools.count()


@pytest.fixture(scope="module")
def moto(shared_aws) -> MotoAWS:  # noqa: F811
    shared_aws.create_bucket(BUCKET)
    return shared_aws


@pytest.fixture
def warehouse(moto, tmp_path):
    n = next(_names)
    warehouse = IcebergWarehouse(warehouse_uri=f"s3://{BUCKET}/m{n}", glue_database_prefix=f"m{n}", region_name=REGION,
                                 endpoint_url=moto.endpoint, scratch_dir=str(tmp_path / "scratch"))
    yield warehouse
    warehouse.release()


def three_writes(session) -> list[int]:
    return [
        session.replace(EVENTS, rows((1, "a", "1", at(1)), (2, "b", "2", at(2))), Scope()).snapshot_id,
        session.replace(EVENTS, rows((3, "c", "3", at(1))), Scope.of_days([date(2024, 12, 1)])).snapshot_id,
        session.replace(EVENTS, rows((4, "d", "4", at(2))), Scope.of_days([date(2024, 12, 2)])).snapshot_id,
    ]


def table_prefix(warehouse: IcebergWarehouse) -> str:
    return warehouse.warehouse_uri.removeprefix(f"s3://{BUCKET}/") + "/silver/contract_events/"


def test_an_orphan_goes_after_the_grace_period_and_referenced_files_never(warehouse, moto):
    session = warehouse.session()
    first, *_ = three_writes(session)
    prefix = table_prefix(warehouse)
    orphan = prefix + "data/at_day=2024-12-01/00000-0-crashed-writer.parquet"
    moto.s3().put_object(Bucket=BUCKET, Key=orphan, Body=b"PAR1 left by a writer that died")
    table = session.table(EVENTS.ref)
    referenced = referenced_files(table)
    assert f"{BUCKET}/{orphan}" not in referenced
    listed = {k for k in moto.keys(BUCKET, prefix) if not k.endswith("/")}
    assert {f"{BUCKET}/{k}" for k in listed} - referenced == {f"{BUCKET}/{orphan}"}  # each of the rest is needed

    now = datetime.now(timezone.utc)
    assert remove_orphans(table, moto.s3(), now - timedelta(hours=1)) == 0  # within the grace period
    assert orphan in moto.keys(BUCKET, prefix)
    removed = remove_orphans(table, moto.s3(), now + timedelta(minutes=1))  # everything is older than that now
    assert orphan not in moto.keys(BUCKET, prefix)
    assert {k for k in moto.keys(BUCKET, prefix) if not k.endswith("/")} == listed - {orphan}
    assert removed == 1
    # Every snapshot still reads, the first one included.
    assert read(session)["id"].to_list() == [3, 4]
    then = session.con.sql(f"SELECT id FROM {session.scan(EVENTS, snapshot_id=first)} ORDER BY id").pl()
    assert then["id"].to_list() == [1, 2]


def test_snapshots_past_retention_expire_but_the_latest_stay_and_their_files_then_go(warehouse, moto):
    session = warehouse.session()
    first, second, third = three_writes(session)
    table = session.table(EVENTS.ref)
    later = datetime.now(timezone.utc) + timedelta(minutes=1)
    assert expire_snapshots(table, later - timedelta(days=7), keep_last=1) == 0  # none old enough
    assert expire_snapshots(table, later, keep_last=1) == 2
    table = table.refresh()
    assert [s.snapshot_id for s in table.snapshots()] == [third]
    with pytest.raises(ValueError, match=f"no snapshot {first}"):
        session.scan(EVENTS, snapshot_id=first)
    # The files only the expired snapshots needed are orphans now.
    data_before = [k for k in moto.keys(BUCKET, table_prefix(warehouse) + "data/") if k.endswith(".parquet")]
    remove_orphans(table, moto.s3(), later)
    data_after = [k for k in moto.keys(BUCKET, table_prefix(warehouse) + "data/") if k.endswith(".parquet")]
    assert len(data_before) == 4 and len(data_after) == 2
    assert read(session)["id"].to_list() == [3, 4]


def test_compaction_rewrites_many_small_files_of_a_partition_as_one_with_the_same_rows(warehouse, monkeypatch):
    monkeypatch.setattr(iceberg_files, "BATCH_ROWS", 10)
    session = warehouse.session()
    many = rows(*((i, f"k{i}", "1.25", at(1 + i // 50, i % 24)) for i in range(60)))  # 50 rows on day 1, 10 on day 2
    session.replace(EVENTS, many, Scope())
    monkeypatch.undo()  # compaction writes batches of the usual size
    table = session.table(EVENTS.ref)
    before = read(session)
    assert len(list(table.scan().plan_files())) == 6

    result = Maintained("t")
    compact(table, session, min_files=3, small_bytes=2**20, result=result)
    table = table.refresh()
    after_files = list(table.scan().plan_files())
    assert (result.files_compacted, result.files_written) == (5, 1)  # day 1's five files; day 2 has one
    assert len(after_files) == 2 and sorted(f.file.record_count for f in after_files) == [10, 50]
    assert table.current_snapshot().summary["lakehouse.maintenance"] == "compaction"
    assert read(session).equals(before)
    assert session.row_count(EVENTS.ref) == 60


def test_the_job_reports_what_it_did_per_table(warehouse, moto):
    session = warehouse.session()
    three_writes(session)
    totals = TableSpec(TableRef("gold", "totals"), {"n": PgType.BIGINT})
    other = session.replace(totals, pl.DataFrame({"n": [1]}), Scope())
    assert other.inserted == 1
    # Another deployment whose databases share the prefix's start, elsewhere in the bucket: not ours to touch.
    neighbour = IcebergWarehouse(warehouse_uri=warehouse.warehouse_uri + "-dev", region_name=REGION,
                                 glue_database_prefix=warehouse.glue_database_prefix + "_dev",
                                 endpoint_url=moto.endpoint, scratch_dir=warehouse.scratch_dir)
    three_writes(neighbour.session())
    neighbour.release()
    config = {"snapshot_retention_days": -1, "keep_last_snapshots": 1, "orphan_grace_hours": 0,
              "compact_min_files": 100}  # all snapshots are "old", no file is in flight
    result = iceberg_maintenance_job.execute_in_process(
        resources={"warehouse": warehouse}, run_config={"ops": {"maintain_iceberg_tables": {"config": config}}})
    assert result.success
    [output] = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    metadata = output.event_specific_data.metadata
    assert metadata["tables"].value == 2 and metadata["snapshots_expired"].value == 2
    assert metadata["orphans_removed"].value > 0  # the expired snapshots' manifests, lists and data files
    records = {r.data["table"]: r.data for r in metadata["per_table"].value.records}
    prefix = warehouse.glue_database_prefix
    assert records[f"{prefix}_silver.contract_events"]["snapshots_expired"] == 2
    assert records[f"{prefix}_gold.totals"]["snapshots_expired"] == 0
    assert read(session)["id"].to_list() == [3, 4]
    assert len(neighbour.session().table(EVENTS.ref).snapshots()) == 3
    neighbour.release()
    assert maintenance_definitions == [iceberg_maintenance_job, iceberg_maintenance_schedule]
    assert iceberg_maintenance_schedule.job_name == iceberg_maintenance_job.name
    assert MaintenanceConfig().keep_last_snapshots >= 1
