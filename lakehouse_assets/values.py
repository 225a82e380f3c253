"""How DMS text becomes typed values (CONTRACT section 2, 'Values'), as DuckDB SQL.

One place decides what parses: the landing reader uses it for `_dms_commit_ts`, silver for
every column. Each parser returns NULL for text that does not parse; callers compare with the
input to tell NULL from "does not parse". DuckDB's own casts are too lenient on their own
(`' 1'`, `'1.5'` to BIGINT, `'yes'` to BOOLEAN, hour 24), so a regular expression decides the
shape first and the cast only range-checks it. Numeric casts round half away from zero, as
PostgreSQL's numeric does.
"""

from __future__ import annotations

import os
import threading

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


# DuckDB's json_valid (yyjson) accepts, beyond RFC 8259 (and PostgreSQL's jsonb), trailing
# commas and NaN / Infinity literals. With every string literal blanked out and true, false,
# null and exponents replaced by a digit, valid JSON holds no letter and no `,` before a
# closing bracket: what is left to check for those two.
JSON_STRING_RE = r'"(?:[^"\\]|\\.)*"'
JSON_WORD_RE = r"\b(true|false|null)\b|[0-9][eE]"
JSON_LENIENT_RE = r"[A-Za-z]|,\s*[\]}]"
# Text with neither of those anywhere (nan and inf in any case, a comma before a closing
# bracket) cannot hold them outside its strings either: yyjson's verdict stands, and the
# costly blanking above (measured: 2.65 of the 5.7 s typing scale 10's events) runs only on
# the rest.
JSON_SUSPECT_RE = r"(?i)nan|inf|,\s*[\]}]"


def json_valid_sql(col: str) -> str:
    """SQL boolean: `col` is JSON text by RFC 8259 (strings, nesting and number size as
    PostgreSQL's jsonb accepts them)."""
    blanked = f"regexp_replace({col}, {quote_literal(JSON_STRING_RE)}, '\"\"', 'g')"
    bare = f"regexp_replace({blanked}, {quote_literal(JSON_WORD_RE)}, '0', 'g')"
    # CASE, not AND/OR: DuckDB evaluates only the branch a row takes.
    return (
        f"(CASE WHEN NOT json_valid({col}) THEN false"
        f" WHEN NOT regexp_matches({col}, {quote_literal(JSON_SUSPECT_RE)}) THEN true"
        f" ELSE NOT regexp_matches({bare}, {quote_literal(JSON_LENIENT_RE)}) END)"
    )


def parse_sql(col_sql: str, pg_type: PgType) -> str:
    """SQL expression parsing the text expression `col_sql` as `pg_type` (NULL if it can't)."""
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
        return f"CASE WHEN {json_valid_sql(c)} THEN {c} END"
    return c


_MEMORY: dict[int, duckdb.DuckDBPyConnection] = {}  # one in-memory database per process
_MEMORY_LOCK = threading.Lock()


def connect() -> duckdb.DuckDBPyConnection:
    """A connection to an in-memory DuckDB for data work, in UTC (dates of timestamps are UTC
    dates). Starting a DuckDB costs ~20 ms, a connection to a running one well under 1: every
    caller gets its own connection (its registered frames are its own) to the process's one."""
    with _MEMORY_LOCK:
        database = _MEMORY.get(os.getpid())
        if database is None:  # first use, or a forked child, which must not share its parent's
            database = _MEMORY[os.getpid()] = duckdb.connect(":memory:")
    con = database.cursor()
    con.execute("SET TimeZone = 'UTC'").fetchall()
    return con


def register(con: duckdb.DuckDBPyConnection, name: str, frame: pl.DataFrame) -> None:
    """Let DuckDB scan a polars frame in place: Arrow with string views shares polars'
    buffers (the default conversion copies every string), and DuckDB reads only the columns a
    query names."""
    con.register(name, frame.to_arrow(compat_level=pl.CompatLevel.newest()))


def run_sql(query: str, **frames: pl.DataFrame) -> pl.DataFrame:
    """Run DuckDB SQL over polars frames (zero-copy through Arrow) and return polars."""
    con = connect()
    try:
        for name, frame in frames.items():
            register(con, name, frame)
        return con.sql(query).pl()
    finally:
        con.close()
