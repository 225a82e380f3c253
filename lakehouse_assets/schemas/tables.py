"""Every table of the lakehouse, declared as a `TableSpec` from the source and gold
declarations: bronze changes, rejects and the landing manifest; silver and quarantine; gold;
and the bookkeeping tables of schema `state` that make the work incremental.

The specs give each store its columns, types and daily partition column; the Pandera models
(models.py) and the catalog metadata shown in the UI (assets/catalog.py) come from them.
"""

from __future__ import annotations

from lakehouse_assets.gold import GOLD_TABLES
from lakehouse_assets.gold.table import GoldTable
from lakehouse_assets.schemas.types import Columns, PgType
from lakehouse_assets.sources import SOURCE_TABLES, SourceTable
from lakehouse_assets.storage.tables import TableRef, TableSpec

T = PgType

CHANGE_METADATA: Columns = {
    "_op": T.TEXT,  # I, U or D
    "_commit_ts": T.TIMESTAMPTZ,  # DMS commit time: decides the partition
    "_seq": T.TEXT,  # DMS $AR_H_CHANGE_SEQ, empty in full loads
    "_source_file": T.TEXT,  # landing file, relative to the landing root
    "_source_row": T.BIGINT,  # 1-based record number in that file (header not counted)
    "_ingested_at": T.TIMESTAMPTZ,  # when a run read the file
}

REJECT_COLUMNS: Columns = {
    "table_name": T.TEXT,
    "_source_file": T.TEXT,
    "_source_row": T.BIGINT,
    "reason": T.TEXT,
    "raw_text": T.TEXT,
    "_commit_ts": T.TIMESTAMPTZ,
    "_partition_date": T.DATE,
    "_ingested_at": T.TIMESTAMPTZ,
}

MANIFEST_COLUMNS: Columns = {
    "table_name": T.TEXT,
    "_source_file": T.TEXT,
    "size_bytes": T.BIGINT,
    "etag": T.TEXT,  # S3 ETag, or size and mtime locally: a changed file is noticed by it
    "sha256": T.TEXT,  # of the decompressed content
    "records_in_file": T.BIGINT,
    "first_commit_ts": T.TIMESTAMPTZ,
    "last_commit_ts": T.TIMESTAMPTZ,
    "fields_found": T.BIGINT,
    "fields_expected": T.BIGINT,
    "note": T.TEXT,
    "_partition_date": T.DATE,
    "records": T.BIGINT,  # of the file's records filed under this day
    "changes": T.BIGINT,
    "rejects": T.BIGINT,
    "purged": T.BIGINT,  # removed on purpose (bronze.purge_log): records = changes + rejects + purged
    "_ingested_at": T.TIMESTAMPTZ,
    "_run_id": T.TEXT,
    "last_seen_at": T.TIMESTAMPTZ,  # when a run last found the file in the landing zone
}

MANIFEST_DESCRIPTIONS = {
    "etag": "S3 ETag, or size and modification time locally",
    "sha256": "of the decompressed content",
    "records": "records of the file filed under this day (as bronze rows or rejects)",
    "last_seen_at": "when a run last found the file in the landing zone (older: the zone has expired it)",
}

QUARANTINE_METADATA: Columns = {
    "_op": T.TEXT,
    "_commit_ts": T.TIMESTAMPTZ,
    "_seq": T.TEXT,
    "_source_file": T.TEXT,
    "_source_row": T.BIGINT,
    "_dq_reason": T.TEXT,
    "_partition_date": T.DATE,
    "_key": T.TEXT,  # the key as compared (CONTRACT 2): how a later change finds this row
}

# Per source table (state.<entity>_keys): every key ever seen, the change that wins for it (tombstones for
# deletes), where silver should hold it and where it does (`_written_*`).
KEY_STATE_COLUMNS: Columns = {
    "_key": T.TEXT,
    "_op": T.TEXT,
    "_commit_ts": T.TIMESTAMPTZ,
    "_seq": T.TEXT,
    "_source_file": T.TEXT,
    "_source_row": T.BIGINT,
    "_status": T.TEXT,  # valid | quarantine | deleted
    "_day": T.DATE,  # the silver (or quarantine) partition it belongs in; NULL when deleted
    "_written_status": T.TEXT,  # what silver holds now: valid | quarantine | NULL (nothing)
    "_written_day": T.DATE,
    "_pending": T.BOOLEAN,  # the winner changed since silver was last written for this key
}


def bronze_ref(table: SourceTable) -> TableRef:
    return TableRef("bronze", table.name)


def silver_ref(table: SourceTable) -> TableRef:
    return TableRef("silver", table.entity)


def quarantine_ref(table: SourceTable) -> TableRef:
    return TableRef("silver", f"{table.entity}_quarantine")


