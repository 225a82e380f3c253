"""Reading DMS landing files of one table into change records and rejects (CONTRACT 2 and 3).

Every data record of a file ends in exactly one of two frames: `changes` (the bronze rows:
every column as landed text plus `_op`, `_commit_ts`, `_seq`, `_source_file`, `_source_row`)
or `rejects` (with the reason and the raw text). A per-file summary makes the count checkable.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np
import polars as pl

from lakehouse_assets.landing.csv_records import SplitFile, split_records
from lakehouse_assets.landing.files import FileBytes, LandingFile, LandingStore, decode_file
from lakehouse_assets.schemas.tables import REJECT_COLUMNS, change_columns
from lakehouse_assets.schemas.types import UTC_DATETIME, PgType, polars_schema
from lakehouse_assets.sources import SourceTable
from lakehouse_assets.values import parse_sql, run_sql

OPS = ("I", "U", "D")

REJECT_SCHEMA = polars_schema(REJECT_COLUMNS)
_REJECT_READ = {k: v for k, v in REJECT_SCHEMA.items() if k != "_ingested_at"}  # before it is stamped

# What was read of each file: one row per file (the landing manifest splits it by day).
FILE_SUMMARY_SCHEMA = {
    "table_name": pl.String,
    "_source_file": pl.String,
    "size_bytes": pl.Int64,
    "etag": pl.String,
    "sha256": pl.String,
    "records": pl.Int64,
    "changes": pl.Int64,
    "rejects": pl.Int64,
    "min_commit_ts": UTC_DATETIME,
    "max_commit_ts": UTC_DATETIME,
    "fields_found": pl.Int64,  # the most common field count of the file's records
    "fields_expected": pl.Int64,  # of the declared layout, with Op
    "note": pl.String,
}


def change_schema(table: SourceTable) -> dict[str, pl.DataType]:
    """Bronze columns: the table's columns as text, then the change metadata."""
    return polars_schema(change_columns(table))


@dataclass(frozen=True)
class TableRead:
    changes: pl.DataFrame
    rejects: pl.DataFrame
    manifest: pl.DataFrame  # one row per file (FILE_SUMMARY_SCHEMA): counts, checksum, commit-ts span
    ignored: list[str]  # entries in the table folder that are not landing files, files landed twice


@dataclass
class LandedFile:
    file: LandingFile
    content: FileBytes
    split: SplitFile
    skip_header: bool


def landed_data(store: LandingStore, file: LandingFile) -> bytes:
    """The decompressed bytes as split_records saw them (newline-terminated)."""
    data = decode_file(file, store.read_bytes(file)).data
    return data + b"\n" if data and not data.endswith(b"\n") else data


def _land(store: LandingStore, file: LandingFile, table: SourceTable) -> LandedFile:
    """Read, decompress and split one file."""
    try:
        content = decode_file(file, store.read_bytes(file))
    except OSError as exc:
        content = FileBytes(b"", "", f"could not be read ({exc})")
    split = split_records(content.data)
    if content.problem and split.n_records and not content.data.endswith(b"\n"):
        split.errors[split.n_records - 1] = f"{content.problem}: the stream ends inside this record"
    header = bool(split.n_records) and _is_header(split, table)
    # The bytes are not kept: the field array holds the values, and the few rejects' raw text
    # is read again (_rejects). A table's landing files need not all fit in memory twice.
    return LandedFile(file, FileBytes(b"", content.sha256, content.problem), replace(split, data=b""), header)


def read_table(store: LandingStore, table: SourceTable, ingested_at: datetime) -> TableRead:
    """Every landing file of `table`, read into one `TableRead` (for tools and tests; the
    bronze step reads only what its ledger says is new, a batch at a time)."""
    files, ignored = store.list_files(table.landing_folder)
    reads = list(read_batches(store, table, files, ingested_at))
    if not reads:
        reads = [read_landed([], table, store, ingested_at)]
    return TableRead(
        pl.concat([r.changes for r in reads], rechunk=False),
        pl.concat([r.rejects for r in reads]),
        pl.concat([r.manifest for r in reads]),
        ignored + [note for r in reads for note in r.ignored],
    )


