"""The S3 Parquet IO manager against moto's S3 and Glue: the DuckDB IO manager's behaviour
(test_duckdb_io.py), plus atomic replacement and garbage collection."""

from datetime import date, datetime, timezone
from decimal import Decimal

import polars as pl
import pytest
from dagster import AssetIn, DagsterInstance, DailyPartitionsDefinition, EnvVar, asset, materialize
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from dagster_aws.s3 import S3Resource

from lakehouse_assets.storage.glue import GlueCatalog, GlueTable
from lakehouse_assets.storage.s3_parquet_io import S3ParquetIOManager, split_s3_uri
from lakehouse_assets_tests.moto_server import REGION, aws  # noqa: F401  (fixture)

DAILY = DailyPartitionsDefinition(start_date="2024-12-01", timezone="UTC")
PAYLOAD: dict[str, pl.DataFrame] = {}
BUCKET = "lakehouse-warehouse"
PREFIX = "tables"
THINGS = f"{PREFIX}/silver/things/"


def utc(day: int, hour: int = 12) -> datetime:
    return datetime(2024, 12, day, hour, tzinfo=timezone.utc)


@asset(key_prefix="silver", partitions_def=DAILY, metadata={"partition_expr": "ts"})
def things(context) -> pl.DataFrame:
    return PAYLOAD[context.partition_key]


@asset(key_prefix="silver", ins={"things": AssetIn(key=["silver", "things"])})
def thing_count(things: pl.DataFrame) -> pl.DataFrame:
    return pl.DataFrame({"n": [len(things)], "cols": [",".join(things.columns)]})


LOADED: dict[str, pl.DataFrame] = {}


@asset(key_prefix="silver", partitions_def=DAILY, ins={"things": AssetIn(key=["silver", "things"])})
def things_copy(things: pl.DataFrame) -> None:
    LOADED["things"] = things  # what a same-day consumer gets


def io_manager(grace: int = 3600) -> S3ParquetIOManager:
    return S3ParquetIOManager(
        warehouse_uri=f"s3://{BUCKET}/{PREFIX}",
        s3=S3Resource(region_name=REGION),
        glue=GlueCatalog(database_prefix="test"),
        garbage_grace_seconds=grace,
    )


def run(*assets, partition=None, selection=None, raise_on_error=True, tags=None, grace=3600):
    return materialize(
        list(assets),
        partition_key=partition,
        resources={"io_manager": io_manager(grace)},
        instance=DagsterInstance.ephemeral(),
        selection=selection,
        raise_on_error=raise_on_error,
        tags=tags,
    )


def materializations(result):
    return [e.materialization for e in result.get_asset_materialization_events()]


def glue_table(aws, name="things", layer="silver") -> GlueTable:
    return GlueTable(aws.glue(), f"test_{layer}", name)


def read_like_athena(aws, name="things") -> pl.DataFrame:
    """Rows a catalog reader sees: the files in each registered partition's location."""
    files = []
    for p in glue_table(aws, name).partitions():
        bucket, _, key = p.location.removeprefix("s3://").partition("/")
        files += [f"s3://{bucket}/{k}" for k in aws.keys(bucket, key)]
    if not files:
        return pl.DataFrame()
    return pl.concat([pl.read_parquet(f) for f in files], how="diagonal").sort("id")


@pytest.fixture(autouse=True)
def fresh(aws):
    aws.reset()
    aws.create_bucket(BUCKET)
    PAYLOAD.clear()
    LOADED.clear()


def frame(ids, day, **extra):
    return pl.DataFrame({"id": ids, "ts": [utc(day)] * len(ids), **extra})


def test_partition_replaced_and_loaded_back(aws):
    PAYLOAD["2024-12-01"] = frame([1, 2], 1)
    PAYLOAD["2024-12-02"] = frame([3], 2)
    run(things, partition="2024-12-01")
    run(things, partition="2024-12-02")
    PAYLOAD["2024-12-01"] = frame([4], 1)
    result = run(things, partition="2024-12-01")
    assert read_like_athena(aws)["id"].to_list() == [3, 4]
    meta = materializations(result)[0].metadata
    assert meta["dagster/partition_row_count"].value == 1
    assert meta["dagster/row_count"].value == 2
    # The unpartitioned consumer reads every partition; its table is a Glue table too.
    run(things, thing_count, selection=[thing_count])
    counted = pl.read_parquet(f"s3://{BUCKET}/{aws.keys(BUCKET, f'{PREFIX}/silver/thing_count/')[0]}")
    assert counted["n"].to_list() == [2]
    assert not glue_table(aws, "thing_count").get()["PartitionKeys"]


