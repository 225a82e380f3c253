"""The AWS warehouse: every table an Apache Iceberg table on S3, registered in the Glue Data
Catalog through pyiceberg; data work in a scratch DuckDB database that spills to disk.

- A table `<layer>.<name>` is `<prefix>_<layer>.<name>` in Glue, at `<warehouse>/<layer>/<name>`,
  partitioned by day on its partition column (iceberg_tables.py).
- `scan` streams the files a Scope's filter keeps (partitions pruned) into a DuckDB temp table.
- `replace` is one snapshot in one catalog commit: the new rows' files, the scope's files
  dropped, and files holding rows on both sides rewritten without the scope's rows. A commit
  that loses a race is retried by pyiceberg when the other writer touched other rows, and
  re-planned here (against the new snapshot) when it touched the same rows: concurrent
  writers lose nothing and double nothing, or fail loudly after a bounded number of tries.
- Readers never block: a read-only session is the same thing unable to write.
"""

from __future__ import annotations

import logging
import random
import shutil
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import duckdb
import polars as pl
from pydantic import Field
from pyiceberg.exceptions import CommitFailedException, ValidationException
from pyiceberg.table import Table

from lakehouse_assets.schemas.types import duckdb_type
from lakehouse_assets.storage import iceberg_files as files
from lakehouse_assets.storage import iceberg_tables as tables
from lakehouse_assets.storage.duckdb_warehouse import configure
from lakehouse_assets.storage.scope_sql import scope_predicate, temp_name
from lakehouse_assets.storage.tables import Rows, Scope, TableRef, TableSpec, WriteResult, with_key_frame
from lakehouse_assets.storage.warehouse import Warehouse
from lakehouse_assets.values import quote_ident, register

log = logging.getLogger(__name__)

# Plans of one replace; each commit also has pyiceberg's own retries. The K runs of a fan-out
# phase commit to the same small state tables at once, one winner per round: room for many rounds.
COMMIT_ATTEMPTS = 16


class ConcurrentWriteError(RuntimeError):
    """Other writers kept replacing the same rows; nothing of this write landed."""


