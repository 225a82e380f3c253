"""How a gold table is declared (CONTRACT section 5), once: its columns (type, description,
rule), what it reads of silver and on which of its days a silver row counts, and its SQL.

From a declaration come the asset, its table spec and Pandera model (schemas/), what a step
scans of silver for the days it computes, and which gold days a changed silver row makes
stale (lineage.py), for the run that changed it and for the landing sensor alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandera.polars as pa

from lakehouse_assets.schemas.types import PgType

P_STATUSES = "('paid', 'shipped', 'delivered')"
R_STATUSES = "('paid', 'shipped', 'delivered', 'refunded')"


@dataclass(frozen=True)
class GoldColumn:
    name: str
    type: PgType
    description: str = ""
    checks: tuple[pa.Check, ...] = ()
    nullable: bool = False


def column(name: str, type: PgType, description: str = "", *checks: pa.Check, nullable: bool = False) -> GoldColumn:
    return GoldColumn(name, type, description, tuple(checks), nullable)


# On which days of a gold table a silver row counts (its lineage).
@dataclass(frozen=True)
class OnBusinessDay:
    """On the row's own business date (its partition column)."""


@dataclass(frozen=True)
class OnDateOf:
    """On the date of another of its columns (e.g. an invoice on the day it was paid)."""

    column: str


@dataclass(frozen=True)
class OnDayOf:
    """On the business date of the row of `entity` that `column` refers to (an item counts on
    its order's day)."""

    column: str
    entity: str


@dataclass(frozen=True)
class FromDateOf:
    """On every day from the earliest of these dates on (windows that reach forward: MRR,
    segments); for one `grain` value (the row's value in `grain_from`) when the table has a
    grain below the tenant."""

    columns: tuple[str, ...]
    grain_from: str | None = None


CountsOn = OnBusinessDay | OnDateOf | OnDayOf | FromDateOf


@dataclass(frozen=True)
class Reads:
    """What a gold table reads of one silver table: only these columns, and where they count."""

    entity: str
    columns: tuple[str, ...]
    counts_on: CountsOn


def reads(entity: str, counts_on: CountsOn, *columns: str) -> Reads:
    return Reads(entity, columns, counts_on)


@dataclass(frozen=True)
class GoldTable:
    name: str
    description: str
    columns: tuple[GoldColumn, ...]
    inputs: tuple[Reads, ...]
    # SQL over the inputs (relations named by entity) and `_days` (column d: the days to
    # compute); with a grain, over `_cells` (d and the grain column) instead of `_days`.
    sql: Callable[[], str]
    unique: tuple[str, ...]
    checks: tuple[pa.Check, ...] = ()
    grain: str | None = None  # a column below the tenant at which staleness is tracked
    sort: tuple[str, ...] = field(default=("date", "tenant_id"))

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        if names[0] != "date" or len(set(names)) != len(names):
            raise ValueError(f"gold.{self.name}: columns start with `date` and are unique")
        for r in self.inputs:
            if isinstance(r.counts_on, FromDateOf) and (r.counts_on.grain_from is None) != (self.grain is None):
                raise ValueError(f"gold.{self.name}: a forward window of {r.entity} names a grain iff the table has one")

    @property
    def schema(self) -> dict[str, PgType]:
        return {c.name: c.type for c in self.columns}

    def input(self, entity: str) -> Reads:
        return next(r for r in self.inputs if r.entity == entity)


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


def in_days(expr: str) -> str:
    """SQL: the date `expr` is one of the days computed."""
    return f"CAST({expr} AS DATE) IN (SELECT d FROM _days)"
