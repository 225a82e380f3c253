"""A landing sensor run that stops right after a silver table committed (its process gone: a
kill, an OOM) leaves work the next tick must find and finish: the gold cells the new silver
rows make stale among it. Then the warehouse is exactly what the uninterrupted run leaves.
(test_crash_safety.py kills real processes; here the stop is an exception, which leaves the
warehouse as a kill at the same point would, in a fraction of the time.)"""

import pytest
import shutil
from datetime import datetime, timezone

from dagster import materialize
from pydantic import Field

from lakehouse_assets.sample_data import generate_landing_zone, write_cdc_drop
from lakehouse_assets.storage.warehouse import DuckDBWarehouse
from lakehouse_assets_tests.harness import Lakehouse, assert_same, only_request
from lakehouse_assets_tests.pipeline import ALL_ASSETS, resources

pytestmark = pytest.mark.pipeline


class StopsAfter(DuckDBWarehouse):
    """The product's warehouse, except that the run stops right after `table` is written."""

    table: str = Field(description="e.g. silver.orders")

    def open_session(self):
        session = super().open_session()
        replace = session.replace

        def replace_then_stop(spec, rows, scope):
            result = replace(spec, rows, scope)
            if str(spec.ref) == self.table:
                raise RuntimeError(f"stopped: {spec.ref} committed, nothing after it ran")
            return result

        session.replace = replace_then_stop
        return session


def test_run_stopped_after_a_silver_write_is_finished_by_the_next_tick(tmp_path):
    landing = tmp_path / "landing"
    generate_landing_zone(landing, scale=0.02, seed=5, history_days=12, cdc_days=3)
    lake = Lakehouse(landing, tmp_path / "warehouse.duckdb")
    lake.tick_and_run()
    write_cdc_drop(landing, 0.02, 7, datetime(2024, 12, 3, 23, 0, tzinfo=timezone.utc))
    shutil.copy(lake.warehouse, tmp_path / "uninterrupted.duckdb")
    uninterrupted = Lakehouse(landing, tmp_path / "uninterrupted.duckdb")
    assert uninterrupted.tick_and_run() is not None

    request = only_request(lake.tick())
    assert "gold/daily_revenue" in {k.to_user_string() for k in request.asset_selection}
    stopped = materialize(
        ALL_ASSETS, selection=list(request.asset_selection), instance=lake.instance, tags=dict(request.tags),
        resources={**resources(landing, lake.warehouse), "warehouse": StopsAfter(path=str(lake.warehouse),
                                                                                 table="silver.orders")},
        raise_on_error=False,
    )
    assert not stopped.success
    assert lake.tick_and_run() is not None  # what the stopped run left
    assert_same(lake.snapshot(), uninterrupted.snapshot())
