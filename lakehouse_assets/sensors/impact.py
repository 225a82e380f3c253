"""Which partitions a set of changes makes stale, per asset, foreseen from the warehouse's own
state before a run is requested (the run then writes exactly what it finds changed).

- bronze: the commit dates of the changes (and the days their rejects and manifest rows go to);
- silver and quarantine: the new versions' business dates, and the partitions the key state
  says silver holds those keys in now (an update may move a key; a delete empties its day);
- gold: what the gold declarations say the old and new versions count on (gold/lineage.py),
  the old versions read from silver by key, the new ones parsed from the changes.

Everything is read by key or by file, never the landing zone's history: a tick costs what the
new files cost.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

import polars as pl
from dagster import AssetKey

from lakehouse_assets.cdc.keys import key_sql, typed_key_sql
from lakehouse_assets.cdc.typing import business_date_sql
from lakehouse_assets.gold.lineage import newest_days, read_columns, readers_of, stale_cells_sql
from lakehouse_assets.schemas.tables import key_state_spec, silver_spec
from lakehouse_assets.schemas.types import duckdb_type
from lakehouse_assets.sources import SourceTable
from lakehouse_assets.storage.scope_sql import temp_name
from lakehouse_assets.storage.tables import Scope, Session
from lakehouse_assets.values import parse_sql, quote_ident, quote_literal, register

BRONZE_LEDGER = (AssetKey(["bronze", "cdc_rejects"]), AssetKey(["bronze", "landing_manifest"]))


def bronze_key(table: SourceTable) -> AssetKey:
    return AssetKey(["bronze", table.name])


def silver_keys(table: SourceTable) -> list[AssetKey]:
    return [AssetKey(["silver", table.entity]), AssetKey(["silver", f"{table.entity}_quarantine"])]


@dataclass
class Impact:
    """Stale days per asset, with why."""

    days: dict[AssetKey, set[date]] = field(default_factory=lambda: defaultdict(set))
    reasons: list[str] = field(default_factory=list)
    newest_commit: date | None = None  # the newest day the new data reaches: commits, CDC file names
    records_read: int = 0  # landing records the tick read (its work follows the new files)

    def add(self, key: AssetKey, days) -> None:
        self.days[key].update(d for d in days if d is not None)

    def update(self, other: Impact) -> None:
        for key, days in other.days.items():
            self.add(key, days)
        self.reasons += other.reasons
        newest = [d for d in (self.newest_commit, other.newest_commit) if d is not None]
        self.newest_commit = max(newest, default=None)
        self.records_read += other.records_read

    def keys(self) -> list[AssetKey]:
        return sorted((k for k, v in self.days.items() if v), key=lambda k: k.to_user_string())

    def span(self, first: date, last: date) -> tuple[date, date] | None:
        """One partition range covering every stale day that is a partition. (A business date
        before the first partition is filed under it; one after the last, e.g. a date far in
        the future, has no partition until it exists: no run can write it yet.)"""
        days = [max(d, first) for v in self.days.values() for d in v if d <= last]
        return (min(days), max(days)) if days else None


def _dates(frame: pl.DataFrame, column: str) -> set[date]:
    return set(frame[column].drop_nulls().to_list()) if len(frame) else set()


def foresee(look: Session, table: SourceTable, changes: pl.DataFrame, first_partition: date,
            keys: pl.DataFrame | None = None) -> Impact:
    """The stale days of every asset if `changes` (bronze-shaped rows, landed text) were merged;
    `keys` (`_key`) are more keys whose current versions change (their rows purged, say)."""
    impact = Impact()
    if changes.is_empty() and (keys is None or keys.is_empty()):
        return impact
    con = look.con
    rows = temp_name("foreseen")
    register(con, rows, changes)
    try:
        commits = _dates(changes.select(pl.col("_commit_ts").dt.date().alias("d")), "d")
        impact.add(bronze_key(table), commits)
        impact.newest_commit = max(commits, default=None)
        # Keys, their new business dates, and where the key state says silver holds them.
        start = quote_literal(first_partition.isoformat())
        new = con.sql(f"""SELECT DISTINCT {key_sql(table)} AS _key,
                greatest(coalesce({business_date_sql(table)}, CAST(_commit_ts AS DATE)), DATE {start}) AS d
            FROM {rows}""").pl()
        every = pl.concat([new.select("_key"), *([keys.select("_key")] if keys is not None else [])]).unique()
        state = look.scan(key_state_spec(table), Scope(keys=every), ["_key", "_written_day", "_day"])
        held = con.sql(f"SELECT _written_day AS d FROM {state} UNION SELECT _day FROM {state}").pl()
        for key in silver_keys(table):
            impact.add(key, _dates(new, "d") | _dates(held, "d"))
        _foresee_gold(look, table, rows, every, impact)
    finally:
        con.unregister(rows)
    return impact


def _foresee_gold(look: Session, table: SourceTable, rows: str, keys: pl.DataFrame, impact: Impact) -> None:
    if not readers_of(table.entity):
        return
    con = look.con
    columns = read_columns(table.entity)
    parsed = ", ".join(f"CAST({parse_sql(quote_ident(c), table.column(c).type)} AS "
                       f"{duckdb_type(table.column(c).type)}) AS {quote_ident(c)}" for c in columns)
    listed = temp_name("keys")
    register(con, listed, keys)
    typed_keys = con.sql(f"SELECT DISTINCT {', '.join(typed_key_sql(table))} FROM {listed}").pl().drop_nulls()
    con.unregister(listed)
    old = look.scan(silver_spec(table), Scope(keys=typed_keys), columns)
    versions = temp_name("versions")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {versions} AS SELECT {parsed} FROM {rows} "
                f"UNION ALL SELECT * FROM {old}")
    cells = stale_cells_sql(look, table.entity, versions, newest_days(look))
    if cells is None:
        return
    for asset, d in con.execute(f"SELECT DISTINCT asset, day FROM ({cells})").fetchall():
        impact.add(AssetKey(["gold", asset]), [d])
