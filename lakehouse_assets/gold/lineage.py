"""Which gold days a changed silver row makes stale, derived from the gold declarations alone.

A silver step records, for every row it replaces, the old version and the new one (only the
columns gold reads, `read_columns`); where they differ, each gold table that reads the entity
is stale on the days its declaration says the row counts on (table.py: the business day, the
day of another date, the day of a referenced row, or every day from a date on, per grain).
The landing sensor runs the same function over the changes it foresees. Adding a gold table
never means editing either.
"""

from __future__ import annotations

from datetime import date, datetime

from lakehouse_assets.gold import GOLD_TABLES
from lakehouse_assets.gold.table import FromDateOf, GoldTable, OnBusinessDay, OnDateOf, OnDayOf, Reads
from lakehouse_assets.marks import GOLD, read_marks
from lakehouse_assets.schemas.tables import GOLD_PENDING, MANIFEST, silver_spec
from lakehouse_assets.sources import TABLES_BY_ENTITY
from lakehouse_assets.storage.tables import Scope, Session
from lakehouse_assets.values import quote_ident, quote_literal


def readers_of(entity: str) -> list[tuple[GoldTable, Reads]]:
    return [(g, r) for g in GOLD_TABLES for r in g.inputs if r.entity == entity]


def read_columns(entity: str) -> list[str]:
    """The columns of silver `entity` that any gold table reads or places rows by."""
    table = TABLES_BY_ENTITY[entity]
    names = set(table.primary_key) | {table.partition_column}
    for _, r in readers_of(entity):
        names |= set(r.columns)
        if isinstance(r.counts_on, OnDateOf):
            names.add(r.counts_on.column)
        elif isinstance(r.counts_on, OnDayOf):
            names.add(r.counts_on.column)
        elif isinstance(r.counts_on, FromDateOf):
            names |= set(r.counts_on.columns) | ({r.counts_on.grain_from} - {None})
    return [c for c in table.column_names if c in names]


def _day(expr: str) -> str:
    return f"CAST({expr} AS DATE)"


def stale_cells_sql(session: Session, entity: str, rows: str, last_day: dict[str, date | None],
                    covered: dict[str, tuple[date, date]] | None = None) -> str | None:
    """SQL of (asset, day, grain) rows: the gold cells the silver `rows` of `entity` count on.
    `last_day`: per gold table, the newest day it holds (a forward window stops there; later
    days are new days, computed whole). `covered`: per gold table, days (first, last) that
    this run computes whole anyway: no cell there."""
    covered = covered or {}
    table = TABLES_BY_ENTITY[entity]
    parts = []
    for gold, r in readers_of(entity):
        asset = quote_literal(gold.name)
        on = r.counts_on
        if isinstance(on, OnBusinessDay):
            parts.append(f"SELECT {asset}, {_day(quote_ident(table.partition_column))}, NULL FROM {rows}")
        elif isinstance(on, OnDateOf):
            parts.append(f"SELECT {asset}, {_day(quote_ident(on.column))}, NULL FROM {rows}")
        elif isinstance(on, OnDayOf):
            target = TABLES_BY_ENTITY[on.entity]
            key = target.primary_key[0]
            ref = session.scan(silver_spec(target), columns=[key, target.partition_column])
            parts.append(
                f"SELECT {asset}, {_day('t.' + quote_ident(target.partition_column))}, NULL "
                f"FROM {rows} r JOIN {ref} t ON t.{quote_ident(key)} = r.{quote_ident(on.column)}"
            )
        elif isinstance(on, FromDateOf):
            if last_day.get(gold.name) is None:
                continue  # nothing computed yet: every day of it is a new day
            first = "least(" + ", ".join(_day(quote_ident(c)) for c in on.columns) + ")"
            grain = quote_ident(on.grain_from) if on.grain_from else "NULL"
            end = f"DATE '{last_day[gold.name]}'"  # a window starting later has no day yet
            # Only the days outside what the run computes anyway: no series is spelled out
            # that would be thrown away (a full backfill covers every day).
            spans = [(first, end)]
            if gold.name in covered:
                a, b = (f"DATE '{d}'" for d in covered[gold.name])
                spans = [(first, f"least({end}, {a} - 1)"), (f"greatest({first}, {b} + 1)", end)]
            for lo, hi in spans:
                parts.append(
                    f"SELECT {asset}, CAST(unnest(generate_series({lo}, {hi}, INTERVAL 1 DAY)) AS DATE), "
                    f"{grain} FROM {rows} WHERE {first} IS NOT NULL AND {lo} <= {hi}"
                )
            continue
        if gold.name in covered:
            a, b = (f"DATE '{d}'" for d in covered[gold.name])
            parts[-1] = f"SELECT * FROM ({parts[-1]}) c(a, d, g) WHERE NOT d BETWEEN {a} AND {b}"
    if not parts:
        return None
    union = " UNION ALL ".join(f"({p})" for p in parts)
    return f"SELECT DISTINCT * FROM (SELECT * FROM ({union}) c(asset, day, grain) WHERE day IS NOT NULL)"


def reaches_forward(table: GoldTable) -> bool:
    """A table with a row for every day from a date on (segments, MRR)."""
    return any(isinstance(r.counts_on, FromDateOf) for r in table.inputs)


def newest_days(session: Session) -> dict[str, date | None]:
    """The newest day each gold table has been computed for. A window that reaches forward
    stops there: the days after it are new days, computed whole when the landing zone's data
    reaches them."""
    marks = read_marks(session)
    return {g.name: getattr(marks.get((g.name, GOLD)), "computed_through", None) for g in GOLD_TABLES}


def newest_commit_day(session: Session) -> date | None:
    """The newest day the landing zone's data reaches (the manifest's newest commit)."""
    rel = session.scan(MANIFEST, columns=["last_commit_ts"])
    newest = session.con.execute(f"SELECT max(last_commit_ts) FROM {rel}").fetchall()[0][0]
    return newest.date() if newest else None


def record_stale(session: Session, entity: str, old: str, new: str, reason: str,
                 at: datetime, covered: dict[str, tuple[date, date]] | None = None) -> int:
    """Record the gold cells stale because `old` silver rows became `new` (the same columns,
    `read_columns`): only rows that differ count. Returns how many cells."""
    if not readers_of(entity):
        return 0
    con = session.con
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _differ AS
        (SELECT * FROM {old} EXCEPT ALL SELECT * FROM {new})
        UNION ALL (SELECT * FROM {new} EXCEPT ALL SELECT * FROM {old})""")
    cells = stale_cells_sql(session, entity, "_differ", newest_days(session), covered)
    if cells is None:
        return 0
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _stale AS
        SELECT asset, day, CAST(grain AS BIGINT) AS grain, {quote_literal(reason)} AS reason,
               TIMESTAMPTZ '{at.isoformat()}' AS since FROM ({cells})""")
    count = con.execute("SELECT count(*) FROM _stale").fetchall()[0][0]
    if count:
        session.replace(GOLD_PENDING, "_stale", Scope.none())
    return count
