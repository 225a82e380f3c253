"""Silver from a frame of change records, through the product's SQL merge, without Dagster.

`merge_silver(changes, table)` does what a silver step does for a rebuild over every day:
the changes become `bronze.<table>`, `cdc.state.merge_changes` merges them into the key
state, `cdc.write_plan.plan_write` plans every day the state places a key on, and the
planned rows are written to the silver and quarantine tables and read back as stored.
All of it in a scratch DuckDB session in memory (the DuckDB backend of the warehouse).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb
import polars as pl

from lakehouse_assets.cdc.state import merge_changes
from lakehouse_assets.cdc.write_plan import DAYS, plan_write
from lakehouse_assets.landing.files import LocalLandingStore
from lakehouse_assets.landing.reader import read_table
from lakehouse_assets.schemas.tables import bronze_spec, key_state_spec, quarantine_spec, silver_spec
from lakehouse_assets.sources import SourceTable
from lakehouse_assets.storage.duckdb_warehouse import DuckDBSession, configure
from lakehouse_assets.storage.tables import Scope, Session

FIRST = date(2024, 1, 1)


@dataclass(frozen=True)
class Silver:
    valid: pl.DataFrame  # silver.<entity>, as stored
    quarantine: pl.DataFrame  # silver.<entity>_quarantine, as stored
    live_keys: int  # keys whose winner is not a delete (in silver or in quarantine)


def scratch_session() -> Session:
    con = duckdb.connect(":memory:")
    configure(con, "1GB", None)
    return DuckDBSession(con)


def merge_silver(changes: pl.DataFrame, table: SourceTable, first_partition: date = FIRST,
                 session: Session | None = None) -> Silver:
    """Silver and quarantine for these bronze rows (a frame of bronze's columns)."""
    own = session is None
    session = session or scratch_session()
    try:
        session.replace(bronze_spec(table), changes.select(list(bronze_spec(table).columns)), Scope())
        merge_changes(session, table, None, False, first_partition)
        state = session.scan(key_state_spec(table), columns=["_status", "_day"])
        days = frozenset(r[0] for r in session.con.execute(
            f"SELECT DISTINCT _day FROM {state} WHERE _status <> 'deleted' AND _day IS NOT NULL").fetchall())
        live = session.con.execute(f"SELECT count(*) FROM {state} WHERE _status <> 'deleted'").fetchall()[0][0]
        if days:
            write = plan_write(session, table, days, DAYS, first_partition)
            session.replace(silver_spec(table), write.valid, write.valid_scope)
            session.replace(quarantine_spec(table), write.quarantine, write.quarantine_scope)
        return Silver(_read(session, silver_spec(table)), _read(session, quarantine_spec(table)), live)
    finally:
        if own:
            session.close()


def _read(session: Session, spec) -> pl.DataFrame:
    return session.con.sql(f"SELECT * FROM {session.scan(spec)}").pl()


def silver_from_landing(root, table: SourceTable, ingested_at, first_partition: date = FIRST) -> Silver:
    """Read every landing file of `table` under `root` (no rejects allowed) and merge it."""
    read = read_table(LocalLandingStore(str(root)), table, ingested_at)
    assert read.rejects.is_empty(), read.rejects.to_dicts()
    return merge_silver(read.changes, table, first_partition)
