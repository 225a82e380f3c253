"""The Iceberg warehouse on a moto S3 + Glue server: the session contract, and what only
Iceberg has (Glue registration, partitioning, one snapshot per write, time travel)."""

from __future__ import annotations

import itertools
import weakref
from datetime import date

import polars as pl
import pytest
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.io.pyarrow import ArrowScan
from pyiceberg.transforms import DayTransform, IdentityTransform

from lakehouse_assets.schemas.types import PgType
from lakehouse_assets.storage import iceberg_files
from lakehouse_assets.storage.iceberg_warehouse import ConcurrentWriteError, IcebergWarehouse
from lakehouse_assets.storage.tables import Scope, TableRef, TableSpec
from lakehouse_assets_tests.moto_server import REGION, MotoAWS, shared_aws  # noqa: F401 (fixture)
from lakehouse_assets_tests.storage.session_contract import EVENTS, SessionContract, at, read, rows

pytestmark = pytest.mark.system

BUCKET = "lakehouse-iceberg-tests"
DAY_1, DAY_2 = date(2024, 12, 1), date(2024, 12, 2)
DAILY = TableSpec(TableRef("gold", "daily_totals"), {"day": PgType.DATE, "total": PgType.MONEY}, partition_column="day")
LEDGER = TableSpec(TableRef("lakehouse", "ledger"), {"_source_file": PgType.TEXT, "n": PgType.BIGINT})
KEY_2_ON_DAY_1 = Scope(days=frozenset({DAY_1}), keys=pl.DataFrame({"id": [2]}))
_names = itertools.count()


@pytest.fixture(scope="module")
def moto(shared_aws) -> MotoAWS:  # noqa: F811
    shared_aws.create_bucket(BUCKET)
    return shared_aws


def iceberg_warehouse(moto: MotoAWS, scratch) -> IcebergWarehouse:
    """A warehouse of its own: fresh Glue databases and S3 prefix."""
    n = next(_names)
    return IcebergWarehouse(warehouse_uri=f"s3://{BUCKET}/w{n}", glue_database_prefix=f"t{n}",
                            region_name=REGION, endpoint_url=moto.endpoint, scratch_dir=str(scratch))


@pytest.fixture
def warehouse(moto, tmp_path):
    warehouse = iceberg_warehouse(moto, tmp_path / "scratch")
    yield warehouse
    warehouse.release()


class TestIcebergSession(SessionContract):
    @pytest.fixture
    def session(self, warehouse):
        yield warehouse.session()
        warehouse.release()


def test_tables_are_registered_in_glue_per_layer_and_partitioned_by_day(warehouse, moto):
    session = warehouse.session()
    session.replace(EVENTS, rows((1, "a", "1", at(1)), (2, "b", "2", at(2))), Scope())
    totals = pl.DataFrame({"day": [DAY_1], "total": ["3.50"]}).with_columns(pl.col("total").str.to_decimal(scale=2))
    session.replace(DAILY, totals, Scope())
    session.replace(LEDGER, pl.DataFrame({"_source_file": ["a.csv"], "n": [1]}), Scope())
    prefix = warehouse.glue_database_prefix
    glue = moto.glue()
    databases = {d["Name"] for d in glue.get_databases()["DatabaseList"]}
    assert {f"{prefix}_silver", f"{prefix}_gold", f"{prefix}_lakehouse"} <= databases
    registered = glue.get_table(DatabaseName=f"{prefix}_silver", Name="contract_events")["Table"]
    assert registered["Parameters"]["table_type"] == "ICEBERG"
    assert registered["StorageDescriptor"]["Location"] == f"{warehouse.warehouse_uri}/silver/contract_events"
    assert [c["Name"] for c in registered["StorageDescriptor"]["Columns"]] == list(EVENTS.columns)

    events, daily, ledger = (session.table(s.ref) for s in (EVENTS, DAILY, LEDGER))
    [field] = events.spec().fields
    assert isinstance(field.transform, DayTransform) and events.schema().find_field(field.source_id).name == "at"
    [field] = daily.spec().fields
    assert isinstance(field.transform, IdentityTransform) and daily.schema().find_field(field.source_id).name == "day"
    assert ledger.spec().is_unpartitioned()
    assert events.properties["write.delete.isolation-level"] == "serializable"
    keys = moto.keys(BUCKET, warehouse.warehouse_uri.removeprefix(f"s3://{BUCKET}/") + "/silver/contract_events/data/")
    assert {k.split("/")[-2] for k in keys} == {"at_day=2024-12-01", "at_day=2024-12-02"}


