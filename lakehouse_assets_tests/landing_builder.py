"""Hand-written DMS landing files for tests: one call per file, records as Python values."""

from __future__ import annotations

import gzip
from pathlib import Path

from lakehouse_assets.sources import TABLES_BY_NAME, SourceTable

NULL = None  # an empty unquoted field


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


def write(root: Path, table: str | SourceTable, name: str, lines: list[str], gz: bool = False) -> Path:
    """Write records (strings from `record`, or raw lines) as one landing file."""
    t = TABLES_BY_NAME[table] if isinstance(table, str) else table
    folder = Path(root) / t.schema / t.name
    folder.mkdir(parents=True, exist_ok=True)
    data = ("\n".join(lines) + "\n").encode() if lines else b""
    path = folder / name
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return path
