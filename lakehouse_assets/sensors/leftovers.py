"""What a tick asks a run for besides the new files' own impact: work earlier runs left.

- bronze changes no silver step has merged yet (a run that selected bronze only);
- keys whose winning change came from a file since replaced or purged;
- keys and gold cells made stale outside the days of the run that changed them (a backfill of
  a few days that changed what other days hold);
- tables whose declaration changed (a schema-drift fix): the table is replayed over its span.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import polars as pl
from dagster import AssetKey

from lakehouse_assets.gold import GOLD_TABLES
from lakehouse_assets.gold.lineage import newest_commit_day, newest_days, reaches_forward, readers_of
from lakehouse_assets.ingest.replay import read_rejected, replayable_rejects
from lakehouse_assets.landing.files import LandingFile, LandingStore
from lakehouse_assets.landing.reader import read_batches
from lakehouse_assets.marks import BRONZE, SILVER, fingerprint, read_marks
from lakehouse_assets.schemas.tables import FILE_EVENTS, GOLD_PENDING, MANIFEST, bronze_spec, key_state_spec
from lakehouse_assets.sensors.impact import BRONZE_LEDGER, Impact, bronze_key, foresee, silver_keys
from lakehouse_assets.sources import SourceTable
from lakehouse_assets.storage.tables import Scope, Session
from lakehouse_assets.values import quote_literal


def new_files_impact(look: Session, store: LandingStore, tables: tuple[SourceTable, ...],
                     new: dict[str, list[LandingFile]], now: datetime, first: date, last: date) -> Impact:
    impact = Impact()
    for table in tables:
        files = new.get(table.name)
        if not files:
            continue
        named = [date.fromisoformat(f.cdc_date) for f in files if f.cdc_date]
        for read in read_batches(store, table, files, now):
            impact.records_read += len(read.changes) + len(read.rejects)
            impact.add(BRONZE_LEDGER[0], read.rejects["_partition_date"].to_list())
            impact.add(BRONZE_LEDGER[1], [*read.changes["_commit_ts"].dt.date().to_list(),
                                          *read.rejects["_partition_date"].to_list(), *named])
            impact.update(foresee(look, table, read.changes.filter(pl.col("_commit_ts").dt.date() >= first), first))
        # The run reaches a file's name day (DMS may name a file after midnight), and the
        # tables that reach forward get that day too: a day a run writes is whole.
        impact.newest_commit = max([d for d in (impact.newest_commit, *named) if d is not None], default=None)
        impact.reasons.append(f"{len(files)} new files of {table.name}")
    return impact


def leftovers(look: Session, tables: tuple[SourceTable, ...], first: date, last: date) -> Impact:
    impact = Impact()
    marks = read_marks(look)
    con = look.con
    for table in tables:
        bronze, silver = marks.get((table.name, BRONZE)), marks.get((table.name, SILVER))
        if (bronze and bronze.fingerprint != fingerprint(table)) or (silver and silver.fingerprint != fingerprint(table, first)):
            impact.update(_replay(look, table, first, last))
            continue
        if bronze is None:
            continue  # nothing ingested yet
        since = silver.merged_through if silver else None
        unmerged = look.scan(bronze_spec(table), Scope(after=("_ingested_at", since)) if since else Scope())
        rows = con.sql(f"SELECT * EXCLUDE (_ingested_at) FROM {unmerged}").pl()
        if len(rows):
            found = foresee(look, table, rows, first)
            found.days.pop(bronze_key(table), None)  # bronze holds them already
            impact.update(found)
            impact.reasons.append(f"{len(rows)} bronze changes of {table.name} not merged into silver yet")
        impact.update(_pending_keys(look, table, since, first, last))
    impact.update(_pending_gold(look, last))
    return impact


def _pending_keys(look: Session, table: SourceTable, since: datetime | None, first: date, last: date) -> Impact:
    """Keys left pending by earlier runs, or whose winner's file was replaced or purged since:
    their winning rows, as the changes to foresee."""
    con = look.con
    state = look.scan(key_state_spec(table))
    events = look.scan(FILE_EVENTS, Scope(after=("event_at", since)) if since else Scope())
    # A key whose day is not a partition yet (a date in the future) waits for that partition.
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _left AS SELECT * FROM {state}
        WHERE (_pending AND coalesce(_day, _written_day) <= DATE '{last}')
           OR _source_file IN (SELECT _source_file FROM {events} WHERE table_name = {quote_literal(table.name)})""")
    count = con.execute("SELECT count(*) FROM _left").fetchall()[0][0]
    impact = Impact()
    if not count:
        return impact
    days = con.sql("SELECT _day AS d FROM _left UNION SELECT _written_day FROM _left").pl()
    for key in silver_keys(table):
        impact.add(key, days["d"].drop_nulls().to_list())
    files = frozenset(r[0] for r in con.execute("SELECT DISTINCT _source_file FROM _left").fetchall() if r[0])
    winners = look.scan(bronze_spec(table), Scope(files=files))
    rows = con.sql(f"""SELECT b.* EXCLUDE (_ingested_at) FROM {winners} b
        JOIN _left l ON b._source_file = l._source_file AND b._source_row = l._source_row""").pl()
    found = foresee(look, table, rows, first, keys=con.sql("SELECT _key FROM _left").pl())
    found.days.pop(bronze_key(table), None)
    impact.update(found)
    impact.reasons.append(f"{count} keys of {table.name} left to write")
    return impact


