"""The DMS CSV record (CONTRACT section 2): typed columns as DMS text, `_dms_commit_ts` and
`_dms_seq`, in the record layout. The zone writer and the CDC drop both make records, so their
text is made here only, one way for both.
"""

from __future__ import annotations

import polars as pl

from lakehouse_assets.sample_data.generator.context import NULL
from lakehouse_assets.sources import Column, PgType, SourceTable

TS_FORMAT = "%Y-%m-%d %H:%M:%S%.6f"


def _ts_text(expr: pl.Expr, fmt: str = TS_FORMAT) -> pl.Expr:
    return pl.from_epoch(expr, time_unit="us").dt.strftime(fmt)


def _text_expr(col: Column) -> pl.Expr:
    """A typed column as its DMS CSV text; NULL stays NULL."""
    c = pl.col(col.name)
    if col.type in (PgType.BIGINT, PgType.INTEGER):
        return pl.when(c != NULL).then(c.cast(pl.String)).alias(col.name)
    if col.type == PgType.NUMERIC:  # cents -> 123.45
        a = c.abs()
        sign = pl.when(c < 0).then(pl.lit("-")).otherwise(pl.lit(""))
        text = pl.concat_str(
            sign, (a // 100).cast(pl.String), pl.lit("."), (a % 100).cast(pl.String).str.zfill(2)
        )
        return pl.when(c != NULL).then(text).alias(col.name)
    if col.type == PgType.TIMESTAMPTZ:
        return _ts_text(pl.when(c != NULL).then(c)).alias(col.name)
    return c.cast(pl.String)  # text, jsonb, boolean (true/false)


def _seq_text(prefix: pl.Expr, counter: pl.Expr) -> pl.Expr:
    """$AR_H_CHANGE_SEQ: 14 digits of commit second and a 21-digit change counter."""
    return pl.concat_str(prefix, counter.cast(pl.String).str.zfill(21))


# _dms_seq of a numbered CDC record; empty in LOAD rows.
_SEQ = pl.when(pl.col("_ctr") > 0).then(
    _seq_text(_ts_text(pl.col("_ts"), "%Y%m%d%H%M%S"), pl.col("_ctr"))
)


def _csv_frame(table: SourceTable, text: pl.DataFrame) -> pl.DataFrame:
    """Op, commit time, the table's columns, seq: the DMS record layout (CONTRACT section 2)."""
    return text.select(
        pl.col("_op").alias("Op"),
        _ts_text(pl.col("_ts")).alias("_dms_commit_ts"),
        *table.column_names,
        pl.col("_seq").alias("_dms_seq"),
    )
