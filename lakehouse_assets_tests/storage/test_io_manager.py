"""The warehouse IO manager (storage/io_manager.py): the rules every store shares, on toy
assets over the DuckDB warehouse. What a session does (replace a scope atomically, match
columns by name, grow declared columns) is the session contract's (session_contract.py)."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, datetime, timezone

import duckdb
import polars as pl
import pytest
from dagster import AssetIn, DailyPartitionsDefinition, DagsterInstance, asset, io_manager, materialize

from lakehouse_assets.runs import range_tags
from lakehouse_assets.schemas.types import PgType
from lakehouse_assets.storage.io_manager import Replacement, WarehouseIOManager
from lakehouse_assets.storage.tables import Scope, TableRef, TableSpec
from lakehouse_assets.storage.warehouse import DuckDBWarehouse

pytestmark = pytest.mark.pipeline

DAILY = DailyPartitionsDefinition(start_date="2024-12-01", timezone="UTC")
THINGS = TableSpec(TableRef("silver", "things"), {"id": PgType.BIGINT, "ts": PgType.TIMESTAMPTZ}, "ts")
COUNT = TableSpec(TableRef("silver", "thing_count"), {"n": PgType.BIGINT, "cols": PgType.TEXT})
PAYLOAD: dict[str, object] = {}  # what the test asset returns, keyed by its partition key (or range)


def utc(day: int, hour: int = 12, *rest) -> datetime:
    return datetime(2024, 12, day, hour, *rest, tzinfo=timezone.utc)


@io_manager(required_resource_keys={"warehouse"})
def things_io(context):
    return WarehouseIOManager(context.resources.warehouse, {THINGS.ref: THINGS, COUNT.ref: COUNT})


@asset(key_prefix="silver", partitions_def=DAILY)
def things(context):
    window = context.partition_time_window
    return PAYLOAD[f"{window.start.date()}..{window.end.date()}"]


@asset(key_prefix="silver", ins={"things": AssetIn(key=["silver", "things"])})
def thing_count(things: pl.DataFrame) -> pl.DataFrame:
    return pl.DataFrame({"n": [len(things)], "cols": [",".join(things.columns)]})


def frame(*rows: tuple[int, datetime]) -> pl.DataFrame:
    return pl.DataFrame({"id": [r[0] for r in rows], "ts": [r[1] for r in rows]},
                        schema={"id": pl.Int64, "ts": pl.Datetime("us", "UTC")})


def days(first: int, last: int | None = None) -> str:
    """The PAYLOAD key of a run over 2024-12-<first>..<last>."""
    return f"{date(2024, 12, first)}..{date(2024, 12, (last or first) + 1)}"


def run(db, *assets, first: int = 1, last: int | None = None, selection=None):
    return materialize(
        list(assets), selection=selection,
        resources={"warehouse": DuckDBWarehouse(path=str(db)), "io_manager": things_io},
        instance=DagsterInstance.ephemeral(),
        tags=range_tags(date(2024, 12, first), date(2024, 12, last or first)),
        raise_on_error=False,
    )


def rows(db, sql="SELECT id, ts FROM silver.things ORDER BY id"):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.sql(sql).fetchall()
    finally:
        con.close()


def errors(result) -> str:
    return " ".join(e.event_specific_data.error.to_string() for e in result.all_events
                    if e.event_type_value == "STEP_FAILURE")


@pytest.fixture
def db(tmp_path):
    PAYLOAD.clear()
    return tmp_path / "wh.duckdb"


def test_a_run_replaces_its_days_and_a_consumer_loads_them_back(db):
    PAYLOAD[days(1)] = frame((1, utc(1)), (2, utc(1)))
    PAYLOAD[days(2)] = frame((3, utc(2)))
    assert run(db, things, first=1).success and run(db, things, first=2).success
    PAYLOAD[days(1)] = frame((4, utc(1)))
    assert run(db, things, first=1).success
    assert [r[0] for r in rows(db)] == [3, 4]
    # an unpartitioned consumer reads every partition
    assert run(db, things, thing_count, selection=[thing_count]).success
    assert rows(db, "SELECT n, cols FROM silver.thing_count") == [(2, "id,ts")]


def test_a_table_not_written_yet_loads_as_empty_with_its_declared_columns(db):
    assert run(db, things, thing_count, selection=[thing_count]).success
    assert rows(db, "SELECT n, cols FROM silver.thing_count") == [(0, "id,ts")]


def test_rows_outside_the_runs_days_are_refused_and_nothing_is_written(db):
    PAYLOAD[days(1)] = frame((1, utc(1)))
    assert run(db, things, first=1).success
    PAYLOAD[days(1)] = frame((5, utc(1)), (6, utc(3)))
    result = run(db, things, first=1)
    assert not result.success
    assert "1 rows for silver.things fall outside what this write replaces" in errors(result)
    assert [r[0] for r in rows(db)] == [1]


def test_a_scope_of_other_days_than_the_runs_is_refused(db):
    PAYLOAD[days(1)] = frame((1, utc(1)))
    assert run(db, things, first=1).success
    PAYLOAD[days(2)] = Replacement(frame((7, utc(1))), Scope.of_days([date(2024, 12, 1)]))
    result = run(db, things, first=2)
    assert not result.success
    assert "a run over 2024-12-02 may not replace other days (2024-12-01)" in errors(result)
    assert [r[0] for r in rows(db)] == [1]


def test_a_scope_of_keys_stays_within_the_runs_days(db):
    """Keys alone would reach every day: the run's days bound them."""
    PAYLOAD[days(1, 2)] = frame((1, utc(1)), (2, utc(2)))
    assert run(db, things, first=1, last=2).success
    PAYLOAD[days(2)] = Replacement(frame((2, utc(2, 18))), Scope(keys=pl.DataFrame({"id": [1, 2]})))
    result = run(db, things, first=2)
    assert result.success, errors(result)
    assert rows(db) == [(1, utc(1)), (2, utc(2, 18))]  # key 1, on another day, stays
    [materialization] = result.asset_materializations_for_node("silver__things")
    assert materialization.metadata["scope"].value == "1 days (2024-12-02) and 2 keys (id)"