def test_a_partitioned_consumer_loads_only_its_day(aws):
    PAYLOAD["2024-12-01"] = frame([1, 2], 1)
    PAYLOAD["2024-12-02"] = frame([3], 2)
    run(things, partition="2024-12-01")
    run(things, partition="2024-12-02")
    run(things, things_copy, partition="2024-12-02", selection=[things_copy])
    assert LOADED["things"]["id"].to_list() == [3]


def test_rematerializing_leaves_one_copy_of_each_partition(aws):
    PAYLOAD["2024-12-01"] = frame([1, 2], 1)
    for _ in range(3):
        run(things, partition="2024-12-01")
    keys = aws.keys(BUCKET, THINGS)
    assert len(keys) == 1 and keys[0].startswith(f"{THINGS}dt=2024-12-01/")
    partitions = glue_table(aws).partitions()
    assert [(p.day, p.rows) for p in partitions] == [("2024-12-01", 2)]
    assert keys[0].startswith(partitions[0].location.removeprefix(f"s3://{BUCKET}/"))


def test_columns_are_matched_by_name_not_position(aws):
    PAYLOAD["2024-12-01"] = pl.DataFrame({"id": [1], "ts": [utc(1)], "a": ["x"], "b": ["y"]})
    PAYLOAD["2024-12-02"] = pl.DataFrame({"b": ["B"], "a": ["A"], "ts": [utc(2)], "id": [2]})
    run(things, partition="2024-12-01")
    run(things, partition="2024-12-02")
    run(things, things_copy, partition="2024-12-02", selection=[things_copy])
    assert LOADED["things"].select("id", "a", "b").rows() == [(2, "A", "B")]
    assert LOADED["things"].columns == ["id", "ts", "a", "b"]  # the table's order


def test_new_column_grows_the_table_and_old_partitions_read_null(aws):
    PAYLOAD["2024-12-01"] = frame([1], 1)
    PAYLOAD["2024-12-02"] = frame([2], 2, extra=["new"])
    run(things, partition="2024-12-01")
    run(things, partition="2024-12-02")
    columns = glue_table(aws).get()["StorageDescriptor"]["Columns"]
    assert [(c["Name"], c["Type"]) for c in columns] == [("id", "bigint"), ("ts", "timestamp"), ("extra", "string")]
    run(things, thing_count, selection=[thing_count])
    run(things, things_copy, partition="2024-12-01", selection=[things_copy])
    assert LOADED["things"].select("id", "extra").rows() == [(1, None)]


def test_retyped_or_dropped_columns_are_refused(aws):
    PAYLOAD["2024-12-01"] = frame([1], 1, extra=["x"])
    run(things, partition="2024-12-01")
    PAYLOAD["2024-12-02"] = frame([2], 2, extra=[1.5])
    result = run(things, partition="2024-12-02", raise_on_error=False)
    assert not result.success
    assert "column types changed (extra: string -> double)" in str(result.all_events)
    PAYLOAD["2024-12-02"] = frame([2], 2)
    result = run(things, partition="2024-12-02", raise_on_error=False)
    assert not result.success
    assert "lacks columns the table has (extra)" in str(result.all_events)
    assert [p.day for p in glue_table(aws).partitions()] == ["2024-12-01"]


def test_empty_result_empties_the_partition_on_purpose(aws):
    PAYLOAD["2024-12-01"] = frame([1, 2], 1)
    run(things, partition="2024-12-01")
    PAYLOAD["2024-12-01"] = frame([], 1).cast({"id": pl.Int64, "ts": pl.Datetime("us", "UTC")})
    run(things, partition="2024-12-01")
    partitions = glue_table(aws).partitions()
    assert [(p.day, p.rows) for p in partitions] == [("2024-12-01", 0)]
    assert read_like_athena(aws).height == 0
    run(things, things_copy, partition="2024-12-01", selection=[things_copy])
    assert LOADED["things"].schema == {"id": pl.Int64, "ts": pl.Datetime("us", "UTC")}
    assert LOADED["things"].height == 0


