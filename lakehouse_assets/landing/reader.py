"""Reading DMS landing files of one table into change records and rejects (CONTRACT 2 and 3).

Every data record of a file ends in exactly one of two frames: `changes` (the bronze rows:
every column as landed text plus `_op`, `_commit_ts`, `_seq`, `_source_file`, `_source_row`)
or `rejects` (with the reason and the raw text). A per-file summary makes the count checkable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import polars as pl

from lakehouse_assets.landing.csv_records import SplitFile, split_records
from lakehouse_assets.landing.files import FileBytes, LandingFile, LandingStore, decode_file
from lakehouse_assets.sources import PgType, SourceTable
from lakehouse_assets.values import connect, parse_sql, quote_ident

OPS = ("I", "U", "D")
UTC_DATETIME = pl.Datetime("us", "UTC")

REJECT_SCHEMA = {
    "table_name": pl.String,
    "_source_file": pl.String,
    "_source_row": pl.Int64,
    "reason": pl.String,
    "raw_text": pl.String,
    "_commit_ts": UTC_DATETIME,
    "_partition_date": pl.Date,
}

MANIFEST_SCHEMA = {
    "table_name": pl.String,
    "_source_file": pl.String,
    "size_bytes": pl.Int64,
    "sha256": pl.String,
    "records": pl.Int64,
    "changes": pl.Int64,
    "rejects": pl.Int64,
    "min_commit_ts": UTC_DATETIME,
    "max_commit_ts": UTC_DATETIME,
    "note": pl.String,
}


def change_schema(table: SourceTable) -> dict[str, pl.DataType]:
    """Bronze columns: the table's columns as text, then the change metadata."""
    schema: dict[str, pl.DataType] = {c: pl.String for c in table.column_names}
    schema.update({c: pl.String for c in table.trailing_columns})
    schema.update(
        {
            "_op": pl.String,
            "_commit_ts": UTC_DATETIME,
            "_seq": pl.String,
            "_source_file": pl.String,
            "_source_row": pl.Int64,
            "_ingested_at": UTC_DATETIME,
        }
    )
    return schema


@dataclass(frozen=True)
class TableRead:
    changes: pl.DataFrame
    rejects: pl.DataFrame
    manifest: pl.DataFrame  # one row per file: counts, checksum, commit-ts span
    ignored: list[str]  # entries in the table folder that are not landing files


def read_table(store: LandingStore, table: SourceTable, ingested_at: datetime) -> TableRead:
    """Read every landing file of `table`; files landed twice (same name, same content) once."""
    files, ignored = store.list_files(table.landing_folder)
    changes, rejects, manifest = [], [], []
    seen: dict[tuple[str, str], str] = {}
    for file in sorted(files, key=lambda f: f.order_key):
        try:
            content = decode_file(file, store.read_bytes(file))
        except OSError as exc:
            content = FileBytes(b"", "", f"could not be read ({exc})")
        stem = file.name.removesuffix(".gz")
        if (stem, content.sha256) in seen and content.problem is None:
            ignored.append(f"{file.path}: same content as {seen[(stem, content.sha256)]}, landed twice")
            continue
        seen[(stem, content.sha256)] = file.path
        c, r, m = read_file(file, content, table)
        changes.append(c)
        rejects.append(r)
        manifest.append(m)
    schema = change_schema(table)
    changes_df = _concat(changes, {k: schema[k] for k in list(schema)[:-1]}).with_columns(
        pl.lit(ingested_at, UTC_DATETIME).alias("_ingested_at")
    )
    rejects_df = _fill_reject_dates(_concat(rejects, REJECT_SCHEMA), changes_df)
    return TableRead(changes_df, rejects_df, _concat(manifest, MANIFEST_SCHEMA), ignored)


