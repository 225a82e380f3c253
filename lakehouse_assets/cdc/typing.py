"""Typing a winning change and the rules that quarantine it (CONTRACT section 4), as SQL.

Every column is parsed once (`typed_name`), every rule reads the parsed value, and all the
reasons a version fails are joined into `_dq_reason` (NULL when it is valid).
"""

from __future__ import annotations

from datetime import date

from lakehouse_assets.schemas.types import duckdb_type
from lakehouse_assets.sources import Column, PgType, SourceTable
from lakehouse_assets.values import parse_sql, quote_ident, quote_literal


def parse_column(col: Column) -> str:
    return parse_sql(quote_ident(col.name), col.type)


def typed_name(col: Column) -> str:
    """The column holding a winner's parsed value (parsed once, read by every rule)."""
    return quote_ident(f"__typed__{col.name}")


def business_date_sql(table: SourceTable) -> str:
    """A landed row's business date, parsed (NULL where it does not parse)."""
    return f"CAST(({parse_column(table.column(table.partition_column))}) AS DATE)"


def _problems(col: Column, table: SourceTable, first_partition: date) -> list[str]:
    """SQL expressions, each NULL or the text of one reason to quarantine."""
    ident = quote_ident(col.name)
    parsed = typed_name(col)
    shown = f"'''' || left({ident}, 80) || ''''"
    out = []
    if col.name in table.required_columns:
        out.append(f"CASE WHEN {ident} IS NULL THEN '{col.name} is NULL' END")
    if col.type is not PgType.TEXT:
        out.append(
            f"CASE WHEN {ident} IS NOT NULL AND ({parsed}) IS NULL "
            f"THEN '{col.name}: ' || {shown} || ' is not a valid {col.type.value}' END"
        )
    if col.allowed:
        allowed = ", ".join(quote_literal(v) for v in col.allowed)
        out.append(
            f"CASE WHEN {ident} NOT IN ({allowed}) THEN '{col.name}: ' || {shown} "
            f"|| ' is not one of {', '.join(col.allowed)}' END"
        )
    if col.non_negative:
        out.append(f"CASE WHEN ({parsed}) < 0 THEN '{col.name} is negative (' || {ident} || ')' END")
    if col.positive:
        out.append(f"CASE WHEN ({parsed}) <= 0 THEN '{col.name} is not positive (' || {ident} || ')' END")
    if col.name == table.partition_column:
        start = quote_literal(first_partition.isoformat())
        out.append(
            f"CASE WHEN CAST(({parsed}) AS DATE) < DATE {start} THEN '{col.name} is before the "
            f"first partition ({first_partition.isoformat()}): no silver partition can hold it' END"
        )
    return out


def typed_select_sql(table: SourceTable, rows: str, first_partition: date) -> str:
    """From landed rows (bronze's columns, and any others passed through), the typed columns
    as `__typed__<name>`, `_dq_reason`, and `_day`: the partition silver or quarantine holds
    the version in (a quarantined version without a readable business date goes to its
    commit date's)."""
    parse = ", ".join(f"CAST({parse_column(c)} AS {duckdb_type(c.type)}) AS {typed_name(c)}" for c in table.columns)
    problems = [p for c in table.columns for p in _problems(c, table, first_partition)]
    reason = f"nullif(concat_ws('; ', {', '.join(problems)}), '')"
    business = f"CAST({typed_name(table.column(table.partition_column))} AS DATE)"
    start = quote_literal(first_partition.isoformat())
    return f"""
        SELECT *, {reason} AS _dq_reason,
               greatest(coalesce({business}, CAST(_commit_ts AS DATE)), DATE {start}) AS _day
        FROM (SELECT *, {parse} FROM {rows})
    """