def test_empty_first_result_still_creates_the_table(aws):
    PAYLOAD["2024-12-01"] = frame([], 1).cast({"id": pl.Int64, "ts": pl.Datetime("us", "UTC")})
    run(things, partition="2024-12-01")
    assert glue_table(aws).get() is not None
    assert [(p.day, p.rows) for p in glue_table(aws).partitions()] == [("2024-12-01", 0)]


def test_never_written_upstream_loads_as_a_frame_without_columns(aws):
    run(things, thing_count, selection=[thing_count])
    counted = pl.read_parquet(f"s3://{BUCKET}/{aws.keys(BUCKET, f'{PREFIX}/silver/thing_count/')[0]}")
    assert counted.rows() == [(0, "")]


def test_rows_outside_the_partition_are_refused(aws):
    PAYLOAD["2024-12-01"] = frame([1], 1)
    run(things, partition="2024-12-01")
    PAYLOAD["2024-12-01"] = pl.DataFrame({"id": [5, 6, 7], "ts": [utc(1), utc(3), None]})
    result = run(things, partition="2024-12-01", raise_on_error=False)
    assert not result.success
    assert "2 rows fall outside the partitions being written" in str(result.all_events)
    assert read_like_athena(aws)["id"].to_list() == [1]


def test_text_partition_column_is_refused(aws):
    PAYLOAD["2024-12-01"] = pl.DataFrame({"id": [1], "ts": ["2024-12-01 12:00:00"]})
    result = run(things, partition="2024-12-01", raise_on_error=False)
    assert not result.success
    assert "needs a DATE or TIMESTAMP column" in str(result.all_events)


def test_partition_boundaries_are_utc_days(aws):
    PAYLOAD["2024-12-01"] = pl.DataFrame(
        {"id": [1, 2], "ts": [datetime(2024, 12, 1, 0, 0, tzinfo=timezone.utc),
                              datetime(2024, 12, 1, 23, 59, 59, 999999, tzinfo=timezone.utc)]}
    )
    PAYLOAD["2024-12-02"] = pl.DataFrame({"id": [3], "ts": [datetime(2024, 12, 2, tzinfo=timezone.utc)]})
    run(things, partition="2024-12-01")
    run(things, partition="2024-12-02")
    PAYLOAD["2024-12-01"] = frame([9], 1)
    run(things, partition="2024-12-01")
    assert read_like_athena(aws)["id"].to_list() == [3, 9]


def test_range_run_writes_every_partition_at_once(aws):
    @asset(key_prefix="silver", name="things", partitions_def=DAILY,
           metadata={"partition_expr": "ts"})
    def ranged(context) -> pl.DataFrame:
        window = context.partition_time_window
        days = [d for d in range(window.start.day, window.end.day) if d != 2]  # day 2 is empty
        return pl.DataFrame({"id": days, "ts": [utc(d) for d in days]})

    tags = {ASSET_PARTITION_RANGE_START_TAG: "2024-12-01", ASSET_PARTITION_RANGE_END_TAG: "2024-12-03"}
    result = run(ranged, tags=tags)
    assert read_like_athena(aws)["id"].to_list() == [1, 3]
    assert [(p.day, p.rows) for p in glue_table(aws).partitions()] == [
        ("2024-12-01", 1), ("2024-12-02", 0), ("2024-12-03", 1)
    ]
    assert [m.partition for m in materializations(result)] == ["2024-12-01", "2024-12-02", "2024-12-03"]
    run(ranged, tags=tags)
    assert len(aws.keys(BUCKET, THINGS)) == 3  # replaced as a whole, one file per day


def test_types_round_trip_exactly(aws):
    schema = {
        "id": pl.Int64, "ts": pl.Datetime("us", "UTC"), "price": pl.Decimal(12, 2),
        "total": pl.Decimal(18, 2), "qty": pl.Int32, "day": pl.Date, "flag": pl.Boolean,
        "name": pl.String, "ratio": pl.Float64,
    }
    PAYLOAD["2024-12-01"] = pl.DataFrame(
        [(1, utc(1), Decimal("12.34"), Decimal("1234567890123456.78"), 7, date(2024, 12, 1), True, "é,\"x\"", 0.1234),
         (2, utc(1, 23), None, None, None, None, None, None, None)],
        schema=schema, orient="row",
    )
    run(things, partition="2024-12-01")
    run(things, things_copy, partition="2024-12-01", selection=[things_copy])
    assert LOADED["things"].schema == schema
    assert LOADED["things"].sort("id").equals(PAYLOAD["2024-12-01"])
    types = {c["Name"]: c["Type"] for c in glue_table(aws).get()["StorageDescriptor"]["Columns"]}
    assert types == {
        "id": "bigint", "ts": "timestamp", "price": "decimal(12,2)", "total": "decimal(18,2)",
        "qty": "int", "day": "date", "flag": "boolean", "name": "string", "ratio": "double",
    }


