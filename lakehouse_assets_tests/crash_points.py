"""Test-only code location: the project's Definitions with its IO manager made to SIGKILL its
own process group at one chosen point of one write. Nothing here is product code; the
product's IO managers are subclassed, their behaviour untouched until the chosen point.

    dagster asset materialize -m lakehouse_assets_tests.crash_points --select '*' ...

Chosen by environment variables (unset: no crash, the product's behaviour exactly):

- LAKEHOUSE_CRASH_POINT, one of
    local (DuckDB, `storage/duckdb_io.py`):
      duckdb_mid_write      a timer armed as the write's DELETE starts fires after
                            LAKEHOUSE_CRASH_DELAY_MS: the kill lands inside DELETE/INSERT, in
                            COMMIT, in closing the connection (DuckDB checkpoints on the last
                            close), or after; the report says which ("phase")
      duckdb_before_commit  DELETE and INSERT of the partition range done, COMMIT not yet
      duckdb_commit_unclosed  COMMIT returned, the connection not closed: the change is only
                            in DuckDB's write-ahead log, which the next open must replay
      duckdb_after_commit   committed and the connection closed, Dagster not yet told: the
                            point between one table and the next
    aws (S3 + Glue, `storage/s3_parquet_io.py`):
      s3_mid_upload         half of the new version's Parquet files uploaded
      s3_before_switch      every new file uploaded, no Glue partition switched yet
      s3_mid_switch         the first Glue batch (100 partitions) switched, the next not sent
      s3_before_gc          every Glue partition switched, the old versions not yet deleted
- LAKEHOUSE_CRASH_AT: which write of the run (1-based, in the order the run writes) crashes.
- LAKEHOUSE_CRASH_DELAY_MS: the timer of duckdb_mid_write.
- LAKEHOUSE_CRASH_REPORT: a file that receives, just before the kill, one JSON line saying
  where the crash happened (point, write number, asset, partitions, progress), so a test knows
  that the crash it asked for is the one that happened.
- LAKEHOUSE_CRASH_GC_GRACE_SECONDS: overrides the S3 IO manager's `garbage_grace_seconds`
  (a public config field), so a test can ask a write to collect the garbage crashes left.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import duckdb

from dagster import Definitions

import lakehouse_assets.definitions as product  # its `defs` stays out of this module's scope
from lakehouse_assets.storage.duckdb_io import (
    LakehouseDuckDbClient,
    LakehouseDuckDBIOManager,
    PolarsTypeHandler,
)
from lakehouse_assets.storage.glue import GlueTable
from lakehouse_assets.storage.s3_parquet_io import S3ParquetIOManager

LOCAL_POINTS = ("duckdb_mid_write", "duckdb_before_commit", "duckdb_commit_unclosed",
                "duckdb_after_commit")
AWS_POINTS = ("s3_mid_upload", "s3_before_switch", "s3_mid_switch", "s3_before_gc")
POINT = os.environ.get("LAKEHOUSE_CRASH_POINT", "")
AT = int(os.environ.get("LAKEHOUSE_CRASH_AT", "0") or 0)
DELAY_MS = float(os.environ.get("LAKEHOUSE_CRASH_DELAY_MS", "0") or 0)
REPORT = os.environ.get("LAKEHOUSE_CRASH_REPORT", "")
if POINT and POINT not in LOCAL_POINTS + AWS_POINTS:
    raise ValueError(f"LAKEHOUSE_CRASH_POINT {POINT!r} is none of {LOCAL_POINTS + AWS_POINTS}")


class _Run:
    """What this process has written so far (steps of a run execute in this one process)."""

    lock = threading.Lock()
    writes = 0
    # The write under way, replaced as a whole when the next begins. Its "phase" (duckdb):
    # "delete_insert" (DELETE started, INSERT not done), "commit" (the product's COMMIT
    # pending or under way), "close" (COMMIT returned; closing, with DuckDB's checkpoint, not
    # done), "done".
    current: dict = {}


def _begin_write(asset: str, partitions: str, **state) -> int:
    with _Run.lock:
        _Run.writes += 1
        _Run.current = {"write": _Run.writes, "asset": asset, "partitions": partitions, **state}
        return _Run.writes


def crash(point: str, current: dict | None = None, **detail) -> None:
    """Report where, then SIGKILL this process and everything it started (its process group,
    when the caller started it as the leader of its own group, as the tests do)."""
    current = dict(_Run.current if current is None else current)
    record = {"point": point, **current, **detail, "pid": os.getpid(), "time": time.time()}
    if REPORT:
        with open(REPORT, "a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())
    if os.getpgrp() == os.getpid():  # never the group of whoever launched us
        os.killpg(os.getpgrp(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def _armed(point: str, write: int) -> bool:
    return POINT == point and write == AT


def _describe(context) -> tuple[str, str]:
    asset = context.asset_key.to_user_string()
    if context.has_asset_partitions:
        keys = context.asset_partition_keys
        return asset, f"{keys[0]}...{keys[-1]}" if keys else ""
    return asset, ""


# ---- local: DuckDB ---------------------------------------------------------------------


class _WatchedConnection:
    """A DuckDB connection that notes when the product's COMMIT has returned (and may crash
    right there, before the product closes it); everything else goes to the connection."""

    def __init__(self, conn):
        self._conn = conn

    def __getattr__(self, name):
        return getattr(self._conn, name)

    def cursor(self):  # a run's writes are cursors of its one open database (RunDatabase)
        return _WatchedConnection(self._conn.cursor())

    def execute(self, query, *args, **kwargs):
        result = self._conn.execute(query, *args, **kwargs)
        current = _Run.current
        if query == "COMMIT" and current.get("open"):
            current["phase"] = "close"
            if _armed("duckdb_commit_unclosed", current["write"]):
                crash("duckdb_commit_unclosed")
        return result


@contextmanager
def _watched_connect() -> Iterator[None]:
    """While the product's connect() opens its connection, hand it a watched one."""
    real = duckdb.connect
    duckdb.connect = lambda *args, **kwargs: _WatchedConnection(real(*args, **kwargs))
    try:
        yield
    finally:
        duckdb.connect = real


