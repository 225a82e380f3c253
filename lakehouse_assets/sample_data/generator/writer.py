"""A table's records as DMS files: LOAD files of at most `LOAD_FILE_ROWS` records, CDC files
closed about every two hours (named by time, every `gzip_every`th gzipped, reproducibly), and
a few dirty records for the silver layer to quarantine. Also the contract order of a table
folder's landing files, which overwrite and the CDC drop read.
"""

from __future__ import annotations

import gzip
import io
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl

from lakehouse_assets.landing.files import CDC_NAME, LOAD_NAME
from lakehouse_assets.sample_data.generator.context import (
    DAY,
    EPOCH,
    LOAD_MINUTES,
    MIN,
    NULL,
    SEC,
    _Ctx,
)
from lakehouse_assets.sample_data.generator.records import _SEQ, _csv_frame, _text_expr
from lakehouse_assets.sample_data.generator.summary import TableSummary
from lakehouse_assets.sample_data.generator.versions import _Parts
from lakehouse_assets.sources import SOURCE_TABLES, SourceTable

LOAD_FILE_ROWS = 200_000  # DMS splits a big full load into LOAD00000001, LOAD00000002, ...
CDC_FILE_MINUTES = 120  # about how often DMS closes a CDC file per table

# Dirty final versions the silver layer must quarantine: (column, bad values as CSV text).
_DIRTY: dict[str, tuple[str, tuple[str | None, ...]]] = {
    "core_customer": ("tenant_id", (None,)),
    "core_product": ("unit_price", ("-5.00",)),
    "core_order": ("status", ("on_hold", "PAID")),
    "core_orderitem": ("quantity", ("0", "-1")),
    "core_event": ("event_type", ("click", "Page_View")),
    "core_subscription": ("status", ("paused",)),
    "core_invoice": ("amount", ("12,50",)),
}


def _write(path: Path, frame: pl.DataFrame, gz: bool) -> Path:
    buf = io.BytesIO()
    frame.write_csv(buf, include_header=False, quote_style="necessary")
    data = buf.getvalue()
    path.write_bytes(
        gzip.compress(data, compresslevel=6, mtime=0) if gz else data
    )  # mtime=0: reproducible
    return path


def _cdc_name(ms: int) -> str:
    """YYYYMMDD-HHMMSSmmm of a time in milliseconds."""
    t = EPOCH + timedelta(milliseconds=int(ms))
    return t.strftime("%Y%m%d-%H%M%S") + f"{t.microsecond // 1000:03d}"


def _dirty_rows(
    rng: np.random.Generator, table: SourceTable, recs: pl.DataFrame, rate: float
) -> np.ndarray:
    """About `rate` of the live rows, by the record holding their final version (records are
    in change order: the LOAD rows, then the CDC records by seq)."""
    if table.name not in _DIRTY or rate <= 0 or recs.is_empty():
        return np.zeros(0, np.int64)
    key = (
        pl.struct(table.primary_key) if len(table.primary_key) > 1 else pl.col(table.primary_key[0])
    )
    final = recs.select(key.is_last_distinct() & (pl.col("_op") != "D")).to_series()
    rows = np.flatnonzero(final.to_numpy())
    if len(rows) == 0:
        return rows
    return np.sort(rng.choice(rows, min(len(rows), max(1, round(rate * len(rows)))), replace=False))


def _bad_values(rng: np.random.Generator, table: SourceTable, n: int) -> pl.Series:
    column, bad = _DIRTY.get(table.name, ("", (None,)))
    return pl.Series(column, bad, dtype=pl.String).gather(rng.integers(0, len(bad), n))


def _spoil(table: SourceTable, text: pl.DataFrame, rows: np.ndarray, values: pl.Series):
    """Put bad values (see `_DIRTY`) in some records, for the silver layer to quarantine."""
    if len(rows) == 0:
        return text
    return text.with_columns(text[values.name].scatter(rows, values))


