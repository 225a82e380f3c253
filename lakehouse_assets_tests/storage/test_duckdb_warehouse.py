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