def read_file(
    file: LandingFile, content: FileBytes, table: SourceTable
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    split = split_records(content.data)
    if content.problem and split.n_records and not content.data.endswith(b"\n"):
        split.error[-1] = f"{content.problem}: the stream ends inside this record"
    records = _records_frame(split, file, table)
    con = connect()
    try:
        con.register("records", records)
        checked = con.sql(_validation_sql(table)).pl()
    finally:
        con.close()
    ok = checked.filter(pl.col("reason").is_null())
    bad = checked.filter(pl.col("reason").is_not_null())

    changes = ok.select(list(change_schema(table))[:-1]).cast(
        {k: v for k, v in change_schema(table).items() if k != "_ingested_at"}
    )
    rejects = _rejects(bad, split, file, table)
    rejects = pl.concat([rejects, _stream_problem(content, split, file, table)])
    manifest = pl.DataFrame(
        {
            "table_name": [table.name],
            "_source_file": [file.path],
            "size_bytes": [file.size],
            "sha256": [content.sha256],
            "records": [len(records)],
            "changes": [len(changes)],
            "rejects": [len(rejects)],
            "min_commit_ts": [changes["_commit_ts"].min()],
            "max_commit_ts": [changes["_commit_ts"].max()],
            "note": [content.problem],
        },
        schema=MANIFEST_SCHEMA,
    )
    return changes, rejects, manifest


def _records_frame(split: SplitFile, file: LandingFile, table: SourceTable) -> pl.DataFrame:
    """One row per record: Op, commit ts, columns, seq (as text) picked by its field count."""
    n = len(table.columns)
    n_trailing = len(table.trailing_columns)
    nf, ff = split.n_fields, split.first_field
    values = split.values

    rows = np.arange(split.n_records)
    if split.n_records and _is_header(split, table):
        rows = rows[1:]
    nf, ff = nf[rows], ff[rows]
    with_op = (nf == n + 3) | ((n_trailing > 0) & (nf == n + 3 + n_trailing))
    without_op = (nf == n + 2) & file.is_load
    shape_ok = with_op | without_op
    base = ff + with_op.astype(np.int64)  # index of _dms_commit_ts

    def pick(index: np.ndarray, present: np.ndarray) -> pl.Series:
        safe = np.where(present, index, 0)
        picked = values.gather(safe) if len(values) else pl.Series([], dtype=pl.String)
        return pl.select(pl.when(pl.Series(present)).then(picked)).to_series()

    cols: dict[str, pl.Series] = {
        "_csv_error": pl.Series([split.error[i] for i in rows], dtype=pl.String),
        "_n_fields": pl.Series(nf, dtype=pl.Int64),
        "_shape_ok": pl.Series(shape_ok),
        "_op": pl.select(
            pl.when(pl.Series(without_op)).then(pl.lit("I")).otherwise(pick(ff, with_op))
        ).to_series(),
        "_commit_ts_text": pick(base, shape_ok),
    }
    for j, name in enumerate(table.column_names):
        cols[name] = pick(base + 1 + j, shape_ok)
    cols["_seq"] = pick(base + 1 + n, shape_ok)
    has_trailing = with_op & (nf > n + 3)
    for k, name in enumerate(table.trailing_columns):
        cols[name] = pick(base + 2 + n + k, has_trailing)
    cols["_record"] = pl.Series(rows, dtype=pl.Int64)  # index into the split file
    frame = pl.DataFrame({k: v.alias(k) for k, v in cols.items()})
    return frame.with_columns(
        pl.lit(file.path).alias("_source_file"),
        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("_source_row"),
    )


def _is_header(split: SplitFile, table: SourceTable) -> bool:
    """DMS AddColumnName: the first record names the layout's columns (Op optional)."""
    first = split.values.slice(split.first_field[0], split.n_fields[0]).to_list()
    names = [str(v).lower() if v is not None else "" for v in first]
    layout = ["_dms_commit_ts", *table.column_names, "_dms_seq"]
    layout = [c.lower() for c in layout]
    trailing = [c.lower() for c in table.trailing_columns]
    return names in (layout, ["op", *layout], ["op", *layout, *trailing]) and bool(names)


def _validation_sql(table: SourceTable) -> str:
    expected = f"{len(table.columns) + 3}"
    if table.trailing_columns:
        expected += f" (or {len(table.columns) + 3 + len(table.trailing_columns)})"
    ops = ", ".join(f"'{o}'" for o in OPS)
    ts = parse_sql("_commit_ts_text", PgType.TIMESTAMPTZ)
    columns = ", ".join(quote_ident(c) for c in [*table.column_names, *table.trailing_columns])
    return f"""
        SELECT {columns}, _op, {ts} AS _commit_ts, _seq, _source_file, _source_row, _record,
          CASE
            WHEN _csv_error IS NOT NULL THEN _csv_error
            WHEN NOT _shape_ok THEN 'wrong column count: expected {expected} fields '
              || '(Op, _dms_commit_ts, {len(table.columns)} columns of {table.name}, _dms_seq), found '
              || _n_fields || CASE WHEN _n_fields = {len(table.columns) + 2}
                 THEN ' (a record without Op is only allowed in a LOAD file)' ELSE '' END
            WHEN _op IS NULL OR _op NOT IN ({ops}) THEN 'Op must be I, U or D, found '
              || coalesce('''' || _op || '''', 'nothing')
            WHEN {ts} IS NULL THEN '_dms_commit_ts is not a timestamp: '
              || coalesce('''' || _commit_ts_text || '''', 'empty')
          END AS reason
        FROM records
        ORDER BY _source_row
    """


def _rejects(bad: pl.DataFrame, split: SplitFile, file: LandingFile, table: SourceTable):
    raw = split.raw_text(bad["_record"].to_numpy()) if len(bad) else []
    return pl.DataFrame(
        {
            "table_name": pl.Series([table.name] * len(bad), dtype=pl.String),
            "_source_file": bad["_source_file"],
            "_source_row": bad["_source_row"],
            "reason": bad["reason"],
            "raw_text": pl.Series(raw, dtype=pl.String),
            "_commit_ts": bad["_commit_ts"],
            "_partition_date": pl.Series([None] * len(bad), dtype=pl.Date),
        },
        schema=REJECT_SCHEMA,
    ).with_columns(
        pl.coalesce(
            pl.col("_commit_ts").dt.date(),
            pl.lit(file.cdc_date, pl.String).str.to_date(strict=False),
        ).alias("_partition_date")
    )


def _stream_problem(content: FileBytes, split: SplitFile, file: LandingFile, table: SourceTable):
    """A damaged or truncated gzip stream: say so as a reject, so the loss is visible."""
    if content.problem is None:
        return pl.DataFrame(schema=REJECT_SCHEMA)
    return pl.DataFrame(
        {
            "table_name": [table.name],
            "_source_file": [file.path],
            "_source_row": [split.n_records + 1],
            "reason": [f"{content.problem}: records after row {split.n_records} are missing"],
            "raw_text": [""],
            "_commit_ts": [None],
            "_partition_date": [None],
        },
        schema=REJECT_SCHEMA,
    ).with_columns(pl.lit(file.cdc_date, pl.String).str.to_date(strict=False).alias("_partition_date"))


def _fill_reject_dates(rejects: pl.DataFrame, changes: pl.DataFrame) -> pl.DataFrame:
    """A reject without a readable commit ts is filed under the nearest readable record of its
    file, else its CDC file's date, else the table's earliest commit date."""
    if rejects.is_empty():
        return rejects
    near = (
        changes.select("_source_file", "_source_row", pl.col("_commit_ts").dt.date().alias("d"))
        .sort("_source_file", "_source_row")
    )
    table_first = changes["_commit_ts"].min()
    fallback = table_first.date() if table_first is not None else None
    joined = rejects.sort("_source_file", "_source_row").join_asof(
        near, on="_source_row", by="_source_file", strategy="nearest", check_sortedness=False
    )
    return joined.with_columns(
        pl.coalesce(
            pl.col("_commit_ts").dt.date(),
            pl.col("d"),
            pl.col("_partition_date"),
            pl.lit(fallback, pl.Date),
        ).alias("_partition_date")
    ).select(list(REJECT_SCHEMA))


def _concat(frames: list[pl.DataFrame], schema: dict) -> pl.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return pl.DataFrame(schema=schema)
    return pl.concat(frames, how="vertical_relaxed").cast(schema)
