"""The DuckDB IO manager against the traps of dagster-duckdb-polars 0.29 with duckdb 2.0."""

import subprocess
import sys
from datetime import date, datetime, timezone

import duckdb
import polars as pl
import pytest
from dagster import (
    AssetIn,
    DailyPartitionsDefinition,
    DagsterInstance,
    asset,
    materialize,
)
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from lakehouse_assets.storage.duckdb_io import LakehouseDuckDBIOManager

DAILY = DailyPartitionsDefinition(start_date="2024-12-01", timezone="UTC")
PAYLOAD: dict[str, pl.DataFrame] = {}  # what the test asset returns, keyed by partition


def utc(day: int, hour: int = 12) -> datetime:
    return datetime(2024, 12, day, hour, tzinfo=timezone.utc)


@asset(key_prefix="silver", partitions_def=DAILY, metadata={"partition_expr": "ts"})
def things(context) -> pl.DataFrame:
    return PAYLOAD[context.partition_key]


@asset(key_prefix="silver", ins={"things": AssetIn(key=["silver", "things"])})
def thing_count(things: pl.DataFrame) -> pl.DataFrame:
    return pl.DataFrame({"n": [len(things)], "cols": [",".join(things.columns)]})


def run(db, *assets, partition=None, selection=None, raise_on_error=True, tags=None):
    return materialize(
        list(assets),
        partition_key=partition,
        resources={"io_manager": LakehouseDuckDBIOManager(database=str(db))},
        instance=DagsterInstance.ephemeral(),
        selection=selection,
        raise_on_error=raise_on_error,
        tags=tags,
    )


def rows(db, sql="SELECT id, ts FROM silver.things ORDER BY id"):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.sql(sql).fetchall()
    finally:
        con.close()


@pytest.fixture
def db(tmp_path):
    PAYLOAD.clear()
    return tmp_path / "wh.duckdb"


def frame(ids, day, **extra):
    return pl.DataFrame({"id": ids, "ts": [utc(day)] * len(ids), **extra})


def test_partition_replaced_and_loaded_back(db):
    PAYLOAD["2024-12-01"] = frame([1, 2], 1)
    PAYLOAD["2024-12-02"] = frame([3], 2)
    run(db, things, partition="2024-12-01")
    run(db, things, partition="2024-12-02")
    PAYLOAD["2024-12-01"] = frame([4], 1)
    run(db, things, partition="2024-12-01")
    assert [r[0] for r in rows(db)] == [3, 4]
    # The load path (removed .arrow() in duckdb 2.0) works: the unpartitioned consumer
    # reads every partition.
    run(db, things, thing_count, selection=[thing_count])
    assert rows(db, "SELECT n FROM silver.thing_count") == [(2,)]


def test_columns_are_written_by_name_not_position(db):
    PAYLOAD["2024-12-01"] = pl.DataFrame({"id": [1], "ts": [utc(1)], "a": ["x"], "b": ["y"]})
    PAYLOAD["2024-12-02"] = pl.DataFrame({"b": ["B"], "a": ["A"], "ts": [utc(2)], "id": [2]})
    run(db, things, partition="2024-12-01")
    run(db, things, partition="2024-12-02")
    assert rows(db, "SELECT id, a, b FROM silver.things ORDER BY id") == [(1, "x", "y"), (2, "A", "B")]


def test_new_column_grows_the_table(db):
    PAYLOAD["2024-12-01"] = frame([1], 1)
    PAYLOAD["2024-12-02"] = frame([2], 2, extra=["new"])
    run(db, things, partition="2024-12-01")
    run(db, things, partition="2024-12-02")
    assert rows(db, "SELECT id, extra FROM silver.things ORDER BY id") == [(1, None), (2, "new")]


def test_empty_result_empties_the_partition_on_purpose(db):
    PAYLOAD["2024-12-01"] = frame([1, 2], 1)
    run(db, things, partition="2024-12-01")
    PAYLOAD["2024-12-01"] = frame([], 1).cast({"id": pl.Int64, "ts": pl.Datetime("us", "UTC")})
    run(db, things, partition="2024-12-01")
    assert rows(db) == []


def test_empty_first_result_still_creates_the_table(db):
    PAYLOAD["2024-12-01"] = frame([], 1).cast({"id": pl.Int64, "ts": pl.Datetime("us", "UTC")})
    run(db, things, partition="2024-12-01")
    assert rows(db) == []