def test_an_empty_result_empties_its_scope_on_purpose(db):
    PAYLOAD[days(1, 2)] = frame((1, utc(1)), (2, utc(1)), (3, utc(2)))
    assert run(db, things, first=1, last=2).success
    PAYLOAD[days(1)] = frame()
    result = run(db, things, first=1)
    assert result.success
    assert [r[0] for r in rows(db)] == [3]
    [materialization] = result.asset_materializations_for_node("silver__things")
    assert materialization.metadata["rows_replaced"].value == 2


def test_an_empty_first_result_still_creates_the_table(db):
    PAYLOAD[days(1)] = frame()
    assert run(db, things, first=1).success
    assert rows(db) == []


def test_partition_boundaries_are_utc_days(db):
    """23:59:59.999999 belongs to its day, 00:00:00 to the next."""
    PAYLOAD[days(1)] = frame((1, utc(1, 0)), (2, utc(1, 23, 59, 59, 999999)))
    PAYLOAD[days(2)] = frame((3, utc(2, 0)))
    assert run(db, things, first=1).success and run(db, things, first=2).success
    PAYLOAD[days(1)] = frame((9, utc(1)))
    assert run(db, things, first=1).success
    assert [r[0] for r in rows(db)] == [3, 9]


def test_row_counts_in_the_metadata_one_partition_and_a_range(db):
    PAYLOAD[days(1)] = frame((1, utc(1)), (2, utc(1)))
    one = run(db, things, first=1)
    [m] = [m.metadata for m in one.asset_materializations_for_node("silver__things")]
    assert (m["dagster/partition_row_count"].value, m["dagster/row_count"].value) == (2, 2)
    assert m["dagster/table_name"].value == "silver.things"
    # A range run's rows are the run's, not one day's count, on each day's materialization.
    PAYLOAD[days(1, 3)] = frame((1, utc(1)), (2, utc(2)), (3, utc(3)))
    ranged = run(db, things, first=1, last=3)
    metadata = [m.metadata for m in ranged.asset_materializations_for_node("silver__things")]
    assert len(metadata) == 3
    assert all("dagster/partition_row_count" not in m and m["rows_written_by_run"].value == 3
               and m["dagster/row_count"].value == 3 and m["rows_replaced"].value == 2 for m in metadata)


def test_a_frame_that_is_not_a_table_of_rows_is_refused(db):
    PAYLOAD[days(1)] = {"id": [1]}
    result = run(db, things, first=1)
    assert not result.success
    assert "the warehouse stores polars frames or staged relations, not dict" in errors(result)


def test_an_undeclared_table_is_refused(db):
    @asset(key_prefix="silver", name="undeclared")
    def undeclared() -> pl.DataFrame:
        return pl.DataFrame({"x": [1]})

    result = run(db, undeclared)
    assert not result.success
    assert "silver/undeclared is not a declared warehouse table" in errors(result)


def test_the_steps_of_a_run_share_one_open_warehouse(db, monkeypatch):
    """Loads and writes of every step of a run go through one session, opened once."""
    opened = []
    real = DuckDBWarehouse.open_session
    monkeypatch.setattr(DuckDBWarehouse, "open_session", lambda self: opened.append(1) or real(self))
    PAYLOAD[days(2)] = frame((1, utc(2)), (2, utc(2)))
    assert run(db, things, thing_count, first=2).success  # a write, a load, a write
    assert len(opened) == 1
    assert rows(db, "SELECT n FROM silver.thing_count") == [(2,)]


def test_after_a_run_the_file_is_free_for_other_processes(db):
    PAYLOAD[days(2)] = frame((1, utc(2)))
    assert run(db, things, first=2).success
    probe = "import duckdb, sys; duckdb.connect(sys.argv[1]).execute('CHECKPOINT').fetchall()"
    done = subprocess.run([sys.executable, "-c", probe, str(db)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert rows(db) == [(1, utc(2))]