def _file_bounds(ctx: _Ctx) -> np.ndarray:
    """When DMS closes a CDC file of one table: every ~2 hours, but never within 15 minutes of
    midnight, so the file around midnight holds changes of two dates."""
    every = CDC_FILE_MINUTES * MIN
    steps = ctx.rng.uniform(0.75, 1.25, int((ctx.cdc_end - ctx.cdc_start) / every * 1.5) + 2)
    bounds = ctx.cdc_start + np.cumsum(steps * every).astype(np.int64)
    bounds = bounds[bounds < ctx.cdc_end]
    into_day = (bounds - ctx.load0) % DAY
    return bounds[np.minimum(into_day, DAY - into_day) >= 15 * MIN]


def _write_table(
    ctx: _Ctx,
    root: Path,
    index: int,
    table: SourceTable,
    parts: _Parts,
    dirty_rate: float,
    gzip_every: int,
) -> tuple[TableSummary, int, int]:
    """Write one table's LOAD and CDC files; also the min business time and max commit time."""
    load = parts.load()
    n_load = load.height
    # Tables load one after the other within the first minutes; a split load a bit later.
    load_ts = ctx.load0 + SEC + index * (LOAD_MINUTES * MIN // (len(SOURCE_TABLES) + 1))
    load_ts += int(ctx.rng.integers(0, 5 * SEC))
    chunk = np.arange(n_load) // LOAD_FILE_ROWS
    load = load.with_columns(
        _op=pl.lit("I"),
        _ts=pl.Series(load_ts + chunk * 1_500_000),
        _sub=pl.lit(0, pl.Int64),
        _ctr=pl.lit(0, pl.Int64),
    )
    recs = pl.concat([load, parts.cdc], how="diagonal")  # in change order: LOAD, then by seq
    del load
    business = recs.filter(pl.col(table.partition_column) != NULL)[table.partition_column].min()
    last_commit = parts.cdc["_ts"].max() if parts.cdc.height else load_ts
    dirty = _dirty_rows(ctx.rng, table, recs, dirty_rate)
    bad = _bad_values(ctx.rng, table, len(dirty))

    def csv(a: int, b: int) -> pl.DataFrame:
        """Records a..b as CSV fields (text is made in parts: a whole table's would be big)."""
        inside = (dirty >= a) & (dirty < b)
        text = recs.slice(a, b - a).select(
            "_op", "_ts", "_ctr", *[_text_expr(c) for c in table.columns]
        )
        text = _spoil(table, text, dirty[inside] - a, bad.filter(inside))
        return _csv_frame(table, text.with_columns(_seq=_SEQ))

    folder = root / table.landing_folder
    folder.mkdir(parents=True, exist_ok=True)
    n_files = -(-n_load // LOAD_FILE_ROWS)
    for c in range(n_files):
        _write(
            folder / f"LOAD{c + 1:08X}.csv",
            csv(c * LOAD_FILE_ROWS, min(n_load, (c + 1) * LOAD_FILE_ROWS)),
            False,
        )

    cdc = csv(n_load, recs.height)
    cdc_ts = parts.cdc["_ts"].to_numpy()
    bucket = np.searchsorted(_file_bounds(ctx), cdc_ts, side="right")
    starts = np.flatnonzero(np.diff(bucket, prepend=-1))
    ends = np.append(starts[1:], len(cdc_ts))[: len(starts)].astype(np.int64)
    # Written a few seconds to a minute after the newest change inside; names never repeat.
    name_ms = cdc_ts[ends - 1] // 1000 + ctx.rng.integers(3_000, 60_000, len(starts))
    k = np.arange(len(starts))
    name_ms = np.maximum.accumulate(name_ms - k) + k
    for i, (a, b, ms) in enumerate(zip(starts, ends, name_ms)):
        gz = gzip_every > 0 and (i + 1) % gzip_every == 0
        _write(folder / f"{_cdc_name(ms)}.csv{'.gz' if gz else ''}", cdc.slice(a, b - a), gz)
    n_files += len(starts)
    summary = TableSummary(table.name, n_files, n_load, len(cdc_ts), parts.live)
    return summary, business, last_commit


def _landing_files(folder: Path) -> list[Path]:
    """LOAD and CDC files of a table folder in contract order (LOAD first, each by name)."""
    if not folder.is_dir():
        return []
    files = [p for p in folder.iterdir() if LOAD_NAME.match(p.name) or CDC_NAME.match(p.name)]
    return sorted(files, key=lambda p: (0 if LOAD_NAME.match(p.name) else 1, p.name))