def test_failed_write_keeps_the_old_partition(db):
    """Delete and insert are one transaction: a failing insert leaves the old rows."""
    PAYLOAD["2024-12-01"] = frame([1, 2], 1)
    run(db, things, partition="2024-12-01")
    # id as a struct cannot be inserted into a BIGINT column: the insert fails after the delete.
    PAYLOAD["2024-12-01"] = pl.DataFrame({"id": [{"x": 1}], "ts": [utc(1)]})
    result = run(db, things, partition="2024-12-01", raise_on_error=False)
    assert not result.success
    assert [r[0] for r in rows(db)] == [1, 2]


def test_rows_outside_the_partition_are_refused(db):
    PAYLOAD["2024-12-01"] = frame([1], 1)
    run(db, things, partition="2024-12-01")
    PAYLOAD["2024-12-01"] = pl.DataFrame({"id": [5, 6], "ts": [utc(1), utc(3)]})
    result = run(db, things, partition="2024-12-01", raise_on_error=False)
    assert not result.success
    assert "outside the partitions" in str(result.all_events)
    assert [r[0] for r in rows(db)] == [1]


def test_text_partition_column_is_refused(db):
    """A text column compared with timestamp bounds mis-files rows: refuse it instead."""
    PAYLOAD["2024-12-01"] = pl.DataFrame({"id": [1], "ts": ["2024-12-01 12:00:00"]})
    result = run(db, things, partition="2024-12-01", raise_on_error=False)
    assert not result.success
    assert "needs a DATE or TIMESTAMP column" in str(result.all_events)


def test_partition_boundaries_are_utc_days(db):
    """23:59:59.999999 belongs to its day, 00:00:00 to the next."""
    PAYLOAD["2024-12-01"] = pl.DataFrame(
        {"id": [1, 2], "ts": [datetime(2024, 12, 1, 0, 0, tzinfo=timezone.utc),
                              datetime(2024, 12, 1, 23, 59, 59, 999999, tzinfo=timezone.utc)]}
    )
    PAYLOAD["2024-12-02"] = pl.DataFrame({"id": [3], "ts": [datetime(2024, 12, 2, tzinfo=timezone.utc)]})
    run(db, things, partition="2024-12-01")
    run(db, things, partition="2024-12-02")
    PAYLOAD["2024-12-01"] = frame([9], 1)
    run(db, things, partition="2024-12-01")
    assert [r[0] for r in rows(db)] == [3, 9]


def test_range_run_writes_every_partition_at_once(db):
    @asset(key_prefix="silver", name="things", partitions_def=DAILY,
           metadata={"partition_expr": "ts"})
    def ranged(context) -> pl.DataFrame:
        window = context.partition_time_window
        days = range(window.start.day, window.end.day)
        return pl.DataFrame({"id": list(days), "ts": [utc(d) for d in days]})

    result = run(db, ranged, tags={ASSET_PARTITION_RANGE_START_TAG: "2024-12-01",
                                   ASSET_PARTITION_RANGE_END_TAG: "2024-12-03"})
    assert [r[0] for r in rows(db)] == [1, 2, 3]
    # Each day's materialization shows the run's rows as the run's, not as that day's count.
    metadata = [m.metadata for m in result.asset_materializations_for_node("silver__things")]
    assert len(metadata) == 3
    assert all("dagster/partition_row_count" not in m and m["rows_written_by_run"].value == 3
               for m in metadata)
    assert rows(db, "SELECT DISTINCT CAST(ts AS DATE) FROM silver.things ORDER BY 1") == [
        (date(2024, 12, d),) for d in (1, 2, 3)
    ]


@pytest.mark.parametrize("left", [0, 4096, 8192])
def test_a_warehouse_file_left_short_by_a_crash_is_set_aside_and_made_again(tmp_path, left):
    """A file shorter than DuckDB's headers (a process killed while creating it, before the
    file was made whole under another name) cannot be opened: it is moved aside, not fatal."""
    from types import SimpleNamespace

    from lakehouse_assets.storage.duckdb_io import LakehouseDuckDbClient

    path = tmp_path / "w" / "lakehouse.duckdb"
    path.parent.mkdir()
    path.write_bytes(b"\0" * left)
    (path.parent / f".{path.name}.999999999.creating").write_bytes(b"")  # of a dead process
    context = SimpleNamespace(resource_config={"database": str(path), "connection_config": {}})
    with LakehouseDuckDbClient.connect(context, None) as conn:
        conn.execute("CREATE TABLE t AS SELECT 1 AS x").fetchall()
    assert duckdb.connect(str(path), read_only=True).sql("SELECT x FROM t").fetchall() == [(1,)]
    assert [p.name.split(".incomplete-")[0] for p in path.parent.iterdir() if ".incomplete-" in p.name] == [path.name]
    assert not list(path.parent.glob("*.creating"))


