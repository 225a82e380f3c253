"""The key state of a source table: new changes merged into it, as `APPLY CHANGES` does.

`state.<entity>_keys` holds, for every key ever seen, the change that wins for it (a
delete stays as a tombstone, so a late, older change never brings the key back), the status
and partition the winner gives it, and what silver holds for it now. Merging is exact and
incremental: the new winner of a key is the later of its stored winner and its new changes,
in the contract's order, so late, out-of-order and re-delivered changes resolve as a rebuild
from scratch would. Keys whose stored winner came from a file whose rows were since replaced
or purged are merged again from every change bronze still holds for them. A changed
declaration merges every key again (`rebuild`).

All of it is SQL in the session's DuckDB, over temp tables that spill beyond its memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from lakehouse_assets.cdc.keys import key_sql, order_sql
from lakehouse_assets.cdc.typing import typed_select_sql
from lakehouse_assets.schemas.tables import FILE_EVENTS, bronze_spec, key_state_spec
from lakehouse_assets.sources import SourceTable
from lakehouse_assets.storage.tables import Scope, Session
from lakehouse_assets.values import quote_literal

WINNER = ("_op", "_commit_ts", "_seq", "_source_file", "_source_row")
_W = ", ".join(WINNER)


@dataclass(frozen=True)
class Merge:
    changes: int  # new change records merged
    inserted: int  # keys seen for the first time (and not deleted)
    updated: int  # keys whose winning change is another one now
    deleted: int  # keys whose winner is now a delete (or that bronze no longer holds)
    quarantined: int  # of the changed keys, those whose winner fails a rule
    merged_through: datetime | None  # the newest bronze ingestion merged


def merge_changes(session: Session, table: SourceTable, since: datetime | None, rebuild: bool,
                  first_partition: date) -> Merge:
    """Merge bronze changes ingested after `since` (all of them on a rebuild) into the key
    state. Leaves `_changed` (winner per changed key) and `_typed` (their typed rows) as temp
    tables for the caller."""
    con = session.con
    state = session.scan(key_state_spec(table))
    bronze = bronze_spec(table)
    new = session.scan(bronze, Scope() if rebuild or since is None else Scope(after=("_ingested_at", since)))
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _new AS
        SELECT {key_sql(table)} AS _key, {_W}, _ingested_at FROM {new}""")
    changes, merged_through = con.execute("SELECT count(*), max(_ingested_at) FROM _new").fetchall()[0]
    events_through = _keys_to_redo(session, table, state, since, rebuild)
    merged_through = max([t for t in (merged_through, events_through) if t is not None], default=None)
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _candidates AS
        SELECT _key, {_W} FROM _new
        UNION ALL
        SELECT _key, {_W} FROM {state}
        WHERE _key IN (SELECT _key FROM _new) AND _key NOT IN (SELECT _key FROM _redo)
          AND _source_file IS NOT NULL""")
    _winners(con)
    # A key to redo with no change left in bronze (all purged) is absent from now on.
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _changed AS
        SELECT w._key, w._op, w._commit_ts, w._seq, w._source_file, w._source_row,
               s._status AS _old_status, s._written_status, s._written_day
        FROM (SELECT * FROM _won
              UNION ALL
              SELECT _key, NULL, NULL, NULL, NULL, NULL FROM _redo WHERE _key NOT IN (SELECT _key FROM _won)) w
        LEFT JOIN {state} s USING (_key)
        WHERE s._key IS NULL OR w._key IN (SELECT _key FROM _redo)
           OR s._source_file IS DISTINCT FROM w._source_file OR s._source_row IS DISTINCT FROM w._source_row""")
    type_winners(session, table, "_changed", first_partition, into="_typed")
    con.execute("""CREATE OR REPLACE TEMP TABLE _new_state AS
        SELECT c._key, c._op, c._commit_ts, c._seq, c._source_file, c._source_row,
          CASE WHEN c._source_file IS NULL OR c._op = 'D' THEN 'deleted'
               WHEN t._dq_reason IS NULL THEN 'valid' ELSE 'quarantine' END AS _status,
          CASE WHEN c._source_file IS NULL OR c._op = 'D' THEN NULL ELSE t._day END AS _day,
          c._written_status, c._written_day, true AS _pending
        FROM _changed c LEFT JOIN _typed t USING (_key)""")
    inserted, updated, deleted, quarantined = con.execute("""
        SELECT count(*) FILTER (WHERE c._old_status IS NULL AND n._status <> 'deleted'),
               count(*) FILTER (WHERE c._old_status IS NOT NULL AND n._status <> 'deleted'),
               count(*) FILTER (WHERE n._status = 'deleted' AND c._old_status IS DISTINCT FROM 'deleted'),
               count(*) FILTER (WHERE n._status = 'quarantine')
        FROM _new_state n JOIN _changed c USING (_key)""").fetchall()[0]
    save_state(session, table, "_new_state", everything=rebuild or since is None)
    return Merge(changes, inserted, updated, deleted, quarantined, merged_through)