class CrashingDuckDbClient(LakehouseDuckDbClient):
    @staticmethod
    @contextmanager
    def connect(context, table_slice) -> Iterator:
        with ExitStack() as stack:
            with _watched_connect():
                conn = stack.enter_context(LakehouseDuckDbClient.connect(context, table_slice))
            yield conn
        # The product's context has committed and closed the connection.
        current = _Run.current
        if current.get("open"):
            current["phase"] = "done"
            current["open"] = False
            if _armed("duckdb_after_commit", current["write"]):
                crash("duckdb_after_commit")

    @staticmethod
    def delete_table_slice(context, table_slice, connection) -> None:
        # DbIOManager.handle_output: connect, ensure schema, delete, handler.handle_output.
        write = _begin_write(*_describe(context), phase="delete_insert", open=True)
        if _armed("duckdb_mid_write", write):
            def fire() -> None:
                # The armed write may be over: the kill then lands in a later one (reported).
                now = _Run.current  # one consistent dict: write number and its phase
                crash("duckdb_mid_write", now, armed_write=write, delay_ms=DELAY_MS)

            timer = threading.Timer(DELAY_MS / 1000, fire)
            timer.daemon = True
            timer.start()
        LakehouseDuckDbClient.delete_table_slice(context, table_slice, connection)


class CrashingPolarsTypeHandler(PolarsTypeHandler):
    def handle_output(self, context, table_slice, obj, connection):
        metadata = super().handle_output(context, table_slice, obj, connection)
        _Run.current["phase"] = "commit"  # what is left: the product's COMMIT and close
        if _armed("duckdb_before_commit", _Run.current["write"]):
            rows = connection.execute(
                f'SELECT count(*) FROM "{table_slice.schema}"."{table_slice.table}"'
            ).fetchall()[0][0]
            crash("duckdb_before_commit", rows_in_open_transaction=rows, frame_rows=len(obj))
        return metadata


class CrashingDuckDBIOManager(LakehouseDuckDBIOManager):
    @staticmethod
    def type_handlers():
        return [CrashingPolarsTypeHandler()]

    @staticmethod
    def db_client():
        return CrashingDuckDbClient()


# ---- aws: S3 + Glue --------------------------------------------------------------------


class _CrashingGlueClient:
    """boto3's Glue client, except that the second partition batch of the armed write never
    leaves: the first batch is switched, the rest are not."""

    def __init__(self, client):
        self._client = client

    def __getattr__(self, name):
        return getattr(self._client, name)

    def _batch(self, name: str, **kwargs):
        current = _Run.current
        if _armed("s3_mid_switch", current.get("write", 0)):
            current["batches_sent"] = current.get("batches_sent", 0)
            if current["batches_sent"] >= 1:
                crash("s3_mid_switch", next_call=name,
                      partitions_in_next_batch=len(kwargs.get("PartitionInputList") or kwargs.get("Entries")))
            current["batches_sent"] += 1
        return getattr(self._client, name)(**kwargs)

    def batch_create_partition(self, **kwargs):
        return self._batch("batch_create_partition", **kwargs)

    def batch_update_partition(self, **kwargs):
        return self._batch("batch_update_partition", **kwargs)


class CrashingS3ParquetIOManager(S3ParquetIOManager):
    def handle_output(self, context, obj) -> None:
        _begin_write(*_describe(context))
        super().handle_output(context, obj)

    def _write(self, frames, version: str) -> None:
        frames = list(frames)
        write = _Run.current.get("write", 0)
        if _armed("s3_mid_upload", write):
            half = frames[: max(1, len(frames) // 2)]
            super()._write(half, version)
            crash("s3_mid_upload", files_uploaded=len(half), files_in_version=len(frames), version=version)
        super()._write(frames, version)
        if _armed("s3_before_switch", write):
            crash("s3_before_switch", files_uploaded=len(frames), version=version)

    def _collect_garbage(self, root: str, current: set[str], obsolete: set[str]) -> None:
        if _armed("s3_before_gc", _Run.current.get("write", 0)):
            crash("s3_before_gc", obsolete_versions=len(obsolete), current_versions=len(current))
        super()._collect_garbage(root, current, obsolete)

    def _table(self, path: list[str]) -> GlueTable:
        table = super()._table(path)
        return GlueTable(_CrashingGlueClient(table.client), table.database, table.name)


# ---- the code location -----------------------------------------------------------------


def _crashing_io_manager(shipped):
    fields = shipped._get_non_default_public_field_values()  # EnvVars stay EnvVars
    if isinstance(shipped, LakehouseDuckDBIOManager):
        return CrashingDuckDBIOManager(**fields)
    if isinstance(shipped, S3ParquetIOManager):
        grace = os.environ.get("LAKEHOUSE_CRASH_GC_GRACE_SECONDS")
        if grace is not None:
            fields["garbage_grace_seconds"] = int(grace)
        return CrashingS3ParquetIOManager(**fields)
    raise TypeError(f"no crashing variant of {type(shipped).__name__}")


defs = Definitions(
    assets=product.defs.assets,
    asset_checks=product.defs.asset_checks,
    sensors=product.defs.sensors,
    schedules=product.defs.schedules,
    jobs=product.defs.jobs,
    resources={
        **product.defs.resources,
        "io_manager": _crashing_io_manager(product.defs.resources["io_manager"]),
    },
    executor=product.defs.executor,
)
