"""Upkeep of the Iceberg tables, as a daily Dagster job (AWS mode):

- expire snapshots older than the retention (the latest few always kept): time travel reaches
  back that far and no further;
- remove orphan files: objects under a table's location that no live snapshot or kept
  metadata file references (left by a crashed writer, or by expired snapshots, which pyiceberg
  0.12 expires in metadata only) once older than a grace period, so a write in flight, whose
  files are not committed yet, is never touched;
- compact: a partition of many small data files is rewritten as one, rows unchanged, in one
  snapshot per table.

Each runs against the catalog's current state and commits like any writer: a compaction that
loses a race with a run writing the same partitions is dropped (reported, done next time).
"""

# No `from __future__ import annotations`: Dagster reads the op's config and resource types from its signature.
import logging
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import urlparse

import boto3
from dagster import (
    Config,
    DefaultScheduleStatus,
    Failure,
    MetadataValue,
    Nothing,
    OpExecutionContext,
    Out,
    Output,
    ScheduleDefinition,
    TableColumn,
    TableRecord,
    TableSchema,
    job,
    op,
)
from pydantic import Field
from pyiceberg.exceptions import CommitFailedException, NoSuchNamespaceError, ValidationException
from pyiceberg.expressions import AlwaysTrue, BooleanExpression
from pyiceberg.table import Table
from pyiceberg.types import TimestamptzType

from lakehouse_assets.storage import iceberg_files as files
from lakehouse_assets.storage import iceberg_tables as tables
from lakehouse_assets.storage.iceberg_warehouse import IcebergSession, IcebergWarehouse

log = logging.getLogger(__name__)
DELETE_BATCH = 1000  # S3 DeleteObjects takes at most 1,000 keys
ATTEMPTS = 3


class MaintenanceConfig(Config):
    snapshot_retention_days: float = Field(default=7, description="Snapshots older than this are expired")
    keep_last_snapshots: int = Field(default=5, description="The latest this many snapshots stay, however old (min 1)")
    orphan_grace_hours: float = Field(
        default=72, description="Unreferenced files younger than this stay (writes in flight): above the longest run")
    compact_min_files: int = Field(default=10, description="Partitions with this many small files are compacted")
    compact_small_file_mb: float = Field(default=32, description="Data files smaller than this count as small")


@dataclass
class Maintained:
    table: str
    snapshots_expired: int = 0
    orphans_removed: int = 0
    files_compacted: int = 0  # small files rewritten ...
    files_written: int = 0  # ... as this many
    compaction_skipped: bool = False  # lost to a concurrent writer
    error: str = ""


def expire_snapshots(table: Table, older_than: datetime, keep_last: int) -> int:
    """Expire snapshots older than `older_than`, except the latest `keep_last` (and any branch
    or tag head); a commit that races another is tried again on the fresh table."""
    for _ in range(ATTEMPTS):
        ordered = sorted(table.snapshots(), key=lambda s: s.timestamp_ms)
        kept = {s.snapshot_id for s in ordered[-max(keep_last, 1):]} | {r.snapshot_id for r in table.refs().values()}
        cutoff = older_than.timestamp() * 1000
        expired = [s.snapshot_id for s in ordered if s.timestamp_ms < cutoff and s.snapshot_id not in kept]
        if not expired:
            return 0
        try:
            table.maintenance.expire_snapshots().by_ids(expired).commit()
            return len(expired)
        except CommitFailedException:
            table = table.refresh()
    raise RuntimeError(f"{table.name()}: could not expire snapshots after {ATTEMPTS} attempts")


def referenced_files(table: Table) -> set[str]:
    """Every file a live snapshot or a kept metadata file of the table needs, as bucket/key."""
    paths = {table.metadata_location, *(entry.metadata_file for entry in table.metadata.metadata_log)}
    paths |= {s.statistics_path for s in table.metadata.statistics}
    seen: set[str] = set()
    for snapshot in table.snapshots():
        paths.add(snapshot.manifest_list)
        for manifest in snapshot.manifests(table.io):
            if manifest.manifest_path in seen:  # manifests are shared by the snapshots after theirs
                continue
            seen.add(manifest.manifest_path)
            paths.update(e.data_file.file_path for e in manifest.fetch_manifest_entry(table.io, discard_deleted=True))
    return {_bucket_key(p) for p in paths | seen}


def remove_orphans(table: Table, s3, older_than: datetime) -> int:
    """Delete the objects under the table's location that nothing references, last written
    before `older_than`."""
    referenced = referenced_files(table)
    bucket, prefix = _bucket_key(table.location()).split("/", 1)
    orphans = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix.rstrip("/") + "/"):
        orphans += [o["Key"] for o in page.get("Contents", [])
                    if f"{bucket}/{o['Key']}" not in referenced and o["LastModified"] < older_than]
    for i in range(0, len(orphans), DELETE_BATCH):
        keys = [{"Key": k} for k in orphans[i:i + DELETE_BATCH]]
        s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    return len(orphans)