def test_each_replace_is_one_snapshot_whatever_it_drops_and_rewrites(warehouse):
    session = warehouse.session()
    results = [
        session.replace(EVENTS, rows((1, "a", "1", at(1)), (2, "b", "2", at(1)), (3, "c", "3", at(2))), Scope()),
        # drops day 2's file whole and adds a new one
        session.replace(EVENTS, rows((4, "d", "4", at(2))), Scope.of_days([DAY_2])),
        # rewrites day 1's file without key 2 (keeping key 1) and adds key 2 anew
        session.replace(EVENTS, rows((2, "b2", "2", at(1))), KEY_2_ON_DAY_1),
        session.replace(EVENTS, rows(), Scope.of_days([date(2024, 12, 9)])),  # nothing in scope, nothing written
    ]
    table = session.table(EVENTS.ref)
    snapshots = table.snapshots()
    assert [s.snapshot_id for s in snapshots] == [r.snapshot_id for r in results]
    assert [s.parent_snapshot_id for s in snapshots[1:]] == [r.snapshot_id for r in results[:-1]]
    assert [s.summary.operation.value for s in snapshots] == ["append", "overwrite", "overwrite", "overwrite"]
    assert [(r.deleted, r.inserted, r.total_rows) for r in results] == [(0, 3, 3), (1, 1, 3), (1, 1, 3), (0, 0, 3)]
    assert snapshots[2].summary["lakehouse.scope"] == "1 days (2024-12-01) and 1 keys (id)"
    assert read(session).select("id", "kind").rows() == [(1, "a"), (2, "b2"), (4, "d")]


def test_a_table_read_as_of_an_earlier_snapshot_has_the_earlier_rows(warehouse):
    session = warehouse.session()
    first = session.replace(EVENTS, rows((1, "a", "1", at(1)), (2, "b", "2", at(2))), Scope())
    session.replace(EVENTS, rows((3, "c", "3", at(1))), Scope.of_days([DAY_1]))
    then = session.con.sql(f"SELECT id FROM {session.scan(EVENTS, snapshot_id=first.snapshot_id)} ORDER BY id").pl()
    assert then["id"].to_list() == [1, 2]
    assert read(session)["id"].to_list() == [2, 3]
    # What the README shows: any pyiceberg reader, given the id from a materialization's metadata.
    table = warehouse.catalog().load_table((f"{warehouse.glue_database_prefix}_silver", "contract_events"))
    assert sorted(pl.from_arrow(table.scan(snapshot_id=first.snapshot_id).to_arrow())["id"].to_list()) == [1, 2]


def test_a_column_declared_later_is_added_to_the_iceberg_schema_and_glue(warehouse, moto):
    session = warehouse.session()
    first = session.replace(EVENTS, rows((1, "a", "1", at(1))), Scope())
    grown = TableSpec(EVENTS.ref, {**EVENTS.columns, "note": PgType.TEXT}, "at")
    session.replace(grown, rows((2, "b", "2", at(2))).with_columns(note=pl.lit("n")), Scope.of_days([DAY_2]))
    table = session.table(EVENTS.ref)
    assert table.schema().find_field("note").field_id == 5 and not table.schema().find_field("note").required
    assert "note" not in table.schemas()[table.snapshot_by_id(first.snapshot_id).schema_id].column_names
    columns = moto.glue().get_table(DatabaseName=f"{warehouse.glue_database_prefix}_silver",
                                    Name="contract_events")["Table"]["StorageDescriptor"]["Columns"]
    assert [c["Name"] for c in columns] == [*EVENTS.columns, "note"]
    old = session.con.sql(f"SELECT * FROM {session.scan(grown, snapshot_id=first.snapshot_id)}").pl()
    assert old["note"].to_list() == [None]


def test_a_big_write_is_consumed_a_frame_at_a_time(warehouse, monkeypatch):
    monkeypatch.setattr(iceberg_files, "BATCH_ROWS", 250)  # several files per partition
    made: list[weakref.ref] = []
    most_alive = []

    def tracked(frame: pl.DataFrame) -> pl.DataFrame:
        made.append(weakref.ref(frame))
        return frame

    def frames():  # holds no frame itself while suspended
        for i in range(20):
            most_alive.append(sum(r() is not None for r in made))
            yield tracked(rows(*((i * 100 + j, "k", "1", at(1 + j % 2, j % 24)) for j in range(100))))

    session = warehouse.session()
    result = session.replace(EVENTS, frames(), Scope())
    assert result.inserted == 2000 and len(most_alive) == 20
    assert max(most_alive) <= 1  # each frame let go before the next is asked for
    data_files = list(session.table(EVENTS.ref).scan().plan_files())
    assert len(data_files) == 8  # 2,000 sorted rows in batches of 250, each within one day
    assert session.row_count(EVENTS.ref) == 2000


