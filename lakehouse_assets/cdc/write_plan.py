"""What a silver step writes for its run's days, from the key state.

- A run of the landing sensor ("changes") writes the keys whose winner changed and whose old
  and new partitions both lie in the run's days: their rows are replaced key by key.
- Any other run ("days": a backfill from the UI or the command line, the daily schedule)
  writes its days whole: every key the state places on them.

Either way the state then records what silver holds. A key whose change reaches a day outside
the run stays pending: the landing sensor requests a run for it, with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from lakehouse_assets.cdc.keys import typed_key_sql
from lakehouse_assets.cdc.state import save_state, type_winners
from lakehouse_assets.cdc.typing import typed_name
from lakehouse_assets.schemas.tables import key_state_spec
from lakehouse_assets.sources import SourceTable
from lakehouse_assets.storage.tables import Scope, Session
from lakehouse_assets.values import quote_ident

CHANGES, DAYS = "changes", "days"


@dataclass(frozen=True)
class SilverWrite:
    valid: str  # relation: silver rows to write
    quarantine: str  # relation: quarantine rows to write
    valid_scope: Scope
    quarantine_scope: Scope
    keys: int  # keys written


def days_values(days: frozenset[date]) -> str:
    return "(SELECT CAST(d AS DATE) AS d FROM (VALUES " + ", ".join(f"('{d}')" for d in sorted(days)) + ") v(d))"


def plan_write(session: Session, table: SourceTable, days: frozenset[date], mode: str, first_partition: date) -> SilverWrite:
    con = session.con
    state = session.scan(key_state_spec(table))
    in_days = f"IN (SELECT d FROM {days_values(days)})"
    if mode == CHANGES:
        where = f"_pending AND (_day IS NULL OR _day {in_days}) AND (_written_day IS NULL OR _written_day {in_days})"
    else:
        # A key deleted before silver ever held it has no day: whichever run sees it records it
        # (else it stays pending and the sensor asks a run for nothing after every backfill).
        where = (f"(_status <> 'deleted' AND _day {in_days}) OR _written_day {in_days}"
                 " OR (_pending AND _status = 'deleted' AND _written_day IS NULL)")
    con.execute(f"CREATE OR REPLACE TEMP TABLE _write AS SELECT * FROM {state} WHERE {where}")
    con.execute("""CREATE OR REPLACE TEMP TABLE _untyped AS SELECT * FROM _write
                   WHERE _status <> 'deleted' AND _key NOT IN (SELECT _key FROM _typed)""")
    type_winners(session, table, "_untyped", first_partition, into="_typed_more")
    typed = ", ".join(f"{typed_name(c)} AS {quote_ident(c.name)}" for c in table.columns)
    landed = ", ".join(quote_ident(c) for c in [*table.column_names, *table.trailing_columns])
    con.execute(f"""CREATE OR REPLACE TEMP VIEW _rows AS
        SELECT w._status, w._day AS __day, t.* FROM _write w
        JOIN (SELECT * FROM _typed UNION ALL BY NAME SELECT * FROM _typed_more) t USING (_key)
        WHERE w._status <> 'deleted' AND w._day {in_days}""")
    con.execute(f"""CREATE OR REPLACE TEMP VIEW _silver_rows AS
        SELECT {typed}, _commit_ts, _source_file FROM _rows WHERE _status = 'valid'""")
    con.execute(f"""CREATE OR REPLACE TEMP VIEW _quarantine_rows AS
        SELECT {landed}, _op, _commit_ts, _seq, _source_file, _source_row, _dq_reason,
               __day AS _partition_date, _key FROM _rows WHERE _status = 'quarantine'""")
    if mode == CHANGES:
        keys = con.sql(f"SELECT {', '.join(typed_key_sql(table))} FROM _write").pl().drop_nulls()
        valid_scope = Scope(days=days, keys=keys)
        quarantine_scope = Scope(days=days, keys=con.sql("SELECT _key FROM _write").pl())
    else:
        valid_scope = quarantine_scope = Scope(days=days)
    count = con.execute("SELECT count(*) FROM _write").fetchall()[0][0]
    return SilverWrite("_silver_rows", "_quarantine_rows", valid_scope, quarantine_scope, count)


def record_written(session: Session, table: SourceTable, days: frozenset[date]) -> None:
    """After the write: what silver holds now for each key written; a key whose new day lies
    outside the run stays pending."""
    in_days = f"IN (SELECT d FROM {days_values(days)})"
    session.con.execute(f"""CREATE OR REPLACE TEMP TABLE _written AS
        SELECT _key, _op, _commit_ts, _seq, _source_file, _source_row, _status, _day,
          CASE WHEN _status <> 'deleted' AND _day {in_days} THEN _status END AS _written_status,
          CASE WHEN _status <> 'deleted' AND _day {in_days} THEN _day END AS _written_day,
          _status <> 'deleted' AND NOT coalesce(_day {in_days}, false) AS _pending
        FROM _write""")
    save_state(session, table, "_written")


def pending_days(session: Session, table: SourceTable) -> pl.DataFrame:
    """Days silver still has to be written for (a key's old or new partition)."""
    state = session.scan(key_state_spec(table), columns=["_pending", "_day", "_written_day"])
    return session.con.sql(f"""
        SELECT DISTINCT d FROM (SELECT _day AS d FROM {state} WHERE _pending
                                UNION ALL SELECT _written_day FROM {state} WHERE _pending)
        WHERE d IS NOT NULL ORDER BY d""").pl()