def _keys_to_redo(session: Session, table: SourceTable, state: str, since: datetime | None,
                  rebuild: bool) -> datetime | None:
    """`_redo`: keys merged again from all of bronze, and (into `_new`) their changes. Returns
    the time of the newest file event taken into account."""
    con = session.con
    events = session.scan(FILE_EVENTS, Scope(after=("event_at", since)) if since else Scope())
    mine = f"(SELECT * FROM {events} WHERE table_name = {quote_literal(table.name)})"
    newest = con.execute(f"SELECT max(event_at) FROM {mine}").fetchall()[0][0]
    if rebuild:
        con.execute(f"CREATE OR REPLACE TEMP TABLE _redo AS SELECT _key FROM {state}")
        return newest
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _redo AS
        SELECT _key FROM {state} WHERE _source_file IN (SELECT _source_file FROM {mine})""")
    if con.execute("SELECT count(*) FROM _redo").fetchall()[0][0]:
        every = session.scan(bronze_spec(table))
        con.execute(f"""INSERT INTO _new
            SELECT * FROM (SELECT {key_sql(table)} AS _key, {_W}, _ingested_at FROM {every})
            WHERE _key IN (SELECT _key FROM _redo)
              AND (_source_file, _source_row) NOT IN (SELECT _source_file, _source_row FROM _new)""")
    return newest


def _winners(con) -> None:
    """`_won`: the last change of each candidate key. Most keys have one candidate: found by
    counting; only the others are ordered (an aggregate over every row's order would hold
    gigabytes for millions of keys)."""
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _won AS
        WITH n AS (SELECT _key, count(*) AS n FROM _candidates GROUP BY _key)
        SELECT _key, {_W} FROM _candidates SEMI JOIN (SELECT _key FROM n WHERE n = 1) USING (_key)
        UNION ALL
        SELECT _key, w.* FROM (
          SELECT _key, arg_max(struct_pack({_W}), {order_sql()}) AS w
          FROM _candidates SEMI JOIN (SELECT _key FROM n WHERE n > 1) USING (_key)
          GROUP BY _key)""")


def type_winners(session: Session, table: SourceTable, winners: str, first_partition: date, into: str) -> None:
    """`into`: the landed row of each winner in `winners` (a relation with _key and the
    winner's file and row; deletes and absent keys skipped), typed, with `_dq_reason`."""
    con = session.con
    files = [r[0] for r in con.execute(
        f"SELECT DISTINCT _source_file FROM {winners} WHERE _source_file IS NOT NULL AND _op <> 'D'").fetchall()]
    rows = session.scan(bronze_spec(table), Scope(files=frozenset(files)))
    con.execute(f"""CREATE OR REPLACE TEMP TABLE {into} AS
        {typed_select_sql(table, f'''(SELECT w._key, b.* FROM {rows} b
            JOIN {winners} w ON b._source_file = w._source_file AND b._source_row = w._source_row
            WHERE w._op <> 'D')''', first_partition)}""")


def save_state(session: Session, table: SourceTable, rows: str, everything: bool = False) -> None:
    """Replace the state of the keys in `rows` (of every key: `everything`)."""
    spec = key_state_spec(table)
    if everything:
        session.replace(spec, rows, Scope())
        return
    # The keys stay in DuckDB: a backfill may rewrite millions of them.
    session.con.execute(f"CREATE OR REPLACE TEMP TABLE _state_keys AS SELECT _key FROM {rows}")
    if session.con.execute("SELECT count(*) FROM _state_keys").fetchall()[0][0]:
        session.replace(spec, rows, Scope(keys="_state_keys"))


