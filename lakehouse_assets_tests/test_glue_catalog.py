"""The Glue catalog: type mapping both ways, schema evolution rules, and tables and partitions
registered through boto3 against moto's Glue."""

import polars as pl
import pytest

from lakehouse_assets.storage.glue import (
    GlueCatalog,
    GlueTable,
    Partition,
    check_name,
    evolve_columns,
    glue_columns,
    glue_type,
    polars_schema,
    polars_type,
)
from lakehouse_assets_tests.moto_server import aws  # noqa: F401  (fixture)

ROUND_TRIP = {
    pl.Decimal(12, 2): "decimal(12,2)",
    pl.Decimal(18, 2): "decimal(18,2)",
    pl.Int64(): "bigint",
    pl.Int32(): "int",
    pl.Int16(): "smallint",
    pl.Int8(): "tinyint",
    pl.Float64(): "double",
    pl.Float32(): "float",
    pl.Datetime("us", "UTC"): "timestamp",
    pl.Date(): "date",
    pl.Boolean(): "boolean",
    pl.String(): "string",
}


@pytest.mark.parametrize("dtype", list(ROUND_TRIP))
def test_types_map_to_glue_and_back_exactly(dtype):
    assert glue_type("c", dtype) == ROUND_TRIP[dtype]
    assert polars_type(ROUND_TRIP[dtype]) == dtype


@pytest.mark.parametrize(
    "dtype",
    [pl.Datetime("us"), pl.Datetime("ns", "UTC"), pl.Datetime("us", "Europe/Paris"),
     pl.List(pl.String), pl.Struct({"a": pl.Int64}), pl.Null(), pl.UInt64(), pl.Binary()],
)
def test_types_that_would_not_read_back_exactly_are_refused(dtype):
    with pytest.raises(TypeError, match="'c' is .* which has no Glue type"):
        glue_type("c", dtype)


def test_unknown_glue_types_are_refused():
    with pytest.raises(TypeError, match="not one this warehouse writes"):
        polars_type("array<string>")


def test_columns_follow_the_frame_and_dt_is_reserved():
    schema = pl.Schema({"id": pl.Int64, "amount": pl.Decimal(12, 2)})
    assert glue_columns(schema) == [{"Name": "id", "Type": "bigint"}, {"Name": "amount", "Type": "decimal(12,2)"}]
    assert polars_schema(glue_columns(schema)) == dict(schema)
    with pytest.raises(ValueError, match="clash with the Glue partition key"):
        glue_columns(pl.Schema({"dt": pl.Date}))


def test_schema_evolution_adds_and_never_drops_or_retypes():
    old = [{"Name": "id", "Type": "bigint"}, {"Name": "name", "Type": "string"}]
    grown = evolve_columns(old, [{"Name": "extra", "Type": "date"}, *old], "db.t")
    assert [c["Name"] for c in grown] == ["id", "name", "extra"]  # old order kept, new appended
    with pytest.raises(TypeError, match=r"db.t: column types changed \(id: bigint -> int\)"):
        evolve_columns(old, [{"Name": "id", "Type": "int"}, old[1]], "db.t")
    with pytest.raises(ValueError, match=r"lacks columns the table has \(name\)"):
        evolve_columns(old, old[:1], "db.t")


@pytest.mark.parametrize("name", ["../x", "Orders", "a-b", "", "a/b", "1abc"])
def test_names_that_are_not_safe_glue_and_s3_names_are_refused(name):
    with pytest.raises(ValueError, match="must match"):
        check_name("table", name)


@pytest.fixture
def catalog(aws):
    aws.reset()
    return GlueCatalog(database_prefix="cat")


COLUMNS = [{"Name": "id", "Type": "bigint"}, {"Name": "amount", "Type": "decimal(12,2)"}]


def test_a_table_is_a_parquet_table_partitioned_by_dt(catalog, aws):
    table = catalog.table("gold", "daily_revenue")
    assert table.get() is None
    table.put(None, COLUMNS, "s3://wh/tables/gold/daily_revenue/", partitioned=True)
    raw = aws.glue().get_table(DatabaseName="cat_gold", Name="daily_revenue")["Table"]
    assert raw["PartitionKeys"] == [{"Name": "dt", "Type": "string"}]
    assert raw["TableType"] == "EXTERNAL_TABLE"
    assert raw["Parameters"]["classification"] == "parquet"
    sd = raw["StorageDescriptor"]
    assert sd["Columns"] == COLUMNS
    assert sd["SerdeInfo"]["SerializationLibrary"] == "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    assert sd["InputFormat"] == "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    # A second table in the same layer reuses the database.
    catalog.table("gold", "daily_funnel").put(None, COLUMNS, "s3://wh/tables/gold/daily_funnel/", partitioned=True)
    assert [d["Name"] for d in aws.glue().get_databases()["DatabaseList"]] == ["cat_gold"]


def test_switching_partitions_creates_updates_and_reports_what_was_there(catalog):
    table = catalog.table("silver", "orders")
    table.put(None, COLUMNS, "s3://wh/t/", partitioned=True)
    days = [f"2024-{m:02d}-{d:02d}" for m in range(1, 10) for d in range(1, 29)]  # 252 > 2 batches
    first = [Partition(d, f"s3://wh/t/dt={d}/v1/", 1) for d in days]
    assert table.switch_partitions(first, COLUMNS) == {}
    second = [Partition(d, f"s3://wh/t/dt={d}/v2/", 2) for d in days[:150]]
    before = table.switch_partitions(second, COLUMNS)
    assert sorted(before) == days[:150] and before[days[0]].location == f"s3://wh/t/dt={days[0]}/v1/"
    now = {p.day: p for p in table.partitions()}
    assert len(now) == len(days)
    assert now[days[0]] == Partition(days[0], f"s3://wh/t/dt={days[0]}/v2/", 2)
    assert now[days[-1]] == Partition(days[-1], f"s3://wh/t/dt={days[-1]}/v1/", 1)


def test_a_partition_created_by_another_writer_meanwhile_is_updated(catalog, monkeypatch):
    table = catalog.table("silver", "orders")
    table.put(None, COLUMNS, "s3://wh/t/", partitioned=True)
    table.switch_partitions([Partition("2024-12-01", "s3://wh/t/dt=2024-12-01/theirs/", 5)], COLUMNS)
    # This writer looked before the other one registered the partition.
    monkeypatch.setattr(GlueTable, "find_partitions", lambda self, days: {})
    table.switch_partitions([Partition("2024-12-01", "s3://wh/t/dt=2024-12-01/ours/", 3)], COLUMNS)
    monkeypatch.undo()
    assert table.partitions() == [Partition("2024-12-01", "s3://wh/t/dt=2024-12-01/ours/", 3)]
