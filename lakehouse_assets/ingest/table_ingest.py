"""Ingesting one source table's landing files into bronze, a batch of files at a time.

`TableIngest.frames()` is what the bronze step hands the warehouse: an iterator of change
frames, consumed once, so no more than one batch of files is in memory. As the batches go by
it collects what the ledger records about them: rejects, manifest rows, rows removed by a
purge, and the Pandera verdict on the rows written.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime

import polars as pl

from lakehouse_assets.checks.validation import Validation
from lakehouse_assets.ingest.ledger import Plan
from lakehouse_assets.ingest.manifest import manifest_by_day
from lakehouse_assets.ingest.purge import Purges
from lakehouse_assets.ingest.replay import read_rejected
from lakehouse_assets.landing.files import LandingStore
from lakehouse_assets.landing.reader import REJECT_SCHEMA, TableRead, read_batches
from lakehouse_assets.schemas.types import UTC_DATETIME
from lakehouse_assets.sources import SourceTable


@dataclass
class TableIngest:
    table: SourceTable
    plan: Plan
    store: LandingStore
    ingested_at: datetime
    run_id: str
    first_partition: date
    purges: Purges
    validation: Validation
    replay: pl.DataFrame | None = None  # rejects to read again (a changed declaration)
    kept: pl.DataFrame | None = None  # the replayed files' bronze rows, rewritten as they are
    replay_summary: pl.DataFrame | None = None  # the replayed files as the manifest knows them
    rejects: list[pl.DataFrame] = field(default_factory=list)
    manifest: list[pl.DataFrame] = field(default_factory=list)
    summaries: list[pl.DataFrame] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    changes: int = 0
    purged: int = 0

    @property
    def files(self) -> frozenset[str]:
        """The files whose rows this ingest replaces."""
        read = {f.path for f in self.plan.read}
        replayed = set() if self.replay is None else set(self.replay["_source_file"].unique())
        return frozenset(read | replayed)

    def frames(self) -> Iterator[pl.DataFrame]:
        for read in read_batches(self.store, self.table, self.plan.read, self.ingested_at, self.plan.landed):
            yield self._take(read)
        if self.replay is not None and not self.replay.is_empty():
            yield from self._replayed()

    def _take(self, read: TableRead, keep: pl.DataFrame | None = None) -> pl.DataFrame:
        read = too_early_to_rejects(read, self.first_partition)
        changes, purged = self.purges.apply(self.table, read.changes)
        everything = changes if keep is None else pl.concat([keep, changes], how="vertical_relaxed")
        self.rejects.append(read.rejects)
        self.summaries.append(read.manifest)
        self.manifest.append(manifest_by_day(
            TableRead(everything, read.rejects, read.manifest, []), purged, self.ingested_at, self.run_id,
            self.first_partition,
        ))
        self.notes += read.ignored
        self.changes += len(changes)
        self.purged += len(purged)
        self.validation.add(changes)
        return everything

    def _replayed(self) -> Iterator[pl.DataFrame]:
        """The replayed files: their kept rows, their rejects read again."""
        read = read_rejected(self.table, self.replay, self.ingested_at)
        files = self.replay.select("_source_file").unique()
        changes = pl.concat([self.kept.select("_source_file", "_commit_ts"), read.changes.select("_source_file", "_commit_ts")])
        span = changes.group_by("_source_file").agg(pl.col("_commit_ts").min().alias("min_commit_ts"),
                                                    pl.col("_commit_ts").max().alias("max_commit_ts"))
        summary = (self.replay_summary.join(files, on="_source_file").drop("min_commit_ts", "max_commit_ts")
                   .join(span, on="_source_file", how="left").select(self.replay_summary.columns))
        yield self._take(TableRead(read.changes, read.rejects, summary, read.ignored), keep=self.kept)


def too_early_to_rejects(read: TableRead, first_partition: date) -> TableRead:
    """A change committed before the first partition has no bronze partition: reject it,
    filed under the first partition, rather than lose it (early rejects are filed there too)."""
    rejects = read.rejects.with_columns(
        pl.max_horizontal("_partition_date", pl.lit(first_partition)).alias("_partition_date")
    )
    early = read.changes.filter(pl.col("_commit_ts").dt.date() < first_partition)
    if early.is_empty():
        return TableRead(read.changes, rejects, read.manifest, read.ignored)
    table_name = read.manifest["table_name"][0]
    moved = early.select(
        pl.lit(table_name).alias("table_name"),
        "_source_file",
        "_source_row",
        pl.format(
            "_dms_commit_ts {} is before the first partition ({}, LAKEHOUSE_PARTITIONS_START)",
            pl.col("_commit_ts").dt.strftime("%Y-%m-%d %H:%M:%S%.f"),
            pl.lit(first_partition.isoformat()),
        ).alias("reason"),
        pl.lit("").alias("raw_text"),
        "_commit_ts",
        pl.lit(first_partition).alias("_partition_date"),
        pl.col("_ingested_at").cast(UTC_DATETIME),
    ).cast(REJECT_SCHEMA)
    return TableRead(
        changes=read.changes.filter(pl.col("_commit_ts").dt.date() >= first_partition),
        rejects=pl.concat([rejects, moved]),
        manifest=read.manifest,
        ignored=read.ignored,
    )
