"""Hand-written DMS landing files for tests: one call per file, records as Python values."""

from __future__ import annotations

import gzip
from pathlib import Path

from lakehouse_assets.landing.reader import REJECT_SCHEMA
from lakehouse_assets.sources import TABLES_BY_NAME, SourceTable

NULL = None  # an empty unquoted field
# CONTRACT 3 asks for "the raw text" of a reject without naming the column.
RAW = next(c for c in ("raw_text", "raw") if c in REJECT_SCHEMA)
# Field values that look like SQL: quotes, comments, `;`, `$$`, backslashes.
SQL_VALUES = [
    "'; DROP TABLE x; --",
    "\" OR 1=1 --",
    "' OR '1'='1",
    "1; DELETE FROM bronze.core_order",
    "\\'; DROP SCHEMA silver CASCADE; --",
    "back\\slash\\\\n\\x00",
    "$$ SELECT 1 $$",
    "$tag$; DROP TABLE x; $tag$",
    "%s %(x)s {0} ?",
    "/* comment */ --",
    "E'\\x41'",
    "NULL",
    "null",
    "',)); ATTACH 'evil.duckdb' AS evil; --",
]
# `_dms_commit_ts` values that are not timestamps of the contract's format.
BAD_TS = [
    "2024-12-08 22:15:00.1234567",  # 7 fraction digits
    "2024-02-30 10:00:00",  # no such day
    "2023-02-29 10:00:00",  # not a leap year
    "2024-13-01 10:00:00",
    "2024-12-08 24:00:00",  # hour 24
    "2024-12-08 22:60:00",
    "2024-12-08T22:15:00",  # ISO separator
    "2024-12-08T22:15:00.123456",
    "2024-12-08 22:15:00Z",
    "2024-12-08 22:15:00+00",
    "2024-12-08",
    "2024/12/08 22:15:00",
    "2024-12-8 22:15:00",
    " 2024-12-08 22:15:00",
    "2024-12-08 22:15",
    "",
    "yesterday",
]


def field(value) -> str:
    """RFC 4180 text of one value: None -> empty, '' -> \"\", quoted when needed."""
    if value is None:
        return ""
    text = str(value)
    if text == "" or any(ch in text for ch in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def record(table: SourceTable, op: str | None, ts: str, values: dict, seq: str | None = None) -> str:
    unknown = set(values) - set(table.column_names)
    assert not unknown, f"not columns of {table.name}: {unknown}"
    fields = ([op] if op is not None else []) + [ts]
    fields += [values.get(c) for c in table.column_names] + [seq]
    return ",".join(field(v) for v in fields)


def order_record(i, op: str | None = "U", ts: str = "2024-12-08 22:15:00", **over) -> str:
    """A core_order record, a paid order of 2024-12-08 unless `over` says otherwise."""
    values = {"id": str(i), "tenant_id": "1", "customer_id": "10", "status": "paid", "currency": "EUR",
              "total_amount": "12.50", "created_at": "2024-12-08 10:00:00", "updated_at": "2024-12-08 10:00:00"}
    return record(TABLES_BY_NAME["core_order"], op, ts, values | over)


def write(root: Path, table: str | SourceTable, name: str, lines: list[str], gz: bool = False) -> Path:
    """Write records (strings from `record`, or raw lines) as one landing file."""
    t = TABLES_BY_NAME[table] if isinstance(table, str) else table
    folder = Path(root) / t.schema / t.name
    folder.mkdir(parents=True, exist_ok=True)
    data = ("\n".join(lines) + "\n").encode() if lines else b""
    path = folder / name
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return path


def put(root: Path, name: str, data: bytes, folder: str = "public/core_order") -> Path:
    """A landing file with exactly these bytes."""
    path = Path(root) / folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
