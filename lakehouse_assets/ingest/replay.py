"""Replaying a table from the warehouse after its declaration changed (schema drift fixed).

Records rejected because they did not fit the declaration (a column the source gained) are
kept in `bronze.cdc_rejects` with their raw text. Once the declaration has the column, they
are read again from that text, not from the landing zone, which may have expired the files:
what now reads becomes bronze rows of its file (with its original row number), the rest stay
rejects. The files' other bronze rows stay as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import polars as pl

from lakehouse_assets.landing.csv_records import split_records
from lakehouse_assets.landing.files import FileBytes, LandingFile
from lakehouse_assets.landing.reader import LandedFile, TableRead, read_landed
from lakehouse_assets.schemas.tables import REJECTS
from lakehouse_assets.sources import SourceTable
from lakehouse_assets.storage.tables import Scope, Session
from lakehouse_assets.values import quote_literal

# Reasons a new declaration can answer; others (bad Op, timestamp, bytes, quoting) it cannot.
REPLAYABLE = ("schema drift", "wrong column count")


@dataclass(frozen=True)
class MemoryStore:
    """Landing bytes held in memory, for the reader."""

    data: dict[str, bytes]

    def read_bytes(self, file: LandingFile) -> bytes:
        return self.data[file.path]

    def list_files(self, folder: str):
        return [], []

    def describe(self) -> str:
        return "rejected records"


def replayable_rejects(session: Session, table: SourceTable) -> pl.DataFrame:
    rejects = session.scan(REJECTS)
    reasons = " OR ".join(f"starts_with(reason, {quote_literal(r)})" for r in REPLAYABLE)
    return session.con.sql(
        f"""SELECT * FROM {rejects} WHERE table_name = {quote_literal(table.name)}
            AND raw_text <> '' AND ({reasons}) ORDER BY _source_file, _source_row"""
    ).pl()


def read_rejected(table: SourceTable, rejects: pl.DataFrame, ingested_at: datetime) -> TableRead:
    """The rejected records read again with `table`'s declaration, per file in row order."""
    landed, rows, data, paths = [], [], {}, {}
    for (path,), group in rejects.group_by(["_source_file"], maintain_order=True):
        text = ("\n".join(group["raw_text"]) + "\n").encode()
        split = split_records(text)
        if split.n_records != len(group):  # a raw text that is not one record: keep as it is
            continue
        stand_in = LandingFile(path.removesuffix(".gz"), len(text))  # the bytes are not gzip
        data[stand_in.path] = text
        paths[stand_in.path] = path
        landed.append(LandedFile(stand_in, FileBytes(b"", "", None), split, False))
        rows.append(group["_source_row"])
    if not landed:
        return read_landed([], table, MemoryStore({}), ingested_at)
    read = read_landed(landed, table, MemoryStore(data), ingested_at)
    original = pl.concat(rows)

    def restore(frame: pl.DataFrame, position: pl.Expr) -> pl.DataFrame:
        return frame.with_columns(
            pl.col("_source_file").replace_strict(paths, return_dtype=pl.String),
            original.gather(position).alias("_source_row") if len(frame) else pl.col("_source_row"),
        )

    # Records were numbered 1.. in file order across the stand-ins: map back to the originals.
    offsets = _offsets(landed)
    changes = restore(read.changes, _position(read.changes, offsets))
    rejected = restore(read.rejects, _position(read.rejects, offsets))
    return TableRead(changes, rejected, read.manifest, read.ignored)


def _offsets(landed: list[LandedFile]) -> dict[str, int]:
    out, total = {}, 0
    for f in landed:
        out[f.file.path] = total
        total += f.split.n_records
    return out


def _position(frame: pl.DataFrame, offsets: dict[str, int]) -> pl.Series:
    if frame.is_empty():
        return pl.Series([], dtype=pl.Int64)
    start = frame["_source_file"].replace_strict(offsets, return_dtype=pl.Int64)
    return start + frame["_source_row"] - 1


def files_of(rejects: pl.DataFrame) -> frozenset[str]:
    return frozenset(rejects["_source_file"].unique().to_list())


def kept_rows(session: Session, spec, files: frozenset[str]) -> str:
    """The bronze rows those files have now (rewritten with the replayed ones)."""
    return session.scan(spec, Scope(files=files))