def test_a_file_that_is_not_a_database_fails_at_once_without_lock_retries(tmp_path, monkeypatch):
    from types import SimpleNamespace

    import lakehouse_assets.storage.duckdb_io as duckdb_io

    waits = []
    monkeypatch.setattr(duckdb_io.time, "sleep", waits.append)
    path = tmp_path / "lakehouse.duckdb"
    path.write_bytes(b"not a database, and long enough to be one" * 1000)
    context = SimpleNamespace(resource_config={"database": str(path), "connection_config": {}})
    with pytest.raises(duckdb.Error, match="not a valid DuckDB database"):
        with duckdb_io.LakehouseDuckDbClient.connect(context, None):
            pass
    assert waits == []  # retrying is for another writer's lock only (test_concurrency.py)


def _writable_from_another_process(db) -> bool:
    """Whether another process can take the file's write lock right now."""
    probe = "import duckdb, sys; duckdb.connect(sys.argv[1]).execute('CHECKPOINT').fetchall()"
    done = subprocess.run([sys.executable, "-c", probe, str(db)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 or "lock" in done.stderr.lower(), done.stderr
    return done.returncode == 0


def test_a_run_shares_one_open_database_and_lets_go_of_it_after(db):
    """A run's loads and writes, in all its steps, are connections to one open database; a
    new run opens it afresh, and the end of the run lets other processes have the file."""
    from lakehouse_assets.storage.duckdb_io import RUN_DATABASE

    first = RUN_DATABASE.connect(str(db), {}, run_id="a")
    first.execute("CREATE TABLE t AS SELECT 1 AS x").fetchall()
    second = RUN_DATABASE.connect(str(db), {}, run_id="a")
    assert second.sql("SELECT x FROM t").fetchall() == [(1,)]  # the same database
    assert not _writable_from_another_process(db)  # held while the run goes on
    RUN_DATABASE.connect(str(db), {}, run_id="b").close()  # another run
    with pytest.raises(duckdb.ConnectionException):
        first.sql("SELECT x FROM t").fetchall()  # the first run's database was closed
    RUN_DATABASE.release(str(db))
    assert _writable_from_another_process(db)


def test_loads_and_writes_of_every_step_open_the_database_once(db, monkeypatch):
    """Loads name their run only through their step context: they must share it too."""
    from lakehouse_assets.storage import duckdb_io

    opened = []
    real = duckdb_io.connect_when_free
    monkeypatch.setattr(duckdb_io, "connect_when_free", lambda *a: opened.append(a) or real(*a))
    PAYLOAD["2024-12-02"] = frame([1, 2], 2)
    run(db, things, partition="2024-12-02")
    opened.clear()
    assert run(db, things, thing_count, selection=[thing_count]).success  # a load, then a write
    assert len(opened) == 1
    assert rows(db, "SELECT n FROM silver.thing_count") == [(2,)]
    assert _writable_from_another_process(db)


def test_after_a_run_the_file_is_free_for_other_processes(db):
    PAYLOAD["2024-12-02"] = pl.DataFrame({"id": [1], "ts": [utc(2)]})
    assert run(db, things, thing_count, partition="2024-12-02", selection=[things]).success
    assert _writable_from_another_process(db)
    assert rows(db) == [(1, utc(2))]  # and this process can open it read-only again


def test_after_moving_a_big_frame_the_run_lets_go_of_the_database(db, monkeypatch):
    """DuckDB caches what a query read or wrote while the database is open: after a big load
    or write it is closed rather than held with a second copy of the table."""
    from lakehouse_assets.storage.duckdb_io import RUN_DATABASE

    monkeypatch.setattr(RUN_DATABASE, "BIG_BYTES", 1000)
    small, big = pl.DataFrame({"x": [1]}), pl.DataFrame({"x": list(range(1000))})
    RUN_DATABASE.connect(str(db), {}, run_id="a").close()
    RUN_DATABASE.moved(small)
    RUN_DATABASE.done()
    assert not _writable_from_another_process(db)  # a small frame: still held for the run
    RUN_DATABASE.connect(str(db), {}, run_id="a").close()
    RUN_DATABASE.moved(big)
    RUN_DATABASE.done()
    assert _writable_from_another_process(db)
