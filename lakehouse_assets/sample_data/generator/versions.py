"""A table as the source database saw it (`_Versions`: every insert and update of every row, and
maybe its delete), and how that becomes DMS records: `_split` cuts the versions at the full
load into LOAD rows and CDC records, `_number_changes` numbers the CDC records in commit order
across the whole source (the base of `_dms_seq`). Hooks give values; this gives them columns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from lakehouse_assets.sample_data.generator.context import NULL, _Ctx
from lakehouse_assets.sources import Column, PgType, SourceTable


@dataclass
class _Versions:
    """Every version of every row of one table, as the source database saw it."""

    times: np.ndarray  # (n, S): when each version was written; NULL = no such version (trailing)
    rows: Callable[[np.ndarray, np.ndarray], dict[str, Any]]  # (row, version) -> column values
    commit: np.ndarray | None = None  # (n, S) commit times; default: a few ms after `times`
    sub: np.ndarray | int = 0  # position of the insert inside its transaction
    deleted: np.ndarray | None = None  # (n,) commit time of the delete; NULL: never deleted
    delete_sub: np.ndarray | int = 0


@dataclass
class _Parts:
    load: Callable[[], pl.DataFrame]  # built late, table by table, to keep memory low
    cdc: pl.DataFrame  # table columns + _op, _ts, _sub (and _ctr once numbered)
    live: int


_DTYPES = {
    PgType.BIGINT: pl.Int64,
    PgType.INTEGER: pl.Int64,
    PgType.NUMERIC: pl.Int64,
    PgType.TIMESTAMPTZ: pl.Int64,
    PgType.BOOLEAN: pl.Boolean,
    PgType.TEXT: pl.String,
    PgType.JSONB: pl.String,
}


def _frame(table: SourceTable, values: dict[str, Any]) -> pl.DataFrame:
    """Typed columns in declaration order; every declared column must have values."""
    missing = [c.name for c in table.columns if c.name not in values]
    if missing:
        raise KeyError(f"sample-data hook for {table.name} gives no values for {missing}")
    return pl.DataFrame([_series(c, values[c.name]) for c in table.columns])


def _series(col: Column, values: Any) -> pl.Series:
    s = values if isinstance(values, pl.Series) else pl.Series(values)
    return s.cast(_DTYPES[col.type]).alias(col.name)


def _commit_times(rng: np.random.Generator, times: np.ndarray) -> np.ndarray:
    """The transaction commits a fraction of a millisecond to 80 ms after the row was written."""
    commit = times.copy()
    present = times != NULL
    commit[present] += rng.integers(200, 80_000, int(present.sum()))
    return commit


def _split(ctx: _Ctx, table: SourceTable, v: _Versions) -> _Parts:
    """Versions before the load make the LOAD rows; later ones (up to the end of the CDC and
    the row's delete) the CDC records; a delete is a record with only the primary key."""
    n = len(v.times)
    commit = _commit_times(ctx.rng, v.times) if v.commit is None else v.commit
    deleted = np.full(n, NULL) if v.deleted is None else v.deleted
    before = (v.times < ctx.load0).sum(1)
    load_rows = np.flatnonzero(before)

    in_cdc = (v.times >= ctx.load0) & (commit < np.minimum(deleted, ctx.cdc_end)[:, None])
    row, ver = np.nonzero(in_cdc)
    changes = _frame(table, v.rows(row, ver)).with_columns(
        _op=pl.Series(np.where(ver == 0, "I", "U")),
        _ts=pl.Series(commit[row, ver]),
        _sub=pl.Series(np.broadcast_to(np.asarray(v.sub, np.int64), n)[row]),
    )
    gone = np.flatnonzero(deleted < ctx.cdc_end)
    deletes = (
        _frame(table, v.rows(gone, np.zeros(len(gone), np.int64)))
        .select(table.primary_key)
        .with_columns(
            _op=pl.lit("D"),
            _ts=pl.Series(deleted[gone]),
            _sub=pl.Series(np.broadcast_to(np.asarray(v.delete_sub, np.int64), n)[gone]),
        )
    )

    def load() -> pl.DataFrame:
        return _frame(table, v.rows(load_rows, before[load_rows] - 1)).sort(table.primary_key)

    return _Parts(load, pl.concat([changes, deletes], how="diagonal"), n - len(gone))


def _number_changes(cdcs: list[pl.DataFrame]) -> list[pl.DataFrame]:
    """`_ctr`: 1, 2, ... in commit order over the whole source (rows of one transaction share
    the commit time and go in `_sub` order); the base of `_dms_seq`."""
    keys = pl.concat(
        [
            c.select("_ts", "_sub").with_columns(
                _t=pl.lit(i, pl.Int64), _r=pl.int_range(pl.len(), dtype=pl.Int64)
            )
            for i, c in enumerate(cdcs)
        ]
    )
    keys = keys.sort(["_ts", "_sub", "_t", "_r"]).with_columns(
        _ctr=pl.int_range(1, pl.len() + 1, dtype=pl.Int64)
    )
    numbered = []
    for i, c in enumerate(cdcs):
        ctr = keys.filter(pl.col("_t") == i).sort("_r")["_ctr"]
        numbered.append(c.with_columns(ctr).sort("_ctr"))
    return numbered