class IcebergSession:
    def __init__(self, catalog, prefix: str, warehouse_uri: str, scratch: Path, memory_limit: str,
                 read_only: bool = False):
        self.catalog, self.prefix, self.warehouse_uri = catalog, prefix, warehouse_uri
        self.read_only = read_only
        self._scratch = scratch
        self.con = duckdb.connect(str(scratch / "scratch.duckdb"))
        configure(self.con, memory_limit, str(scratch / "spill"))

    # ---- reading ---------------------------------------------------------------------

    def table(self, ref: TableRef) -> Table | None:
        return tables.load(self.catalog, self.prefix, ref)

    def exists(self, ref: TableRef) -> bool:
        return self.catalog.table_exists(tables.identifier(self.prefix, ref))

    def scan(self, spec: TableSpec, scope: Scope = Scope(), columns: Sequence[str] | None = None,
             snapshot_id: int | None = None) -> str:
        """The rows in `scope` as a DuckDB temp table; `snapshot_id` reads the table as it was
        when that snapshot was committed (time travel)."""
        scope = with_key_frame(scope, self.con)  # pruning needs the key values themselves
        wanted = list(columns or spec.columns)
        unknown = [c for c in wanted if c not in spec.columns]
        if unknown:
            raise ValueError(f"{spec.ref} has no column(s) {', '.join(unknown)}")
        table = self.table(spec.ref)
        if table is None or scope.is_nothing or (snapshot_id is None and table.current_snapshot() is None):
            return self._empty(spec, wanted)
        schema = table.schema()
        if snapshot_id is not None:
            snapshot = table.snapshot_by_id(snapshot_id)
            if snapshot is None:
                raise ValueError(f"{spec.ref} has no snapshot {snapshot_id} (expired, or of another table)")
            schema = table.schemas()[snapshot.schema_id]
        present = set(schema.column_names)
        needed = [c for c in spec.columns if c in present and (c in wanted or c in _scope_columns(spec, scope))]
        scan = table.scan(row_filter=tables.scope_filter(scope, spec, schema),
                          selected_fields=tuple(needed or schema.column_names[:1]), snapshot_id=snapshot_id)
        # Columns read as declared, NULL where the table lacks them; the filter pruned files and
        # rows, and DuckDB finishes the scope exactly (keys of several columns).
        inner = ", ".join(f"CAST({quote_ident(c)} AS {duckdb_type(spec.columns[c])}) AS {quote_ident(c)}"
                          if c in present else _null(spec, c)
                          for c in spec.columns if c in needed or c not in present)
        select = ", ".join(quote_ident(c) for c in wanted)
        registered: list[str] = []
        try:
            where = scope_predicate(self.con, scope, spec, registered)
            return files.load(self.con, files.batches(table, scan.plan_files(), scan.projection()),
                              lambda source: f"SELECT {select} FROM (SELECT {inner} FROM {source}) WHERE {where}")
        finally:
            for name in registered:
                self.con.unregister(name)

    def _empty(self, spec: TableSpec, wanted: list[str]) -> str:
        name = temp_name("scan")
        self.con.execute(f"CREATE TEMP TABLE {name} AS SELECT {', '.join(_null(spec, c) for c in wanted)} WHERE false")
        return name

    def row_count(self, ref: TableRef) -> int:
        table = self.table(ref)
        snapshot = table.current_snapshot() if table is not None else None
        if snapshot is None:
            return 0
        if int(snapshot.summary.get("total-delete-files", "0")):  # deletes written by another engine
            return table.scan().count()
        return int(snapshot.summary["total-records"])

    # ---- writing ---------------------------------------------------------------------

    def replace(self, spec: TableSpec, rows: Rows, scope: Scope) -> WriteResult:
        if self.read_only:
            raise PermissionError("a read-only look at the warehouse cannot write")
        scope = with_key_frame(scope, self.con)
        existing = self.table(spec.ref)
        if existing is not None:
            tables.check_table(existing, spec)  # refuse before the rows are consumed
        staged = self._stage(spec, rows)
        try:
            table = tables.ensure_table(self.catalog, self.prefix, self.warehouse_uri, spec)
            new, inserted = files.write(table, self.con, staged)
        finally:
            self.con.execute(f"DROP TABLE IF EXISTS {staged}")
        try:
            return self._commit(spec, scope, table, new, inserted)
        except ConcurrentWriteError:
            files.delete_files(table, new)  # no attempt landed: the new files are no one's
            raise

    def _commit(self, spec: TableSpec, scope: Scope, table: Table, new: list, inserted: int) -> WriteResult:
        conflict = tables.scope_filter(scope, spec, table.schema())
        write_id = str(uuid.uuid4())  # names this write's snapshot, whichever attempt lands
        properties = {"lakehouse.scope": scope.describe(), "lakehouse.write-id": write_id}
        for attempt in range(COMMIT_ATTEMPTS):
            if attempt:  # another writer replaced some of the same rows: plan against its snapshot
                time.sleep(random.uniform(0.05, 0.2) * 2 ** min(attempt, 5))  # at most 6.4 s, jittered
            plan = files.plan_delete(table, spec, scope, conflict, self.con)
            try:
                table = files.commit(table, plan.drop, plan.add + new,
                                     conflict, {**properties, "lakehouse.rows-replaced": str(plan.deleted)})
            except (CommitFailedException, ValidationException) as exc:
                table = table.refresh()
                if _landed(table, write_id) is None:  # so the files of this attempt are no one's
                    files.delete_files(table, plan.add)
                    log.warning("%s: commit %d lost to a concurrent writer of the same rows (%s); re-planning",
                                spec.ref, attempt + 1, exc)
                    continue
            snapshot = _landed(table, write_id)
            return WriteResult(deleted=int(snapshot.summary["lakehouse.rows-replaced"]), inserted=inserted,
                               total_rows=int(snapshot.summary["total-records"]), snapshot_id=snapshot.snapshot_id)
        raise ConcurrentWriteError(
            f"{spec.ref}: {COMMIT_ATTEMPTS} commits of {scope.describe()} each lost to concurrent writers "
            "of the same rows; nothing of this write landed, run it again"
        )

    def _stage(self, spec: TableSpec, rows: Rows) -> str:
        """The rows in a DuckDB temp table of the declared types; frames are taken one at a
        time (and let go), so a big write sits in DuckDB, which spills, not in memory."""
        staged = temp_name("stage")
        columns = ", ".join(f"{quote_ident(c)} {duckdb_type(t)}" for c, t in spec.columns.items())
        self.con.execute(f"CREATE TEMP TABLE {staged} ({columns})")
        try:
            if isinstance(rows, str):
                self._insert(spec, staged, rows)
                return staged
            for frame in [rows] if isinstance(rows, pl.DataFrame) else rows:
                source = temp_name("rows")
                register(self.con, source, frame)
                del frame
                try:
                    self._insert(spec, staged, source)
                finally:
                    self.con.unregister(source)
        except BaseException:
            self.con.execute(f"DROP TABLE IF EXISTS {staged}")
            raise
        return staged

    def _insert(self, spec: TableSpec, staged: str, source: str) -> None:
        have = [r[0] for r in self.con.execute(f"SELECT column_name FROM (DESCRIBE {source})").fetchall()]
        extra, missing = [c for c in have if c not in spec.columns], [c for c in spec.columns if c not in have]
        if extra or missing:
            raise ValueError(f"rows for {spec.ref} do not match its declared columns"
                             + (f"; not declared: {', '.join(extra)}" if extra else "")
                             + (f"; missing: {', '.join(missing)}" if missing else ""))
        columns = ", ".join(map(quote_ident, spec.columns))
        self.con.execute(f"INSERT INTO {staged} BY NAME SELECT {columns} FROM {source}")

    def close(self) -> None:
        self.con.close()
        shutil.rmtree(self._scratch, ignore_errors=True)


