"""What every gold table shares: how it is declared as an asset, and exact rounding in SQL."""


from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import pandera.polars as pa
import polars as pl
from dagster import (
    AllPartitionMapping,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetsDefinition,
    BackfillPolicy,
    Failure,
    Output,
    TimeWindowPartitionMapping,
    asset,
)

from lakehouse_assets.assets.catalog import KINDS, OWNERS, column_schema, silver_schema, with_schema
from lakehouse_assets.checks.validation import run_schema
from lakehouse_assets.partitions import daily_partitions, run_dates
from lakehouse_assets.sources import TABLES_BY_ENTITY
from lakehouse_assets.values import run_sql

P_STATUSES = "('paid', 'shipped', 'delivered')"
R_STATUSES = "('paid', 'shipped', 'delivered', 'refunded')"
MONEY = pl.Decimal(18, 2)

# Partition mappings that say what a gold day really reads.
SAME_DAY = None  # identity: the default for equal daily partitions
EVERY_DAY = AllPartitionMapping()
UP_TO_THE_DAY = TimeWindowPartitionMapping(start_offset=-100_000, allow_nonexistent_upstream_partitions=True)


def days_sql(first: date, last: date) -> str:
    """A one-column relation `d` with every day of the run."""
    return (
        f"(SELECT CAST(unnest(generate_series(DATE '{first}', DATE '{last}', INTERVAL 1 DAY)) "
        "AS DATE) AS d)"
    )


def money_ratio_sql(numerator: str, denominator: str) -> str:
    """numerator / denominator rounded half away from zero to cents, exactly (no floats)."""
    cents = f"CAST(({numerator}) * 100 AS HUGEINT)"
    d = f"CAST(({denominator}) AS HUGEINT)"
    return (
        f"CAST(CAST(sign({cents}) * ((2 * abs({cents}) + {d}) // (2 * {d})) AS DECIMAL(18,0)) "
        "* 0.01 AS DECIMAL(18,2))"
    )


def ratio_sql(numerator: str, denominator: str) -> str:
    """numerator / denominator (non-negative counts) rounded half up to 4 places."""
    n = f"CAST(({numerator}) AS HUGEINT)"
    d = f"CAST(({denominator}) AS HUGEINT)"
    return f"CAST((2 * 10000 * {n} + {d}) // (2 * {d}) AS DOUBLE) / 10000"


@dataclass(frozen=True)
class Reads:
    """What a gold table reads of one silver table: which days, and only these columns (an
    input is loaded with them alone; the query fails loudly if it needs another)."""

    mapping: object  # a partition mapping; None: the same day
    columns: tuple[str, ...]


def reads(mapping, *columns: str) -> Reads:
    return Reads(mapping, columns)


@dataclass(frozen=True)
class GoldTable:
    name: str
    description: str
    inputs: dict[str, Reads]  # silver entity -> what is read of it
    sql: Callable[[date, date], str]  # SQL over the inputs named by entity
    schema: dict[str, pl.DataType]
    model: pa.DataFrameSchema
    columns: dict[str, str]  # column descriptions

    @property
    def key(self) -> AssetKey:
        return AssetKey(["gold", self.name])


def build_gold(table: GoldTable) -> AssetsDefinition:
    ins = {
        entity: AssetIn(
            key=AssetKey(["silver", entity]),
            partition_mapping=r.mapping,
            metadata={"columns": list(r.columns)},
        )
        for entity, r in table.inputs.items()
    }

    @asset(
        key=table.key,
        ins=ins,
        description=table.description,
        group_name="gold",
        owners=OWNERS,
        kinds=KINDS,
        partitions_def=daily_partitions,
        backfill_policy=BackfillPolicy.single_run(),
        metadata={
            "partition_expr": "date",
            "dagster/column_schema": column_schema(table.schema, table.columns, ("date",)),
        },
        check_specs=[
            AssetCheckSpec(
                name="pandera_schema",
                asset=table.key,
                blocking=True,
                description="Pandera model: grain, signs, ratios, arithmetic between columns",
            )
        ],
    )
    def _gold(context: AssetExecutionContext, **inputs: pl.DataFrame):
        first, last = run_dates(context)
        frames = {
            entity: with_schema(frame, silver_schema(TABLES_BY_ENTITY[entity]), table.inputs[entity].columns)
            for entity, frame in inputs.items()
        }
        result = run_sql(table.sql(first, last), **frames).select(list(table.schema)).cast(table.schema).sort(
            [c for c in ("date", "hour", "tenant_id", "customer_id") if c in table.schema]
        )
        check = run_schema(table.model, result, table.key, f"{first}...{last}")
        if not check.passed:
            yield check
            raise Failure(f"blocking check failed for {table.key.to_user_string()}: not written")
        context.log.info(f"{table.name}: {len(result)} rows for {first}...{last}")
        yield Output(result)
        yield check

    return _gold
