"""The records of landing files, picked apart (CONTRACT section 2): each record's layout from
its field count (Op or not, columns added later or not), its fields, and why it cannot be read
(`reason`), vectorized over every file of a batch at once."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import polars as pl

from lakehouse_assets.landing.csv_records import SplitFile
from lakehouse_assets.landing.files import FileBytes, LandingFile
from lakehouse_assets.schemas.types import PgType
from lakehouse_assets.sources import SourceTable
from lakehouse_assets.values import parse_sql, run_sql

OPS = ("I", "U", "D")


@dataclass
class LandedFile:
    file: LandingFile
    content: FileBytes
    split: SplitFile
    skip_header: bool


def records_frame(landed: list[LandedFile], table: SourceTable, first_index: int = 0) -> pl.DataFrame:
    """One row per record of every file: Op, commit ts, columns, seq (as text) picked by the
    record's field count. Per file only numpy runs; the columns are gathered once for the
    whole table from all files' field arrays (string views: no string is copied)."""
    n = len(table.columns)
    n_trailing = len(table.trailing_columns)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("nf", "ff", "file", "rec", "row", "drift", "load")}
    errors: dict[int, str] = {}
    offset = start = 0
    for i, f in enumerate(landed):
        sp, skip = f.split, int(f.skip_header)
        rows = np.arange(skip, sp.n_records, dtype=np.int64)
        nf = sp.n_fields[rows]
        parts["nf"].append(nf)
        parts["ff"].append(sp.first_field[rows] + offset)
        parts["file"].append(np.full(len(rows), first_index + i, dtype=np.int64))
        parts["rec"].append(rows)
        parts["row"].append(rows - skip + 1)
        parts["load"].append(np.full(len(rows), f.file.is_load))
        parts["drift"].append(np.full(len(rows), _drifted_fields(nf, _layouts(table, nf, f.file.is_load)[2], n + 3 + n_trailing)))
        errors.update({start + r - skip: e for r, e in sp.errors.items() if r >= skip})
        offset += len(sp.values)
        start += len(rows)
    cat = {k: np.concatenate(v) if v else np.zeros(0, dtype=bool if k == "load" else np.int64) for k, v in parts.items()}
    nf, ff = cat["nf"], cat["ff"]
    values = pl.concat([f.split.values for f in landed], rechunk=True) if landed else pl.Series("value", [], pl.String)
    for f in landed:  # the concatenation holds them now
        f.split = replace(f.split, values=f.split.values.clear())
    first_is_op = (
        values.gather(ff).is_in(list(OPS)).fill_null(False).to_numpy() if len(ff) else np.zeros(0, dtype=bool)
    )
    with_op, without_op, shape_ok, present = _layouts(table, nf, cat["load"], first_is_op)
    base = ff + with_op.astype(np.int64)  # index of _dms_commit_ts

    def pick(field: np.ndarray, present: np.ndarray) -> pl.Series:
        if not len(values):
            return pl.Series([None] * len(field), dtype=pl.String)
        picked = values.gather(np.where(present, field, 0))
        return picked.set(pl.Series(~present, dtype=pl.Boolean), None) if not present.all() else picked

    broken = pl.repeat(None, len(nf), dtype=pl.String, eager=True)
    if errors:  # a few broken records, if any: set them by index
        broken = broken.scatter(list(errors), list(errors.values()))
    op = pick(ff, with_op)
    if without_op.any():
        op = op.set(pl.Series(without_op, dtype=pl.Boolean), "I")
    drift = cat["drift"]
    cols: dict[str, pl.Series] = {
        "_csv_error": broken,
        "_n_fields": pl.Series(nf, dtype=pl.Int64),
        "_shape_ok": pl.Series(shape_ok, dtype=pl.Boolean),
        # the file's field count when the source table has gained columns (see _drifted_fields)
        "_drift_fields": pl.Series(np.where(~shape_ok & (nf == drift) & (drift > 0), drift, 0), dtype=pl.Int64)
        .replace(0, None),
        "_op": op,
        "_commit_ts_text": pick(base, shape_ok),
    }
    for j, name in enumerate(table.column_names):
        cols[name] = pick(base + 1 + j, shape_ok & (present > j))
    cols["_seq"] = pick(base + 1 + present, shape_ok)
    has_trailing = with_op & (nf == n + 3 + n_trailing) & (n_trailing > 0)
    for k, name in enumerate(table.trailing_columns):
        cols[name] = pick(base + 2 + n + k, has_trailing)
    cols["_file"] = pl.Series(cat["file"], dtype=pl.Int64)
    cols["_record"] = pl.Series(cat["rec"], dtype=pl.Int64)  # index into the split file
    cols["_source_row"] = pl.Series(cat["row"], dtype=pl.Int64)
    paths = pl.Series([f.file.path for f in landed], dtype=pl.String)
    cols["_source_file"] = paths.gather(cat["file"] - first_index) if len(nf) else pl.Series([], dtype=pl.String)
    return pl.DataFrame({k: v.alias(k) for k, v in cols.items()})