def _landed(table: Table, write_id: str):
    """The snapshot a write committed, if any (a commit whose answer was lost may have landed)."""
    return next((s for s in table.snapshots() if s.summary.get("lakehouse.write-id") == write_id), None)


def _null(spec: TableSpec, column: str) -> str:
    return f"CAST(NULL AS {duckdb_type(spec.columns[column])}) AS {quote_ident(column)}"


def _scope_columns(spec: TableSpec, scope: Scope) -> set[str]:
    days = {spec.partition_column} if scope.days is not None and spec.partition_column else set()
    return days | ({"_source_file"} if scope.files is not None else set()) | set(
        scope.keys.columns if scope.keys is not None else ())


class IcebergWarehouse(Warehouse):
    """Iceberg tables on S3 in the Glue Data Catalog (LAKEHOUSE_ENV=aws)."""

    warehouse_uri: str = Field(description="s3://bucket/prefix under which each table lives at <layer>/<name>")
    glue_database_prefix: str = Field(default="lakehouse", description="Glue databases are <prefix>_<layer>")
    region_name: str | None = Field(default=None, description="AWS region of the bucket and the catalog")
    endpoint_url: str | None = Field(default=None, description="S3 and Glue endpoint override (tests); None on AWS")
    scratch_dir: str | None = Field(
        default=None, description="Where the scratch DuckDB and its spill go (default: the system's temp dir)")

    def catalog(self):
        return tables.glue_catalog(self.region_name, self.endpoint_url)

    def _open(self, read_only: bool) -> IcebergSession:
        if self.scratch_dir:
            Path(self.scratch_dir).mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix="lakehouse-iceberg-", dir=self.scratch_dir))
        return IcebergSession(self.catalog(), self.glue_database_prefix, self.warehouse_uri, scratch,
                              self.memory_limit, read_only=read_only)

    def open_session(self) -> IcebergSession:
        return self._open(read_only=False)

    def open_reader(self) -> IcebergSession:
        return self._open(read_only=True)

    def describe(self) -> str:
        return f"Iceberg tables under {self.warehouse_uri} in Glue databases {self.glue_database_prefix}_<layer>"
