"""Deleting data on purpose: a tenant's data under GDPR, or a bad load. Never a side effect.

A purge names a column and a value (`tenant_id` = 42 in every table that has it, or one
table's rows), or one landing file (`_source_file`). It deletes the matching bronze rows (and
a purged file's rejects), moves their count to the manifest's `purged`, records the files it
touched so silver merges their keys again from what is left, and writes an audit row to
`bronze.purge_log`: who, when, why, what, how many rows. The audit rows are also the purge
list: every later ingest drops matching rows before they are written, so no backfill brings
purged data back from files still in the landing zone.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from lakehouse_assets.schemas.tables import FILE_EVENTS, MANIFEST, PURGES, REJECTS, bronze_spec
from lakehouse_assets.schemas.types import polars_schema
from lakehouse_assets.sources import SOURCE_TABLES, PgType, SourceTable
from lakehouse_assets.storage.tables import Scope, Session
from lakehouse_assets.values import parse_sql, quote_ident, quote_literal

FILE = "_source_file"
ALL_TABLES = "*"


@dataclass(frozen=True)
class Purges:
    """The purge list (bronze.purge_log): what ingests must never write again."""

    rules: pl.DataFrame  # table_name, column_name, value

    @classmethod
    def load(cls, session: Session) -> Purges:
        log = session.scan(PURGES, columns=["table_name", "column_name", "value"])
        return cls(session.con.sql(f"SELECT DISTINCT * FROM {log}").pl())

    def for_table(self, table: SourceTable) -> list[tuple[str, str]]:
        rules = self.rules.filter(pl.col("table_name").is_in([table.name, ALL_TABLES]))
        return [(c, v) for c, v in rules.select("column_name", "value").iter_rows()
                if c == FILE or c in table.column_names]

    def files(self, table: SourceTable) -> set[str]:
        return {v for c, v in self.for_table(table) if c == FILE}

    def apply(self, table: SourceTable, changes: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(rows to write, (_source_file, _commit_ts) of the rows dropped)."""
        rules = self.for_table(table)
        if not rules or changes.is_empty():
            return changes, changes.select("_source_file", "_commit_ts").clear()
        hit = pl.any_horizontal([_matches(table, c, v) for c, v in rules]).fill_null(False)  # NULL is no match
        dropped = changes.filter(hit)
        return (changes.filter(~hit) if len(dropped) else changes), dropped.select("_source_file", "_commit_ts")


def _matches(table: SourceTable, column: str, value: str) -> pl.Expr:
    """A landed text value equals the purged one as the column's type compares them."""
    if column != FILE and table.column(column).type in (PgType.BIGINT, PgType.INTEGER):
        return pl.col(column).str.strip_chars().cast(pl.Int64, strict=False) == int(value)
    return pl.col(column) == value


def purge(session: Session, *, column: str, value: str, reason: str, requested_by: str, run_id: str,
          at: datetime, table_name: str = ALL_TABLES) -> pl.DataFrame:
    """Delete the matching rows now; returns the audit rows written (one per table)."""
    if not reason.strip() or not requested_by.strip():
        raise ValueError("a purge needs a reason and who asked for it")
    tables = [t for t in SOURCE_TABLES if table_name in (ALL_TABLES, t.name)]
    if not tables:
        raise ValueError(f"no source table is named {table_name!r}")
    if column != FILE and not any(column in t.column_names for t in tables):
        raise ValueError(f"no table of {table_name!r} has a column {column!r}")
    purge_id = uuid.uuid4().hex[:12]
    audit = []
    for table in tables:
        if column != FILE and column not in table.column_names:
            continue
        bronze_rows, rejects = _purge_table(session, table, column, value, at)
        audit.append({"purge_id": purge_id, "requested_by": requested_by, "reason": reason, "purged_at": at,
                      "table_name": table.name, "column_name": column, "value": value,
                      "bronze_rows": bronze_rows, "rejects": rejects, "_run_id": run_id})
    # One row per table, also where nothing matched yet: the rule for every later ingest.
    rows = pl.DataFrame(audit, schema=polars_schema(PURGES.columns))
    session.replace(PURGES, rows, Scope.none())
    return rows


def _purge_table(session: Session, table: SourceTable, column: str, value: str, at: datetime) -> tuple[int, int]:
    con = session.con
    spec = bronze_spec(table)
    rows = session.scan(spec, Scope(files=frozenset({value})) if column == FILE else Scope(),
                        columns=["_source_file", "_source_row", "_commit_ts", *([] if column == FILE else [column])])
    match = "true" if column == FILE else _sql_match(table, column, value)
    hit = con.sql(f"SELECT _source_file, _source_row, CAST(_commit_ts AS DATE) AS day FROM {rows} WHERE {match}").pl()
    if not hit.is_empty():
        session.replace(spec, pl.DataFrame(schema=polars_schema(spec.columns)),
                        Scope(keys=hit.select("_source_file", "_source_row")))
    rejects = 0
    if column == FILE:
        gone = session.scan(REJECTS, Scope(files=frozenset({value})))
        rejects = con.execute(f"SELECT count(*) FROM {gone} WHERE table_name = {quote_literal(table.name)}").fetchall()[0][0]
        if rejects:
            session.replace(REJECTS, pl.DataFrame(schema=polars_schema(REJECTS.columns)), Scope(files=frozenset({value})))
    files = frozenset(hit["_source_file"].unique()) | (frozenset({value}) if column == FILE and rejects else frozenset())
    if files:
        _move_to_purged(session, table, files, hit, whole_file=column == FILE)
        events = pl.DataFrame({"table_name": [table.name] * len(files), "_source_file": sorted(files),
                               "action": ["purged"] * len(files), "event_at": [at] * len(files)})
        session.replace(FILE_EVENTS, events.with_columns(pl.col("event_at").cast(pl.Datetime("us", "UTC"))), Scope.none())
    return len(hit), rejects


def _sql_match(table: SourceTable, column: str, value: str) -> str:
    kind = table.column(column).type
    if kind in (PgType.BIGINT, PgType.INTEGER):
        return f"({parse_sql(quote_ident(column), kind)}) = {int(value)}"
    return f"{quote_ident(column)} = {quote_literal(value)}"


def _move_to_purged(session: Session, table: SourceTable, files: frozenset[str], hit: pl.DataFrame,
                    whole_file: bool) -> None:
    """The manifest's counts of those files: the purged records move to `purged`."""
    rows = session.con.sql(f"SELECT * FROM {session.scan(MANIFEST, Scope(files=files))} "
                           f"WHERE table_name = {quote_literal(table.name)}").pl()
    per_day = hit.group_by("_source_file", pl.col("day").alias("_partition_date")).len("n")
    rows = rows.join(per_day, on=["_source_file", "_partition_date"], how="left").with_columns(pl.col("n").fill_null(0))
    if whole_file:
        rows = rows.with_columns(pl.col("records").alias("purged"), pl.lit(0).alias("changes"), pl.lit(0).alias("rejects"))
    else:
        rows = rows.with_columns((pl.col("changes") - pl.col("n")).alias("changes"),
                                 (pl.col("purged") + pl.col("n")).alias("purged"))
    session.replace(MANIFEST, rows.drop("n"), Scope(files=files, keys=pl.DataFrame({"table_name": [table.name]})))