def test_a_crash_between_writing_and_switching_leaves_the_old_partition(aws, monkeypatch):
    PAYLOAD["2024-12-01"] = frame([1, 2], 1)
    run(things, partition="2024-12-01")
    before = glue_table(aws).partitions()

    def crash(*args, **kwargs):
        raise RuntimeError("simulated crash after the new files were written")

    monkeypatch.setattr(GlueTable, "switch_partitions", crash)
    PAYLOAD["2024-12-01"] = frame([7], 1)
    assert not run(things, partition="2024-12-01", raise_on_error=False).success
    monkeypatch.undo()
    assert glue_table(aws).partitions() == before
    assert read_like_athena(aws)["id"].to_list() == [1, 2]  # old version, whole
    assert len(aws.keys(BUCKET, THINGS)) == 2  # plus the unreferenced new file
    # Young garbage may be a concurrent writer's: kept within the grace period...
    PAYLOAD["2024-12-02"] = frame([3], 2)
    run(things, partition="2024-12-02")
    assert len(aws.keys(BUCKET, THINGS)) == 3
    # ...and removed by a later write once it is older than that.
    run(things, partition="2024-12-02", grace=0)
    assert len(aws.keys(BUCKET, THINGS)) == 2
    assert read_like_athena(aws)["id"].to_list() == [1, 2, 3]


def test_a_crash_after_switching_leaves_the_new_partition(aws, monkeypatch):
    PAYLOAD["2024-12-01"] = frame([1, 2], 1)
    run(things, partition="2024-12-01")

    def crash(*args, **kwargs):
        raise RuntimeError("simulated crash before the old files were deleted")

    monkeypatch.setattr(S3ParquetIOManager, "_collect_garbage", crash)
    PAYLOAD["2024-12-01"] = frame([7], 1)
    assert not run(things, partition="2024-12-01", raise_on_error=False).success
    monkeypatch.undo()
    assert read_like_athena(aws)["id"].to_list() == [7]  # new version, whole
    assert len(aws.keys(BUCKET, THINGS)) == 2
    run(things, partition="2024-12-01", grace=0)
    assert len(aws.keys(BUCKET, THINGS)) == 1


def test_unsupported_column_type_is_refused(aws):
    PAYLOAD["2024-12-01"] = frame([1], 1, tags=[["a", "b"]])
    result = run(things, partition="2024-12-01", raise_on_error=False)
    assert not result.success
    assert "column 'tags' is List(String), which has no Glue type" in str(result.all_events)
    assert glue_table(aws).get() is None


def test_aws_mode_needs_the_warehouse_uri_and_says_so(monkeypatch):
    from lakehouse_assets.resources import resources_for_environment

    monkeypatch.setenv("LAKEHOUSE_ENV", "aws")
    monkeypatch.delenv("LAKEHOUSE_WAREHOUSE_URI", raising=False)
    with pytest.raises(ValueError, match="LAKEHOUSE_WAREHOUSE_URI must be set"):
        resources_for_environment()
    monkeypatch.setenv("LAKEHOUSE_WAREHOUSE_URI", f"s3://{BUCKET}/{PREFIX}")
    monkeypatch.setenv("LAKEHOUSE_LANDING_URI", "s3://landing/dms")
    resources = resources_for_environment()
    assert isinstance(resources["io_manager"], S3ParquetIOManager)
    assert resources["landing"].uri == EnvVar("LAKEHOUSE_LANDING_URI")


@pytest.mark.parametrize("uri", ["/local/folder", "s3://", "s3:///prefix", "gs://bucket/x"])
def test_a_warehouse_that_is_not_on_s3_is_refused(uri):
    with pytest.raises(ValueError, match="expected s3://bucket/prefix"):
        split_s3_uri(uri)