def gold_ref(table: GoldTable) -> TableRef:
    return TableRef("gold", table.name)


def change_columns(table: SourceTable) -> Columns:
    """Bronze columns: the table's columns as landed text, then the change metadata."""
    return {**{c: T.TEXT for c in [*table.column_names, *table.trailing_columns]}, **CHANGE_METADATA}


def bronze_spec(table: SourceTable) -> TableSpec:
    return TableSpec(bronze_ref(table), change_columns(table), "_commit_ts",
                     f"Every change to `{table.schema}.{table.name}` as landed by DMS, by commit date.")


REJECTS = TableSpec(TableRef("bronze", "cdc_rejects"), REJECT_COLUMNS, "_partition_date",
                    "Landed records that cannot be read, with file, row, reason and raw text.")
MANIFEST = TableSpec(TableRef("bronze", "landing_manifest"), MANIFEST_COLUMNS, "_partition_date",
                     "Every landing file ingested: one row per (file, day) with where its records went.")


def silver_columns(table: SourceTable) -> Columns:
    return {**{c.name: c.type for c in table.columns}, "_commit_ts": T.TIMESTAMPTZ, "_source_file": T.TEXT}


def silver_spec(table: SourceTable) -> TableSpec:
    return TableSpec(silver_ref(table), silver_columns(table), table.partition_column,
                     f"Current state of `{table.name}`: the last change of each key wins, typed and valid.")


def quarantine_spec(table: SourceTable) -> TableSpec:
    columns = {**{c: T.TEXT for c in [*table.column_names, *table.trailing_columns]}, **QUARANTINE_METADATA}
    return TableSpec(quarantine_ref(table), columns, "_partition_date",
                     f"Latest versions of `{table.name}` keys that fail a rule, as landed, with the reasons.")


def key_state_spec(table: SourceTable) -> TableSpec:
    return TableSpec(TableRef("state", f"{table.entity}_keys"), KEY_STATE_COLUMNS)


def gold_spec(table: GoldTable) -> TableSpec:
    return TableSpec(gold_ref(table), table.schema, "date", table.description)


# Gold (table, day[, grain]) pairs a change made stale and no run has written since.
GOLD_PENDING = TableSpec(
    TableRef("state", "gold_pending"),
    {"asset": T.TEXT, "day": T.DATE, "grain": T.BIGINT, "reason": T.TEXT, "since": T.TIMESTAMPTZ},
)
# Per table and layer: the declaration its state was built with; for silver the newest bronze
# ingestion merged into it; for gold the newest day computed (a table that reaches forward has
# a row for every day up to it, or none that day).
MARKS = TableSpec(
    TableRef("state", "marks"),
    {"table_name": T.TEXT, "layer": T.TEXT, "fingerprint": T.TEXT, "merged_through": T.TIMESTAMPTZ,
     "computed_through": T.DATE},
)
# Files whose bronze rows were replaced (changed content) or purged: keys whose winning change
# came from them are merged again from what bronze holds.
FILE_EVENTS = TableSpec(
    TableRef("state", "file_events"),
    {"table_name": T.TEXT, "_source_file": T.TEXT, "action": T.TEXT, "event_at": T.TIMESTAMPTZ},
)
# Data removed on purpose (a tenant under GDPR, a bad load): who, when, what, how many rows.
PURGES = TableSpec(
    TableRef("bronze", "purge_log"),
    {"purge_id": T.TEXT, "requested_by": T.TEXT, "reason": T.TEXT, "purged_at": T.TIMESTAMPTZ,
     "table_name": T.TEXT, "column_name": T.TEXT, "value": T.TEXT, "bronze_rows": T.BIGINT,
     "rejects": T.BIGINT, "_run_id": T.TEXT},
)

ALL_SPECS: dict[TableRef, TableSpec] = {
    s.ref: s
    for s in [
        *(bronze_spec(t) for t in SOURCE_TABLES),
        REJECTS,
        MANIFEST,
        *(silver_spec(t) for t in SOURCE_TABLES),
        *(quarantine_spec(t) for t in SOURCE_TABLES),
        *(gold_spec(t) for t in GOLD_TABLES),
        *(key_state_spec(t) for t in SOURCE_TABLES),
        GOLD_PENDING,
        MARKS,
        FILE_EVENTS,
        PURGES,
    ]
}


def specs_for(tables: tuple[SourceTable, ...]) -> dict[TableRef, TableSpec]:
    """The specs for other source declarations (a table that gained a column)."""
    specs = dict(ALL_SPECS)
    for t in tables:
        for spec in (bronze_spec(t), silver_spec(t), quarantine_spec(t), key_state_spec(t)):
            specs[spec.ref] = spec
    return specs
