"""The DuckDB warehouse file keeps the session contract, and one process writes it at a time."""

from __future__ import annotations

import pytest

from lakehouse_assets.storage.tables import WarehouseBusy
from lakehouse_assets.storage.warehouse import DuckDBWarehouse
from lakehouse_assets_tests.storage.session_contract import EVENTS, SessionContract, at, rows

pytestmark = pytest.mark.unit


class TestDuckDBSession(SessionContract):
    @pytest.fixture
    def session(self, tmp_path):
        warehouse = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
        yield warehouse.session()
        warehouse.release()


def test_a_reader_is_refused_while_a_run_writes_and_sees_the_commit_after(tmp_path):
    from lakehouse_assets.storage.tables import Scope

    warehouse = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    with warehouse.reader() as look:  # no file yet: an empty warehouse, nothing created
        assert not look.exists(EVENTS.ref)
    assert not (tmp_path / "w.duckdb").exists()
    warehouse.session().replace(EVENTS, rows((1, "a", "1", at(1))), Scope())
    with pytest.raises(WarehouseBusy):
        with warehouse.reader():
            pass
    warehouse.release()
    with warehouse.reader() as look:
        assert look.row_count(EVENTS.ref) == 1


@pytest.mark.parametrize("left", [0, 4096, 8192])
def test_a_warehouse_file_left_short_by_a_crash_is_set_aside_and_made_again(tmp_path, left):
    """A file shorter than DuckDB's headers (a process killed while creating it, before the
    file was made whole under another name) cannot be opened: it is moved aside, not fatal."""
    from lakehouse_assets.storage.tables import Scope

    path = tmp_path / "w" / "lakehouse.duckdb"
    path.parent.mkdir()
    path.write_bytes(b"\0" * left)
    (path.parent / f".{path.name}.999999999.creating").write_bytes(b"")  # of a dead process
    warehouse = DuckDBWarehouse(path=str(path))
    warehouse.session().replace(EVENTS, rows((1, "a", "1", at(1))), Scope())
    warehouse.release()
    with warehouse.reader() as look:
        assert look.row_count(EVENTS.ref) == 1
    assert [p.name.split(".incomplete-")[0] for p in path.parent.iterdir() if ".incomplete-" in p.name] == [path.name]
    assert not list(path.parent.glob("*.creating"))


def test_a_file_that_is_not_a_database_fails_at_once_without_lock_retries(tmp_path, monkeypatch):
    import duckdb

    from lakehouse_assets.storage import duckdb_warehouse

    waits = []
    monkeypatch.setattr(duckdb_warehouse.time, "sleep", waits.append)
    path = tmp_path / "lakehouse.duckdb"
    path.write_bytes(b"not a database, and long enough to be one" * 1000)
    with pytest.raises(duckdb.Error, match="not a valid DuckDB database"):
        DuckDBWarehouse(path=str(path)).session()
    assert waits == []  # waiting is for another writer's lock only (system/test_concurrency.py)


def test_a_text_partition_column_is_refused_at_declaration():
    """A text column compared with day bounds mis-files rows: a daily partition needs a date."""
    from lakehouse_assets.schemas.types import PgType
    from lakehouse_assets.storage.tables import TableRef, TableSpec

    with pytest.raises(TypeError, match="needs a date or timestamptz column"):
        TableSpec(TableRef("silver", "t"), {"id": PgType.BIGINT, "ts": PgType.TEXT}, partition_column="ts")