def _layouts(table: SourceTable, nf: np.ndarray, is_load, first_is_op: np.ndarray | None = None):
    """Each record's layout from its field count: Op, ts, columns, seq (+ trailing columns),
    or, in a LOAD file, no Op; with every column, or without those added later. A count both
    layouts explain (a LOAD file after a column was added) is decided by the first field
    being an Op. Returns with_op, without_op, shape_ok and the number of columns present."""
    n, n_trailing, counts = len(table.columns), len(table.trailing_columns), table.column_counts
    could_with = np.isin(nf, [m + 3 for m in counts])
    could_without = np.isin(nf, [m + 2 for m in counts]) & is_load
    if first_is_op is None:
        first_is_op = np.ones(len(nf), dtype=bool)
    with_op = could_with & (~could_without | first_is_op)
    without_op = could_without & (~could_with | ~first_is_op)
    present = np.where(with_op, nf - 3, nf - 2)
    if n_trailing:
        full = nf == n + 3 + n_trailing
        with_op |= full
        present = np.where(full, n, present)
    return with_op, without_op, with_op | without_op, present


def _drifted_fields(n_fields: np.ndarray, shape_ok: np.ndarray, most: int) -> int:
    """Schema drift: when a source table gains a column, DMS files grow by a field with no
    header to say so. A file whose records mostly have the same count, above the layout's,
    has drifted; 0 when not."""
    bad = n_fields[~shape_ok]
    if len(bad) * 2 < len(n_fields) or not len(bad):
        return 0
    common = int(np.bincount(bad).argmax())
    return common if common > most and (bad == common).sum() * 2 >= len(n_fields) else 0


def validate_records(records: pl.DataFrame, table: SourceTable) -> pl.DataFrame:
    """`_commit_ts` and the reject `reason` of every record, in record order. DuckDB sees only
    the few columns that decide them (values.py parses the commit ts, as silver parses)."""
    meta = records.select(
        "_csv_error", "_n_fields", "_shape_ok", "_drift_fields", "_op", "_commit_ts_text", "_source_file"
    )
    out = run_sql(_validation_sql(table), records=meta.with_row_index("_i"))
    order = out["_i"].to_numpy()
    if len(order) != len(records) or (len(order) > 1 and not (np.diff(order) > 0).all()):
        out = out.sort("_i")  # DuckDB keeps the order of a plain projection; be sure of it
    # one chunk, as the records: columns of a frame chunked differently are copied to align
    return out.select("_commit_ts", "reason").rechunk()


def is_header(split: SplitFile, table: SourceTable) -> bool:
    """DMS AddColumnName: the first record names the layout's columns (Op optional)."""
    first = split.values.slice(split.first_field[0], split.n_fields[0]).to_list()
    names = [str(v).lower() if v is not None else "" for v in first]
    trailing = [c.lower() for c in table.trailing_columns]
    for m in table.column_counts:  # files landed before columns were added name fewer
        layout = [c.lower() for c in ["_dms_commit_ts", *table.column_names[:m], "_dms_seq"]]
        if names in (layout, ["op", *layout], ["op", *layout, *trailing]):
            return True
    return False


def _validation_sql(table: SourceTable) -> str:
    expected = " or ".join(str(m + 3) for m in table.column_counts)
    if table.trailing_columns:
        expected += f" (or {len(table.columns) + 3 + len(table.trailing_columns)})"
    ops = ", ".join(f"'{o}'" for o in OPS)
    ts = parse_sql("_commit_ts_text", PgType.TIMESTAMPTZ)
    return f"""
        SELECT _i, {ts} AS _commit_ts,
          CASE
            WHEN _csv_error IS NOT NULL THEN _csv_error
            WHEN _drift_fields IS NOT NULL THEN 'schema drift: ' || _source_file || ' has '
              || _drift_fields || ' fields per record where the declaration of {table.name} has '
              || '{expected} (Op, _dms_commit_ts, {len(table.columns)} columns, _dms_seq): the source '
              || 'table has ' || (_drift_fields - 3) || ' columns now, '
              || (_drift_fields - {len(table.columns) + 3}) || ' more than declared. Kept here; '
              || 'read again once its declaration in sources.py gains them'
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
    """