def test_a_scan_hands_pyiceberg_a_few_files_at_a_time(warehouse, monkeypatch):
    session = warehouse.session()
    session.replace(EVENTS, rows(*((d, "k", "1", at(d)) for d in range(1, 11))), Scope())  # ten days, ten files
    asked = []
    to_record_batches = ArrowScan.to_record_batches

    def counted(self, tasks):
        tasks = list(tasks)
        asked.append(len(tasks))
        return to_record_batches(self, tasks)

    monkeypatch.setattr(ArrowScan, "to_record_batches", counted)
    assert read(session)["id"].to_list() == list(range(1, 11))
    # DataScan.to_arrow_batch_reader would hand over all ten, and its thread pool would read them all at once.
    assert sum(asked) == 10 and max(asked) <= iceberg_files.FILES_AT_ONCE


def test_keys_of_two_columns_are_matched_exactly(warehouse):
    session = warehouse.session()
    session.replace(EVENTS, rows((1, "a", "1", at(1)), (1, "b", "2", at(1)), (2, "b", "3", at(1))), Scope())
    keys = pl.DataFrame({"id": [1, 2], "kind": ["b", "a"]})  # the filter prunes by id only: (1, a), (2, b) pass it
    assert read(session, scope=Scope(keys=keys)).select("id", "kind").rows() == [(1, "b")]
    result = session.replace(EVENTS, rows((1, "b", "9", at(1))), Scope(days=frozenset({DAY_1}), keys=keys))
    assert (result.deleted, result.inserted, result.total_rows) == (1, 1, 3)
    got = read(session).sort("id", "kind").select("id", "kind", "amount").rows()
    assert [(i, k, str(a)) for i, k, a in got] == [(1, "a", "1.00"), (1, "b", "9.00"), (2, "b", "3.00")]


def test_a_reader_never_waits_for_a_writer_and_cannot_write(warehouse):
    session = warehouse.session()
    session.replace(EVENTS, rows((1, "a", "1", at(1))), Scope())
    with warehouse.reader() as look:
        assert look.row_count(EVENTS.ref) == 1
        session.replace(EVENTS, rows((2, "b", "2", at(2))), Scope.of_days([DAY_2]))
        assert look.row_count(EVENTS.ref) == 2
        with pytest.raises(PermissionError):
            look.replace(EVENTS, rows(), Scope())


def data_files(moto: MotoAWS, prefix: str) -> list[str]:
    # pyarrow's S3 filesystem leaves an empty "folder/" marker where it deleted a folder's last file
    return [k for k in moto.keys(BUCKET, prefix) if not k.endswith("/")]


def test_a_write_that_never_lands_leaves_no_data_files(warehouse, moto, monkeypatch):
    session = warehouse.session()
    session.replace(EVENTS, rows((1, "a", "1", at(1))), Scope())
    prefix = warehouse.warehouse_uri.removeprefix(f"s3://{BUCKET}/") + "/silver/contract_events/data/"
    before = data_files(moto, prefix)

    def always_loses(*args, **kwargs):
        raise CommitFailedException("another writer committed first")

    monkeypatch.setattr(iceberg_files, "commit", always_loses)
    monkeypatch.setattr("lakehouse_assets.storage.iceberg_warehouse.time.sleep", lambda seconds: None)
    with pytest.raises(ConcurrentWriteError, match="nothing of this write landed"):
        session.replace(EVENTS, rows((2, "b", "2", at(2))), Scope.of_days([DAY_2]))
    assert data_files(moto, prefix) == before
    assert read(session)["id"].to_list() == [1]


def test_a_commit_reported_lost_that_did_land_is_taken_as_landed(warehouse, monkeypatch):
    """A commit whose answer is lost can land all the same: its files must stay, and the write
    is done (not repeated, which would double its rows)."""
    session = warehouse.session()
    session.replace(EVENTS, rows((1, "a", "1", at(1))), Scope())
    commit = iceberg_files.commit

    def lands_then_reports_failure(*args, **kwargs):
        commit(*args, **kwargs)
        raise CommitFailedException("the answer was lost")

    monkeypatch.setattr(iceberg_files, "commit", lands_then_reports_failure)
    result = session.replace(EVENTS, rows((2, "b", "2", at(1)), (3, "c", "3", at(2))), Scope.of_days([DAY_1, DAY_2]))
    monkeypatch.undo()
    assert (result.deleted, result.inserted, result.total_rows) == (1, 2, 2)
    table = session.table(EVENTS.ref)
    assert len(table.snapshots()) == 2 and result.snapshot_id == table.current_snapshot().snapshot_id
    assert read(session)["id"].to_list() == [2, 3]
