"""How DMS text becomes typed values (CONTRACT section 2, 'Values'), as DuckDB SQL.

One place decides what parses: the landing reader uses it for `_dms_commit_ts`, silver for
every column. Each parser returns NULL for text that does not parse; callers compare with the
input to tell NULL from "does not parse". DuckDB's own casts are too lenient on their own
(`' 1'`, `'1.5'` to BIGINT, `'yes'` to BOOLEAN, hour 24), so a regular expression decides the
shape first and the cast only range-checks it. Numeric casts round half away from zero, as
PostgreSQL's numeric does.
"""

from __future__ import annotations

import duckdb
import polars as pl

from lakehouse_assets.sources import PgType

TIMESTAMP_RE = r"\d{4}-\d{2}-\d{2} ([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,6})?"
DATE_RE = r"\d{4}-\d{2}-\d{2}"
INTEGER_RE = r"[+-]?\d+"
NUMERIC_RE = r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?"
BOOLEAN_TRUE = ("true", "t", "1")
BOOLEAN_FALSE = ("false", "f", "0")

DUCKDB_TYPES = {
    PgType.BIGINT: "BIGINT",
    PgType.INTEGER: "INTEGER",
    PgType.NUMERIC: "DECIMAL(12,2)",
    PgType.TEXT: "VARCHAR",
    PgType.BOOLEAN: "BOOLEAN",
    PgType.JSONB: "VARCHAR",
    PgType.TIMESTAMPTZ: "TIMESTAMPTZ",
    PgType.DATE: "DATE",
    PgType.DOUBLE: "DOUBLE",
}


def quote_ident(name: str) -> str:
    """A SQL identifier, always quoted: names never reach SQL as bare text."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _matches(col: str, pattern: str) -> str:
    return f"regexp_full_match({col}, {quote_literal(pattern)})"


def json_flag(name: str) -> str:
    """Name of the companion column that says whether `name` holds valid JSON."""
    return f"__json_ok__{name}"


def with_json_flags(frame: pl.DataFrame, names: list[str]) -> pl.DataFrame:
    """Add a strict RFC 8259 validity flag per JSON column. DuckDB's json_valid accepts
    trailing commas, NaN and Infinity, which PostgreSQL jsonb (and JSON) reject; polars'
    parser does not (it returns NULL for invalid text and for the literal `null`)."""
    return frame.with_columns(
        (
            pl.col(n).str.json_path_match("$").is_not_null()
            | (pl.col(n).str.strip_chars(" \t\n\r") == "null")
        ).alias(json_flag(n))
        for n in names
    )


def parse_sql(col_sql: str, pg_type: PgType, json_ok_sql: str | None = None) -> str:
    """SQL expression parsing the text expression `col_sql` as `pg_type` (NULL if it can't).
    JSON needs `json_ok_sql`, a boolean from `with_json_flags`."""
    c = col_sql
    if pg_type is PgType.TIMESTAMPTZ:
        return (
            f"CASE WHEN {_matches(c, TIMESTAMP_RE)} "
            f"THEN timezone('UTC', TRY_CAST({c} AS TIMESTAMP)) END"
        )
    if pg_type in (PgType.BIGINT, PgType.INTEGER):
        return f"CASE WHEN {_matches(c, INTEGER_RE)} THEN TRY_CAST({c} AS {DUCKDB_TYPES[pg_type]}) END"
    if pg_type is PgType.DATE:
        return f"CASE WHEN {_matches(c, DATE_RE)} THEN TRY_CAST({c} AS DATE) END"
    if pg_type is PgType.DOUBLE:
        return f"CASE WHEN {_matches(c, NUMERIC_RE)} THEN TRY_CAST({c} AS DOUBLE) END"
    if pg_type is PgType.NUMERIC:
        return f"CASE WHEN {_matches(c, NUMERIC_RE)} THEN TRY_CAST({c} AS DECIMAL(12,2)) END"
    if pg_type is PgType.BOOLEAN:
        t = ", ".join(quote_literal(v) for v in BOOLEAN_TRUE)
        f = ", ".join(quote_literal(v) for v in BOOLEAN_FALSE)
        return f"CASE WHEN lower({c}) IN ({t}) THEN true WHEN lower({c}) IN ({f}) THEN false END"
    if pg_type is PgType.JSONB:
        if json_ok_sql is None:
            raise ValueError("JSON validity comes from with_json_flags(); pass json_ok_sql")
        return f"CASE WHEN {json_ok_sql} THEN {c} END"
    return c


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB for data work: UTC, so dates of timestamps are UTC dates."""
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'").fetchall()
    return con


def run_sql(query: str, **frames: pl.DataFrame) -> pl.DataFrame:
    """Run DuckDB SQL over polars frames (zero-copy through Arrow) and return polars."""
    con = connect()
    try:
        for name, frame in frames.items():
            con.register(name, frame)
        return con.sql(query).pl()
    finally:
        con.close()
