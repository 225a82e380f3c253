"""A lakehouse in a temporary folder, driven the way the daemon drives it: landing sensor
ticks (with their cursor) and the runs they request, executed in-process on one instance;
or a rebuild from scratch, for comparison. Shared by the sensor, incremental, system-of-record
and schema-drift tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
from dagster import AssetChecksDefinition, DagsterInstance, Definitions, RunRequest, SensorResult, build_sensor_context, materialize

from lakehouse_assets.resources import LandingZone
from lakehouse_assets.runs import RANGE_END_TAG, RANGE_START_TAG, range_tags
from lakehouse_assets.sensors.landing import build_landing_sensor
from lakehouse_assets.sources import SOURCE_TABLES, SourceTable
from lakehouse_assets.storage.warehouse import DuckDBWarehouse
from lakehouse_assets_tests.pipeline import assets_for, resources

# When and by which run a row was written, and the landing copy's ETag (a re-landed file's
# changes with its modification time, not its content): not what the warehouse holds.
RUN_COLUMNS = ("_ingested_at", "_run_id", "last_seen_at", "etag")


def failures(result) -> list[str]:
    return [e.event_specific_data.error.to_string()[:3000] for e in result.all_events
            if e.event_type_value == "STEP_FAILURE"]


@dataclass
class Lakehouse:
    landing: Path
    warehouse: Path
    instance: DagsterInstance = field(default_factory=DagsterInstance.ephemeral)
    cursor: str | None = None
    tables: tuple[SourceTable, ...] = SOURCE_TABLES  # the declarations in force
    runs: list = field(default_factory=list)

    @property
    def assets(self) -> list:
        return assets_for(self.tables)

    def redeclare(self, tables: tuple[SourceTable, ...]) -> None:
        """From now on the source tables are declared as `tables` (e.g. one gained a column):
        the sensor, its definitions and the runs' assets are built from them."""
        self.tables = tables

    def tick(self) -> SensorResult:
        sensor = build_landing_sensor(self.tables)
        everything = self.assets
        checks = [a for a in everything if isinstance(a, AssetChecksDefinition)]
        definitions = Definitions(assets=[a for a in everything if a not in checks], asset_checks=checks,
                                  sensors=[sensor], resources=resources(self.landing, self.warehouse, self.tables))
        with build_sensor_context(
            instance=self.instance, cursor=self.cursor, definitions=definitions,
            resources={"landing": LandingZone(uri=str(self.landing)),
                       "warehouse": DuckDBWarehouse(path=str(self.warehouse))},
        ) as context:
            result = sensor(context)
        self.cursor = result.cursor
        return result

    def run(self, request: RunRequest, expect_success: bool = True):
        result = materialize(
            self.assets, selection=list(request.asset_selection),
            resources=resources(self.landing, self.warehouse, self.tables),
            instance=self.instance, tags=dict(request.tags), raise_on_error=False,
        )
        if expect_success:
            assert result.success, failures(result)
        self.runs.append(result)
        return result

    def tick_and_run(self) -> RunRequest | None:
        """One tick and the run it asks for (if it asks); ticks again until nothing is left,
        as the daemon would (a run may leave work outside its days)."""
        first = None
        for _ in range(4):
            result = self.tick()
            if not result.run_requests:
                return first
            request = result.run_requests[0]
            self.run(request)
            first = first or request
        raise AssertionError("the sensor kept asking for runs")

    def backfill(self, first: str, last: str, selection=None, expect_success: bool = True):
        """A run over days as the UI or the CLI launches it (not the sensor's)."""
        result = materialize(
            self.assets, selection=selection, resources=resources(self.landing, self.warehouse, self.tables),
            instance=self.instance, tags=range_tags(date.fromisoformat(first), date.fromisoformat(last)),
            raise_on_error=False,
        )
        if expect_success:
            assert result.success, failures(result)
        return result

    def snapshot(self) -> dict[str, pl.DataFrame]:
        return snapshot(self.warehouse)


def span(request: RunRequest) -> tuple[str, str]:
    return request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]


def keys(request: RunRequest) -> set[str]:
    return {k.to_user_string() for k in request.asset_selection}


def only_request(result: SensorResult) -> RunRequest:
    assert len(result.run_requests) == 1, result.skip_reason
    return result.run_requests[0]


def comparable(frame: pl.DataFrame) -> pl.DataFrame:
    """A table as snapshots compare it: without the run's bookkeeping columns, columns by name
    (a column added later is stored last) and rows sorted."""
    frame = frame.drop(*RUN_COLUMNS, strict=False)
    frame = frame.select(sorted(frame.columns))
    return frame.sort(frame.columns, nulls_last=True)


def snapshot(warehouse: Path) -> dict[str, pl.DataFrame]:
    """Every bronze, silver and gold table, sorted, without the columns that record when and
    by which run a row was written (the bookkeeping schema `state` is not compared)."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        tables = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema IN ('bronze', 'silver', 'gold') ORDER BY 1, 2"
        ).fetchall()
        out = {}
        for schema, name in tables:
            out[f"{schema}.{name}"] = comparable(con.sql(f'SELECT * FROM "{schema}"."{name}"').pl())
        return out
    finally:
        con.close()


def assert_same(got: dict[str, pl.DataFrame], want: dict[str, pl.DataFrame]) -> None:
    """Row for row, table for table (an empty table and a missing one are the same)."""
    for name in sorted(set(got) | set(want)):
        a, b = got.get(name), want.get(name)
        if a is None or b is None:
            present = a if a is not None else b
            assert present.is_empty(), f"{name} only on one side, with {len(present)} rows"
            continue
        if not a.equals(b):
            only_a = a.join(b, on=a.columns, how="anti", nulls_equal=True) if a.columns == b.columns else a
            only_b = b.join(a, on=b.columns, how="anti", nulls_equal=True) if a.columns == b.columns else b
            with pl.Config(tbl_cols=-1, tbl_width_chars=400, fmt_str_lengths=60):
                raise AssertionError(f"{name} differs: {len(a)} rows against {len(b)}\nonly here:\n{only_a}\n"
                                     f"only in the other:\n{only_b}")
