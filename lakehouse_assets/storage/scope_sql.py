"""A `Scope` as a DuckDB predicate, for the DuckDB warehouse and for checking rows against
the scope they are written to (data work runs in DuckDB in every mode)."""

from __future__ import annotations

import itertools
from datetime import timedelta

import duckdb
import polars as pl

from lakehouse_assets.schemas.types import PgType
from lakehouse_assets.storage.tables import Scope, TableSpec, day_ranges
from lakehouse_assets.values import quote_ident, quote_literal, register

_names = itertools.count()


def temp_name(prefix: str) -> str:
    """A name no other relation of this process has."""
    return f"__{prefix}_{next(_names)}"


def scope_predicate(con: duckdb.DuckDBPyConnection, scope: Scope, spec: TableSpec,
                    registered: list[str]) -> str:
    """SQL that is true for the rows of `spec`'s table inside `scope`. Key and file sets are
    registered on `con` (their names appended to `registered`, for the caller to drop)."""
    clauses = []
    if scope.days is not None:
        clauses.append(days_predicate(spec, scope.days))
    if scope.files is not None:
        name = temp_name("files")
        register(con, name, pl.DataFrame({"f": sorted(scope.files)}, schema={"f": pl.String}))
        registered.append(name)
        clauses.append(f"_source_file IN (SELECT f FROM {name})")
    if scope.after is not None:
        column, t = scope.after
        clauses.append(f"{quote_ident(column)} > TIMESTAMPTZ '{t.isoformat()}'")
    if scope.keys is not None:
        if isinstance(scope.keys, str):  # a relation of `con`: used where it is
            name = scope.keys
            columns = [r[0] for r in con.execute(f"SELECT column_name FROM (DESCRIBE {name})").fetchall()]
        else:
            name, columns = temp_name("keys"), scope.keys.columns
            register(con, name, scope.keys)
            registered.append(name)
        missing = [c for c in columns if c not in spec.columns]
        if missing:
            raise ValueError(f"{spec.ref} has no key column(s) {', '.join(missing)}")
        cols = ", ".join(quote_ident(c) for c in columns)
        clauses.append(f"({cols}) IN (SELECT {cols} FROM {name})")
    return " AND ".join(f"({c})" for c in clauses) if clauses else "true"


def days_predicate(spec: TableSpec, days) -> str:
    if spec.partition_column is None:
        raise ValueError(f"{spec.ref} is not partitioned: a scope of days means nothing for it")
    if not days:
        return "false"
    col = quote_ident(spec.partition_column)
    timestamp = spec.columns[spec.partition_column] is PgType.TIMESTAMPTZ
    ranges = []
    for first, last in day_ranges(days):
        if timestamp:  # compares as stored: no cast of every row, and zone maps can skip blocks
            end = last + timedelta(days=1)
            ranges.append(f"({col} >= TIMESTAMPTZ '{first} 00:00:00+00' AND {col} < TIMESTAMPTZ '{end} 00:00:00+00')")
        else:
            ranges.append(f"({col} BETWEEN DATE '{first}' AND DATE '{last}')")
    return " OR ".join(ranges)


def files_literal(files) -> str:
    return "(" + ", ".join(quote_literal(f) for f in sorted(files)) + ")" if files else "(NULL)"