def read_batches(
    store: LandingStore, table: SourceTable, files: list[LandingFile], ingested_at: datetime,
    landed: dict[tuple[str, str], str] | None = None,
) -> Iterator[TableRead]:
    """Read these landing files of `table`, a batch (about BATCH_BYTES of files) at a time,
    in the contract's file order. A file with the same name stem and content as another
    (`landed`: (stem, sha256) -> path, of files read before) is a file landed twice: its
    records are not read again, and its summary says so.

    Files are split (numpy over their bytes, on every core: numpy, polars and file reads
    release the GIL) a batch at a time, and each batch's records are picked apart together:
    the cost per file stays small, and only one batch's field arrays are held at once."""
    seen = dict(landed or {})
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        for batch in _batches(sorted(files, key=lambda f: f.order_key)):
            kept, twins = [], []
            for f in pool.map(lambda file: _land(store, file, table), batch):
                stem = f.file.name.removesuffix(".gz")
                if (stem, f.content.sha256) in seen and f.content.problem is None:
                    twins.append((f, seen[(stem, f.content.sha256)]))
                    continue
                seen[(stem, f.content.sha256)] = f.file.path
                kept.append(f)
            yield read_landed(kept, table, store, ingested_at, twins)


def read_landed(landed: list[LandedFile], table: SourceTable, store: LandingStore, ingested_at: datetime,
                 twins: list[tuple[LandedFile, str]] = ()) -> TableRead:
    records = _records_frame(landed, table)
    checked = records.hstack(_validate(records, table))
    schema = change_schema(table)
    clean = checked["reason"].null_count() == len(checked)  # then no copy of the rows
    changes = (
        (checked if clean else checked.filter(pl.col("reason").is_null()))
        .select(list(schema)[:-1])
        .cast({k: v for k, v in schema.items() if k != "_ingested_at"})
        .with_columns(pl.lit(ingested_at, UTC_DATETIME).alias("_ingested_at"))
    )
    rejects = pl.concat(
        [
            _rejects(checked.filter(pl.col("reason").is_not_null()), landed, table, store),
            *(_stream_problem(f, table) for f in landed if f.content.problem),
        ]
    )
    rejects = _fill_reject_dates(rejects, changes).with_columns(
        pl.lit(ingested_at, UTC_DATETIME).alias("_ingested_at")
    )
    manifest = pl.concat([_manifest(landed, table, records, changes, rejects), _twins(twins, table)])
    notes = [f"{f.file.path}: same content as {other}, landed twice" for f, other in twins]
    return TableRead(changes, rejects, manifest, notes)


def _twins(twins, table: SourceTable) -> pl.DataFrame:
    """Summaries of files landed twice: no records of their own."""
    return pl.DataFrame(
        {
            "table_name": [table.name] * len(twins),
            "_source_file": [f.file.path for f, _ in twins],
            "size_bytes": [f.file.size for f, _ in twins],
            "etag": [f.file.etag for f, _ in twins],
            "sha256": [f.content.sha256 for f, _ in twins],
            "records": [0] * len(twins),
            "changes": [0] * len(twins),
            "rejects": [0] * len(twins),
            "note": [f"same content as {other}, landed twice: not read again" for _, other in twins],
        },
        schema={k: FILE_SUMMARY_SCHEMA[k] for k in
                ("table_name", "_source_file", "size_bytes", "etag", "sha256", "records", "changes", "rejects", "note")},
    ).with_columns(
        pl.lit(None, UTC_DATETIME).alias("min_commit_ts"), pl.lit(None, UTC_DATETIME).alias("max_commit_ts"),
        pl.lit(None, pl.Int64).alias("fields_found"),
        pl.lit(len(table.columns) + 3 + len(table.trailing_columns), pl.Int64).alias("fields_expected"),
    ).select(list(FILE_SUMMARY_SCHEMA))


BATCH_BYTES = 64 * 2**20


def _batches(files: list[LandingFile]):
    batch, size = [], 0
    for f in files:
        batch.append(f)
        size += f.size
        if size >= BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _records_frame(landed: list[LandedFile], table: SourceTable, first_index: int = 0) -> pl.DataFrame:
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


def _validate(records: pl.DataFrame, table: SourceTable) -> pl.DataFrame:
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