def new_days(look: Session, impact: Impact, reach: date | None, last: date) -> Impact:
    """Tables that reach forward (a row for every day: segments, MRR) get the days the landing
    zone's data now reaches and they do not have yet, whole, as a rebuild would."""
    found = Impact()
    reach = max([d for d in (reach, newest_commit_day(look)) if d is not None], default=None)
    if reach is None:
        return found
    newest = newest_days(look)
    for gold in GOLD_TABLES:
        if not reaches_forward(gold):
            continue
        start = newest[gold.name] + timedelta(days=1) if newest[gold.name] else min(
            (d for v in impact.days.values() for d in v), default=reach)
        days = [start + timedelta(days=i) for i in range((min(reach, last) - start).days + 1)]
        if days:
            found.add(AssetKey(["gold", gold.name]), days)
            found.reasons.append(f"gold.{gold.name} reaches {days[-1]}, {len(days)} new days")
    return found


def _pending_gold(look: Session, last: date) -> Impact:
    impact = Impact()
    pending = look.scan(GOLD_PENDING, columns=["asset", "day"])
    rows = look.con.execute(f"SELECT asset, list(DISTINCT day) FROM {pending} WHERE day <= DATE '{last}' "
                            "GROUP BY asset").fetchall()
    for asset, days in rows:
        impact.add(AssetKey(["gold", asset]), days)
        impact.reasons.append(f"{len(days)} days of gold.{asset} left stale")
    return impact


def _replay(look: Session, table: SourceTable, first: date, last: date) -> Impact:
    """A changed declaration: the table, what reads it, over its whole span."""
    con = look.con
    manifest = look.scan(MANIFEST, columns=["table_name", "_partition_date"])
    state = look.scan(key_state_spec(table), columns=["_day", "_written_day"])
    lo, hi = con.execute(f"""SELECT min(d), max(d) FROM (
        SELECT _partition_date AS d FROM {manifest} WHERE table_name = {quote_literal(table.name)}
        UNION ALL SELECT _day FROM {state} UNION ALL SELECT _written_day FROM {state})""").fetchall()[0]
    impact = Impact()
    if lo is None:
        return impact
    span = [date.fromordinal(o) for o in range(max(lo, first).toordinal(), min(max(hi, lo), last).toordinal() + 1)]
    for key in [bronze_key(table), *BRONZE_LEDGER, *silver_keys(table)]:
        impact.add(key, span)
    for gold, _ in readers_of(table.entity):
        impact.add(AssetKey(["gold", gold.name]), span)
    # The rejected records the new declaration reads: their days too (a drifted file's records
    # had no readable commit time until now).
    rejects = replayable_rejects(look, table)
    if len(rejects):
        impact.update(foresee(look, table, read_rejected(table, rejects, datetime.now(timezone.utc)).changes, first))
    impact.reasons.append(f"the declaration of {table.name} changed: it is replayed from bronze")
    return impact
