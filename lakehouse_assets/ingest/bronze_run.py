"""One bronze step: for each selected table, what to read (the ledger's plan), the ingest, and
what the ledger records afterwards (rejects, manifest rows, files seen, replaced or gone)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import polars as pl

from lakehouse_assets.ingest.ledger import Plan, content_sha, ingested_files, plan_table
from lakehouse_assets.ingest.manifest import MANIFEST_SCHEMA
from lakehouse_assets.ingest.purge import Purges
from lakehouse_assets.ingest.replay import replayable_rejects
from lakehouse_assets.ingest.table_ingest import TableIngest
from lakehouse_assets.landing.files import LandingStore
from lakehouse_assets.landing.reader import FILE_SUMMARY_SCHEMA, REJECT_SCHEMA
from lakehouse_assets.marks import BRONZE, fingerprint, read_marks, write_mark
from lakehouse_assets.schemas.tables import FILE_EVENTS, MANIFEST, bronze_spec
from lakehouse_assets.schemas.types import UTC_DATETIME
from lakehouse_assets.sources import SourceTable
from lakehouse_assets.storage.tables import Scope, Session
from lakehouse_assets.values import quote_literal


@dataclass
class BronzeRun:
    session: Session
    store: LandingStore
    tables: tuple[SourceTable, ...]
    selected: list[SourceTable]
    ingested_at: datetime
    run_id: str
    first_partition: date
    reread_days: frozenset[date] | None  # None: only what is new (the landing sensor's runs)
    landed_before: datetime | None
    settle_seconds: float
    log: object
    ingests: list[TableIngest] = field(default_factory=list)
    plans: dict[str, Plan] = field(default_factory=dict)
    replayed: list[str] = field(default_factory=list)  # tables whose declaration changed

    def __post_init__(self) -> None:
        self.ingested = ingested_files(self.session)
        self.marks = read_marks(self.session)
        self.purges = Purges.load(self.session)

    def start(self, table: SourceTable, validation) -> TableIngest:
        files, ignored = self.store.list_files(table.landing_folder)
        plan = plan_table(table, files, self.ingested.get(table.name, {}), content_sha(self.store),
                          reread_days=self.reread_days, now=self.ingested_at,
                          settle_seconds=self.settle_seconds, landed_before=self.landed_before)
        purged = self.purges.files(table)
        plan.read = [f for f in plan.read if f.path not in purged]
        self.plans[table.name] = plan
        ingest = TableIngest(table, plan, self.store, self.ingested_at, self.run_id, self.first_partition,
                             self.purges, validation)
        mark = self.marks.get((table.name, BRONZE))
        if mark is not None and mark.fingerprint != fingerprint(table):
            self.replayed.append(table.name)
            self._replay(ingest)
        self._record_replaced(table, plan)
        self._log_plan(table, plan, ignored, len(purged & {f.path for f in files}))
        self.ingests.append(ingest)
        return ingest

    def _replay(self, ingest: TableIngest) -> None:
        """The declaration changed: its rejects are read again, from the warehouse."""
        rejects = replayable_rejects(self.session, ingest.table)
        rejects = rejects.filter(~pl.col("_source_file").is_in([f.path for f in ingest.plan.read]))
        files = frozenset(rejects["_source_file"].unique())
        if not files:
            return
        kept = self.session.scan(bronze_spec(ingest.table), Scope(files=files))
        ingest.kept = self.session.con.sql(f"SELECT * FROM {kept}").pl()
        ingest.replay = rejects
        ingest.replay_summary = self._summaries(ingest.table, files)
        self.log.info(f"{ingest.table.name}: its declaration changed; reading {len(rejects)} rejected records "
                      f"of {len(files)} files again from bronze.cdc_rejects")

    def _summaries(self, table: SourceTable, files: frozenset[str]) -> pl.DataFrame:
        rows = self.session.scan(MANIFEST, Scope(files=files))
        expected = len(table.columns) + 3 + len(table.trailing_columns)
        return self.session.con.sql(f"""
            SELECT table_name, _source_file, any_value(size_bytes) AS size_bytes, any_value(etag) AS etag,
                   any_value(sha256) AS sha256, any_value(records_in_file) AS records, 0 AS changes, 0 AS rejects,
                   min(first_commit_ts) AS min_commit_ts, max(last_commit_ts) AS max_commit_ts,
                   {expected} AS fields_found, {expected} AS fields_expected, any_value(note) AS note
            FROM {rows} WHERE table_name = {quote_literal(table.name)} GROUP BY ALL""").pl().cast(FILE_SUMMARY_SCHEMA)

    def _record_replaced(self, table: SourceTable, plan: Plan) -> None:
        """Files whose content changed: recorded before their rows are replaced, so that silver
        merges again the keys whose winning change came from them."""
        if not plan.replaced:
            return
        events = pl.DataFrame({"table_name": table.name, "_source_file": sorted(plan.replaced), "action": "replaced",
                               "event_at": self.ingested_at}).with_columns(pl.col("event_at").cast(UTC_DATETIME))
        self.session.replace(FILE_EVENTS, events, Scope.none())

    def _log_plan(self, table: SourceTable, plan: Plan, ignored: list[str], purged_files: int) -> None:
        new = len(plan.read) - len(plan.replaced)
        parts = [f"{len(plan.read)} files to read ({len(plan.replaced)} changed since read)" if plan.read
                 else "nothing new to read", f"{len(plan.listed)} in the zone"]
        if plan.waiting:
            parts.append(f"{len(plan.waiting)} waiting to settle or for the next tick")
        if purged_files:
            parts.append(f"{purged_files} purged files skipped")
        self.log.info(f"{table.name}: " + "; ".join(parts) + f" ({new} new or re-read)")
        if plan.kept_gone:
            self.log.warning(
                f"{table.name}: {len(plan.kept_gone)} ingested files of this run's days are gone from the "
                f"landing zone (e.g. {plan.kept_gone[0]}); their bronze rows are kept, not read again")
        for note in ignored:
            self.log.warning(f"ignored in the landing zone: {note}")

    def scope(self, ingest: TableIngest) -> Scope:
        return Scope(files=ingest.files)

    def metadata(self, ingest: TableIngest) -> dict:
        plan = ingest.plan
        return {"files_read": len(plan.read), "files_changed_since_read": len(plan.replaced),
                "files_waiting": len(plan.waiting), "files_gone_from_zone": len(plan.gone),
                "files_gone_rows_kept": len(plan.kept_gone)}

    def finish(self, ingest: TableIngest) -> None:
        table = ingest.table
        rejects = sum(len(r) for r in ingest.rejects)
        self.log.info(f"{table.name}: {len(ingest.files)} files -> {ingest.changes} changes, {rejects} rejects"
                      + (f", {ingest.purged} purged" if ingest.purged else ""))
        for note in ingest.notes:
            self.log.warning(f"{table.name}: {note}")
        for summary in ingest.summaries:
            for row in summary.filter(pl.col("rejects") > 0).iter_rows(named=True):
                self.log.warning(f"{row['_source_file']}: {row['rejects']} of {row['records']} records rejected")
                if (row["fields_found"] or 0) > row["fields_expected"]:
                    self.log.error(
                        f"schema drift in {table.name}: {row['_source_file']} has {row['fields_found']} fields per "
                        f"record, the declaration {row['fields_expected']}; its records are in bronze.cdc_rejects "
                        "until the declaration in sources.py gains the new column(s)")
        write_mark(self.session, table.name, BRONZE, fingerprint(table))

    def rejects(self) -> tuple[pl.DataFrame, Scope]:
        frames = [r for i in self.ingests for r in i.rejects]
        rejects = pl.concat(frames) if frames else pl.DataFrame(schema=REJECT_SCHEMA)
        return rejects, Scope(files=frozenset(f for i in self.ingests for f in i.files))

    def manifest(self) -> tuple[pl.DataFrame, Scope, dict]:
        """Rows of the files read; the rows of every other file the zone has now, with its
        last sighting; and of a redeclared table, every row, with the layout now declared."""
        written = [m for i in self.ingests for m in i.manifest]
        read = frozenset(f for i in self.ingests for f in i.files)
        listed = {f.path: f.etag for p in self.plans.values() for f in p.listed if f.path not in read}
        redeclared = [t for t in self.replayed]
        refresh = self.session.scan(MANIFEST, Scope(files=frozenset(listed)))
        names = ", ".join(quote_literal(t) for t in redeclared) or "NULL"
        others = self.session.scan(MANIFEST)
        seen = self.session.con.sql(f"""SELECT * FROM {refresh} UNION ALL BY NAME
            SELECT * FROM {others} WHERE table_name IN ({names})""").pl().unique()
        seen = seen.filter(~pl.col("_source_file").is_in(list(read)))
        expected = {t.name: len(t.columns) + 3 + len(t.trailing_columns) for t in self.tables}
        seen = seen.with_columns(
            pl.col("_source_file").replace_strict(listed, default=pl.col("etag"), return_dtype=pl.String).alias("etag"),
            pl.when(pl.col("_source_file").is_in(list(listed))).then(pl.lit(self.ingested_at, UTC_DATETIME))
            .otherwise(pl.col("last_seen_at")).alias("last_seen_at"),
            # the declaration in force (it changes when a table gains a column)
            pl.col("table_name").replace_strict(expected, default=pl.col("fields_expected"),
                                                return_dtype=pl.Int64).alias("fields_expected"),
        )
        rows = pl.concat([*written, seen.select(list(MANIFEST_SCHEMA))]) if written or len(seen) else \
            pl.DataFrame(schema=MANIFEST_SCHEMA)
        gone = sum(len(p.gone) for p in self.plans.values())
        summary = {"files_written": len(read), "files_seen": len(listed) + len(read), "files_gone_from_zone": gone}
        return rows, Scope(files=read | frozenset(seen["_source_file"].unique())), summary

    def done(self) -> None:
        pass