def compact(table: Table, session: IcebergSession, min_files: int, small_bytes: int, result: Maintained) -> None:
    """Rewrite each partition holding at least `min_files` small files as one file (per
    batch of rows), all in one snapshot."""
    groups = defaultdict(list)
    for task in table.scan().plan_files():
        data = task.file
        if not task.delete_files and data.file_size_in_bytes < small_bytes and data.spec_id == table.spec().spec_id:
            groups[task.file.partition].append(task)
    groups = {partition: tasks for partition, tasks in groups.items() if len(tasks) >= min_files}
    if not groups:
        return
    drop, add = [], []
    try:
        for tasks in groups.values():
            rows = files.load(session.con, files.batches(table, tasks, table.schema()))
            try:
                add += files.write(table, session.con, rows)[0]
            finally:
                session.con.execute(f"DROP TABLE IF EXISTS {rows}")
            drop += [t.file for t in tasks]
        files.commit(table, drop, add, _partitions_filter(table, groups), {"lakehouse.maintenance": "compaction"})
    except (CommitFailedException, ValidationException) as exc:
        files.delete_files(table, add)
        log.warning("%s: compaction lost to a concurrent writer (%s); it is done on the next run", table.name(), exc)
        result.compaction_skipped = True
        return
    except BaseException:
        files.delete_files(table, add)
        raise
    result.files_compacted, result.files_written = len(drop), len(add)


def _partitions_filter(table: Table, groups) -> BooleanExpression:
    """What a compaction read: its partitions (a write elsewhere in the table is no conflict)."""
    column = tables.daily_column(table)
    days = [files.partition_day(p) for p in groups]
    if column is None or None in days:  # unpartitioned, or rows without a day: the whole table
        return AlwaysTrue()
    timestamp = isinstance(table.schema().find_field(column).field_type, TimestamptzType)
    return tables.days_filter(column, timestamp, [files.EPOCH + timedelta(days=d) for d in days])


def maintain(warehouse: IcebergWarehouse, config: MaintenanceConfig, now: datetime) -> list[Maintained]:
    """Maintain every table of the warehouse: in a Glue database `<prefix>_<layer>` (whatever
    the layer) and located under its URI (another deployment's tables are left alone). A table
    that fails is reported and the others go on."""
    s3 = boto3.client("s3", region_name=warehouse.region_name, endpoint_url=warehouse.endpoint_url)
    results = []
    session = warehouse.open_session()  # its DuckDB stages the rows compaction rewrites
    try:
        for table in _tables(session.catalog, warehouse):
            result = Maintained(".".join(table.name()))
            try:
                result.snapshots_expired = expire_snapshots(
                    table, now - timedelta(days=config.snapshot_retention_days), config.keep_last_snapshots)
                small = int(config.compact_small_file_mb * 2**20)
                compact(table.refresh(), session, config.compact_min_files, small, result)
                grace = timedelta(hours=config.orphan_grace_hours)
                result.orphans_removed = remove_orphans(table.refresh(), s3, now - grace)
            except Exception as exc:  # noqa: BLE001 (reported per table, the op fails at the end)
                log.exception("maintenance of %s failed", result.table)
                result.error = f"{type(exc).__name__}: {exc}"
            results.append(result)
    finally:
        session.close()
    return results


def _tables(catalog, warehouse: IcebergWarehouse):
    root = warehouse.warehouse_uri.rstrip("/") + "/"
    for (namespace, *_) in catalog.list_namespaces():
        if not namespace.startswith(f"{warehouse.glue_database_prefix}_"):
            continue
        try:
            identifiers = catalog.list_tables(namespace)
        except NoSuchNamespaceError:  # dropped meanwhile
            continue
        for identifier in identifiers:
            table = catalog.load_table(identifier)
            if table.location().startswith(root):
                yield table


def _bucket_key(uri: str) -> str:
    parsed = urlparse(uri)
    return f"{parsed.netloc}/{parsed.path.lstrip('/')}"


RESULT_COLUMNS = [TableColumn("table", "string")] + [
    TableColumn(name, "int") for name in ("snapshots_expired", "orphans_removed", "files_compacted", "files_written")
] + [TableColumn("compaction_skipped", "bool"), TableColumn("error", "string")]


@op(description="Expire old snapshots, remove orphan files and compact small files of every Iceberg table",
    out=Out(Nothing))  # results are the output's metadata; no IO manager stores anything
def maintain_iceberg_tables(context: OpExecutionContext, config: MaintenanceConfig, warehouse: IcebergWarehouse):
    results = maintain(warehouse, config, datetime.now(timezone.utc))
    for result in results:
        context.log.info(str(asdict(result)))
    totals = {key: sum(getattr(r, key) for r in results)
              for key in ("snapshots_expired", "orphans_removed", "files_compacted", "files_written")}
    metadata = {
        "tables": len(results),
        **totals,
        "compactions_skipped": sum(r.compaction_skipped for r in results),
        "per_table": MetadataValue.table([TableRecord(asdict(r)) for r in results], TableSchema(RESULT_COLUMNS)),
    }
    failed = [r.table for r in results if r.error]
    if failed:
        raise Failure(f"maintenance failed for {', '.join(failed)} (see per_table)", metadata=metadata)
    yield Output(None, metadata=metadata)


@job(description="Daily upkeep of the Iceberg tables (AWS mode): snapshots, orphan files, small files")
def iceberg_maintenance_job():
    maintain_iceberg_tables()


iceberg_maintenance_schedule = ScheduleDefinition(
    job=iceberg_maintenance_job, cron_schedule="30 3 * * *", execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
)

# For definitions.py in AWS mode, with the IcebergWarehouse bound to the resource key "warehouse".
maintenance_definitions = [iceberg_maintenance_job, iceberg_maintenance_schedule]
