"""SCD type 1: the current state of each key from its change records (CONTRACT 2 and 4).

The last change of a key wins, in the contract's order: `_dms_commit_ts`, then `_dms_seq`
(empty first, else as a number), then the file (LOAD before CDC, each kind by name), then the
record's position in its file. A winning `D` removes the key. The winner is then typed and
validated: valid versions are silver, the others go to quarantine with every reason found.
Everything runs as one DuckDB query over the bronze frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from lakehouse_assets.sources import Column, PgType, SourceTable
from lakehouse_assets.values import (
    DUCKDB_TYPES,
    connect,
    parse_sql,
    quote_ident,
    quote_literal,
    register,
)
from lakehouse_assets.landing.files import LOAD_NAME

# `_dms_seq` compares as a number without overflow: shorter (after leading zeros) is smaller,
# equal lengths compare as text.
SEQ_DIGITS = "ltrim(coalesce(_seq, ''), '0')"


@dataclass(frozen=True)
class SilverResult:
    valid: pl.DataFrame  # typed columns + _commit_ts, _source_file
    quarantine: pl.DataFrame  # landed text + change metadata + _dq_reason, _partition_date
    live_keys: int  # keys whose last change is not a delete, counted apart from the split above


def comparable_sql(name: str, pg_type: PgType) -> str:
    """A key column as compared: the parsed value when it parses (so '007' is 7), else the text."""
    ident = quote_ident(name)
    if pg_type is PgType.TEXT:
        return ident
    return f"coalesce(CAST({parse_sql(ident, pg_type)} AS VARCHAR), {ident})"


def key_sql(table: SourceTable) -> list[str]:
    return [comparable_sql(name, table.column(name).type) for name in table.primary_key]


def parse_column(col: Column) -> str:
    """SQL parsing a landed column."""
    return parse_sql(quote_ident(col.name), col.type)


def typed_name(col: Column) -> str:
    """The column holding a winner's parsed value (parsed once, read by every rule)."""
    return quote_ident(f"__typed__{col.name}")


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
        out.append(
            f"CASE WHEN ({parsed}) <= 0 THEN '{col.name} is not positive (' || {ident} || ')' END"
        )
    if col.name == table.partition_column:
        start = quote_literal(first_partition.isoformat())
        out.append(
            f"CASE WHEN CAST(({parsed}) AS DATE) < DATE {start} THEN '{col.name} is before the "
            f"first partition ({first_partition.isoformat()}): no silver partition can hold it' END"
        )
    return out


def business_date_sql(table: SourceTable) -> str:
    return f"CAST(({parse_column(table.column(table.partition_column))}) AS DATE)"


def file_rank(files: pl.Series) -> pl.Series:
    """The contract's order between files as an integer per row: LOAD files before CDC
    files, each kind by name (decided once per distinct file, not per row)."""
    def order(path: str) -> tuple[int, str]:
        name = path.rsplit("/", 1)[-1]
        return (0 if LOAD_NAME.match(name) else 1, name)

    ranked = sorted(files.unique().drop_nulls().to_list(), key=order)
    return files.replace_strict(ranked, list(range(len(ranked))), return_dtype=pl.Int32)


def _order_sql() -> str:
    """The change order as one comparable value (later change = greater)."""
    return f"""struct_pack(
        ts := _commit_ts, has_seq := coalesce(_seq, '') <> '',
        seq_len := length({SEQ_DIGITS}), seq := {SEQ_DIGITS},
        file := _file_rank, row := _source_row)"""


def _winners(con, table: SourceTable) -> tuple[pl.Series, int]:
    """Row index of every key's last change, and how many of those are not deletes. Most keys
    have one change: they are found by counting alone; only the others are ordered (an
    aggregate over the order as a struct holds gigabytes for millions of keys)."""
    keys = [f"{sql} AS __k{i}" for i, sql in enumerate(key_sql(table))]
    names = ", ".join(f"__k{i}" for i in range(len(keys)))
    # NULL is a key too (its versions are quarantined): IS NOT DISTINCT FROM, not =.
    on = " AND ".join(f"k.__k{i} IS NOT DISTINCT FROM m.__k{i}" for i in range(len(keys)))
    winners = con.sql(
        f"""
        WITH k AS (SELECT {", ".join(keys)}, * FROM ordering),
             c AS (SELECT {names}, count(*) AS n, min(_i) AS _i, min(_op) AS _op FROM k GROUP BY ALL)
        SELECT _i, _op FROM c WHERE n = 1
        UNION ALL
        SELECT arg_max(_i, {_order_sql()}), arg_max(_op, {_order_sql()})
        FROM k SEMI JOIN (SELECT {names} FROM c WHERE n > 1) m ON {on}
        GROUP BY {names}
        ORDER BY 1
        """
    ).pl()
    return winners["_i"], int((winners["_op"] != "D").sum())


def merge_to_silver(
    changes: pl.DataFrame, table: SourceTable, first_partition: date
) -> SilverResult:
    """Current, typed, validated state of `table` from all of its change records.

    The winner of each key is found on the few columns that order changes (a hash
    aggregate, no sort of whole rows); only the winners are then gathered, typed and
    validated."""
    problems = [p for c in table.columns for p in _problems(c, table, first_partition)]
    reason = f"concat_ws('; ', {', '.join(problems)})"
    parse = ", ".join(
        f"CAST({parse_column(c)} AS {DUCKDB_TYPES[c.type]}) AS {typed_name(c)}" for c in table.columns
    )
    typed = ", ".join(f"{typed_name(c)} AS {quote_ident(c.name)}" for c in table.columns)
    business_date = f"CAST({typed_name(table.column(table.partition_column))} AS DATE)"
    ordering = changes.select(
        *table.primary_key, "_op", "_commit_ts", "_seq", "_source_row",
        file_rank(changes["_source_file"]).alias("_file_rank"),
    ).with_row_index("_i")
    con = connect()
    try:
        register(con, "ordering", ordering)
        last, live_keys = _winners(con, table)
        # The winners are marked, not gathered (a copy of the table), and typed with their
        # reasons in one pass (kept in DuckDB as a temporary table they would be another).
        won = np.zeros(len(changes), dtype=bool)
        won[last.to_numpy()] = True
        register(con, "candidates", changes.with_columns(pl.Series("_won", won)).with_row_index("_w"))
        checked = con.sql(
            f"""
            SELECT {typed}, _commit_ts, _source_file, _w,
                   nullif({reason}, '') AS _dq_reason,
                   greatest(coalesce({business_date}, CAST(_commit_ts AS DATE)),
                            DATE {quote_literal(first_partition.isoformat())}) AS _partition_date
            FROM (SELECT *, {parse} FROM candidates WHERE _won AND _op <> 'D')
            """
        ).pl()
    finally:
        con.close()
    bad = checked["_dq_reason"].is_not_null()
    columns = [*table.column_names, "_commit_ts", "_source_file"]
    valid = checked.select(columns) if not bad.any() else checked.filter(~bad).select(columns)
    flagged = checked.filter(bad)
    quarantine = (
        changes.gather(flagged["_w"])
        .select(*table.column_names, *table.trailing_columns, "_op", "_commit_ts", "_seq", "_source_file", "_source_row")
        .with_columns(flagged["_dq_reason"], flagged["_partition_date"])
    )
    return SilverResult(valid, quarantine, live_keys)
