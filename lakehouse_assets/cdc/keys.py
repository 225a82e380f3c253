"""Keys and the order of changes (CONTRACT section 2), as DuckDB SQL.

A key is compared by its parsed value where it parses (so '007' is 7) and by its text where it
does not; `key_sql` gives it as one text (a JSON list of the compared parts, never NULL: a NULL
key is a key too, whose versions are quarantined). The last change of a key wins, in the
contract's order: `_dms_commit_ts`, then `_dms_seq` (empty first, else as a number), then the
file (LOAD before CDC, each kind by name), then the record's position in its file.
"""

from __future__ import annotations

from lakehouse_assets.schemas.types import PgType, duckdb_type
from lakehouse_assets.sources import SourceTable
from lakehouse_assets.values import parse_sql, quote_ident

# `_dms_seq` compares as a number without overflow: shorter (after leading zeros) is smaller,
# equal lengths compare as text.
SEQ_DIGITS = "ltrim(coalesce(_seq, ''), '0')"
LOAD_FILE = r"(^|/)LOAD[0-9A-Fa-f]{8}\.csv(\.gz)?$"


def comparable_sql(name: str, pg_type: PgType) -> str:
    """A key column as compared: the parsed value when it parses, else the text."""
    ident = quote_ident(name)
    if pg_type is PgType.TEXT:
        return ident
    return f"coalesce(CAST({parse_sql(ident, pg_type)} AS VARCHAR), {ident})"


def key_sql(table: SourceTable) -> str:
    """The key of a landed row as one text, equal exactly when the keys compare equal."""
    parts = ", ".join(comparable_sql(n, table.column(n).type) for n in table.primary_key)
    return f"CAST(to_json(list_value({parts})) AS VARCHAR)"


def typed_key_sql(table: SourceTable, key: str = "_key") -> list[str]:
    """The key columns as silver types them, back from `key_sql`'s text (NULL where a part
    does not parse: such keys are never in silver)."""
    out = []
    for i, name in enumerate(table.primary_key):
        part = f"json_extract_string({key}, '$[{i}]')"
        out.append(f"CAST({parse_sql(part, table.column(name).type)} AS {duckdb_type(table.column(name).type)}) "
                   f"AS {quote_ident(name)}")
    return out


def order_sql(prefix: str = "") -> str:
    """The change order as one comparable value (a later change is greater)."""
    p = prefix
    seq = SEQ_DIGITS.replace("_seq", f"{p}_seq")
    return f"""struct_pack(
        ts := {p}_commit_ts, has_seq := coalesce({p}_seq, '') <> '',
        seq_len := length({seq}), seq := {seq},
        is_cdc := NOT regexp_matches({p}_source_file, '{LOAD_FILE}'),
        file := {p}_source_file, row := {p}_source_row)"""