def _manifest(landed, table, records, changes, rejects) -> pl.DataFrame:
    """One row per file: what was read and where it went."""
    files = pl.DataFrame(
        {
            "_source_file": [f.file.path for f in landed],
            "size_bytes": [f.file.size for f in landed],
            "etag": [f.file.etag for f in landed],
            "sha256": [f.content.sha256 for f in landed],
            "note": [f.content.problem for f in landed],
        },
        schema={"_source_file": pl.String, "size_bytes": pl.Int64, "etag": pl.String, "sha256": pl.String,
                "note": pl.String},
    )
    counts = records.group_by("_source_file").agg(
        pl.len().alias("records"), pl.col("_n_fields").mode().min().alias("fields_found")
    )
    # The unreadable rest of a damaged gzip stream is one more record (see _stream_problem).
    damaged = pl.DataFrame({"_source_file": [f.file.path for f in landed if f.content.problem]},
                           schema={"_source_file": pl.String})
    span = changes.group_by("_source_file").agg(
        pl.len().alias("changes"),
        pl.col("_commit_ts").min().alias("min_commit_ts"),
        pl.col("_commit_ts").max().alias("max_commit_ts"),
    )
    bad = rejects.group_by("_source_file").len("rejects")
    out = (
        files.join(counts, on="_source_file", how="left")
        .with_columns(
            (pl.col("records").fill_null(0) + pl.col("_source_file").is_in(damaged["_source_file"].implode()))
            .alias("records")
        )
        .join(span, on="_source_file", how="left")
        .join(bad, on="_source_file", how="left")
        .with_columns(
            pl.lit(table.name).alias("table_name"),
            pl.lit(len(table.columns) + 3 + len(table.trailing_columns)).alias("fields_expected"),
            pl.col("records", "changes", "rejects").fill_null(0),
        )
    )
    return out.select(list(FILE_SUMMARY_SCHEMA)).cast(FILE_SUMMARY_SCHEMA)


def _is_header(split: SplitFile, table: SourceTable) -> bool:
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


def _rejects(bad: pl.DataFrame, landed: list[LandedFile], table: SourceTable, store: LandingStore) -> pl.DataFrame:
    bad = bad.sort("_file", "_record")
    raw: list[str] = []
    cdc_dates: list[str | None] = []
    for (file_idx,), group in bad.group_by(["_file"], maintain_order=True):
        f = landed[file_idx]
        try:
            data = landed_data(store, f.file)
        except OSError as exc:  # gone since it was read: say so rather than fail
            raw.extend([f"(could not be read again for its raw text: {exc})"] * len(group))
        else:
            raw.extend(replace(f.split, data=data).raw_text(group["_record"].to_numpy()))
        cdc_dates.extend([f.file.cdc_date] * len(group))
    return pl.DataFrame(
        {
            "table_name": pl.Series([table.name] * len(bad), dtype=pl.String),
            "_source_file": bad["_source_file"],
            "_source_row": bad["_source_row"],
            "reason": bad["reason"],
            "raw_text": pl.Series(raw, dtype=pl.String),
            "_commit_ts": bad["_commit_ts"],
            "_partition_date": pl.Series(cdc_dates, dtype=pl.String).str.to_date(strict=False),
        },
        schema=_REJECT_READ,
    ).with_columns(pl.coalesce(pl.col("_commit_ts").dt.date(), "_partition_date").alias("_partition_date"))


def _stream_problem(f: LandedFile, table: SourceTable) -> pl.DataFrame:
    """A damaged or truncated gzip stream: its unreadable rest counts as one record, a reject,
    so the loss is visible and the file's records still add up."""
    n = f.split.n_records - int(f.skip_header)
    return pl.DataFrame(
        {
            "table_name": [table.name],
            "_source_file": [f.file.path],
            "_source_row": [n + 1],
            "reason": [f"{f.content.problem}: records after row {n} are missing"],
            "raw_text": [""],
            "_commit_ts": [None],
            "_partition_date": [None],
        },
        schema=_REJECT_READ,
    ).with_columns(pl.lit(f.file.cdc_date, pl.String).str.to_date(strict=False).alias("_partition_date"))


def _fill_reject_dates(rejects: pl.DataFrame, changes: pl.DataFrame) -> pl.DataFrame:
    """A reject without a readable commit ts is filed under the nearest readable record of its
    file; in a file with none, under its CDC name's date but never after the table's latest
    commit (a span that covers the zone's commits then covers its rejects too)."""
    if rejects.is_empty():
        return rejects
    near = changes.select(
        "_source_file", "_source_row", pl.col("_commit_ts").dt.date().alias("near")
    ).sort("_source_file", "_source_row")
    latest = changes["_commit_ts"].max()
    latest_day = pl.lit(latest.date() if latest is not None else None, pl.Date)
    joined = rejects.sort("_source_file", "_source_row").join_asof(
        near, on="_source_row", by="_source_file", strategy="nearest", check_sortedness=False
    )
    return joined.with_columns(
        pl.coalesce(
            pl.col("_commit_ts").dt.date(),
            "near",
            pl.min_horizontal("_partition_date", latest_day),  # _partition_date: CDC name date
        ).alias("_partition_date")
    ).select(list(_REJECT_READ))
