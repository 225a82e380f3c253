"""Test-only code location: the project's Definitions with its warehouse resource subclassed
so that the run's session journals every write and can SIGKILL its own process group at one
chosen point of one write. Nothing here is product code; until the chosen point the product
runs untouched (the session and its connection are the product's, only watched).

    dagster asset materialize -m lakehouse_assets_tests.system.crash.crash_points --select '*' ...

Environment (unset: no kill, only the journal if asked for):

- LAKEHOUSE_CRASH_JOURNAL: a file that gets one JSON line per event of every write, written
  and fsynced before the run goes on: {"write": n, "table": "silver.tenants", "event": e}.
  Events: begin (replace called), deleted, inserted (a batch), commit (COMMIT sent, or the
  Glue UpdateTable that switches an Iceberg table), committed (it returned: the write is
  durable from here on), returned (replace returned), kill. A write is committed exactly
  when its "committed" line is there; one with "commit" but not "committed" is in doubt.
- LAKEHOUSE_CRASH_POINT: where to kill, at the write chosen by LAKEHOUSE_CRASH_AT:
    before_write   replace called, nothing done (the previous table written and logged)
    after_delete   DuckDB: the scope's rows deleted inside the transaction, nothing inserted
    mid_insert     DuckDB: the first batch of rows inserted, COMMIT not sent
    before_commit  every row in; DuckDB: COMMIT not sent; Iceberg: data files, manifests
                   and the new metadata file written to S3, Glue not switched
    in_commit      a timer started as COMMIT is sent fires after LAKEHOUSE_CRASH_DELAY_MS:
                   the kill lands inside COMMIT or after it (the journal says which)
    after_commit   COMMIT (Glue's switch) returned and journaled; replace has not returned,
                   so Dagster has not been told
- LAKEHOUSE_CRASH_AT: "<layer>.<table>" or "<layer>.<table>#k": the first (k-th) write of
  that table in this run.
- LAKEHOUSE_CRASH_BATCH_BYTES: bronze reads landing files in batches of this many bytes (the
  product: 64 MiB), so that a small zone's bronze tables are written in several INSERTs.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time

from dagster import Definitions

import lakehouse_assets.definitions as product  # its `defs` stays out of this module's scope
from lakehouse_assets.storage.warehouse import DuckDBWarehouse, Warehouse

POINTS = ("before_write", "after_delete", "mid_insert", "before_commit", "in_commit", "after_commit")
POINT = os.environ.get("LAKEHOUSE_CRASH_POINT", "")
AT = os.environ.get("LAKEHOUSE_CRASH_AT", "")
DELAY_MS = float(os.environ.get("LAKEHOUSE_CRASH_DELAY_MS", "0") or 0)
JOURNAL = os.environ.get("LAKEHOUSE_CRASH_JOURNAL", "")
if POINT and POINT not in POINTS:
    raise ValueError(f"LAKEHOUSE_CRASH_POINT {POINT!r} is none of {POINTS}")
if os.environ.get("LAKEHOUSE_CRASH_BATCH_BYTES"):
    from lakehouse_assets.landing import reader

    reader.BATCH_BYTES = int(os.environ["LAKEHOUSE_CRASH_BATCH_BYTES"])


class Journal:
    """Each line on disk before the caller goes on: what the test reads after a kill is
    exactly what had happened, never what was about to."""

    lock = threading.Lock()
    fd: int | None = None
    writes = 0
    seen: dict[str, int] = {}  # writes per table so far
    current: dict = {}  # the write under way

    @classmethod
    def note(cls, event: str, **detail) -> None:
        line = json.dumps({**cls.current, "event": event, **detail, "time": time.time()}) + "\n"
        with cls.lock:
            if not JOURNAL:
                return
            if cls.fd is None:
                cls.fd = os.open(JOURNAL, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.write(cls.fd, line.encode())
            os.fsync(cls.fd)

    @classmethod
    def begin(cls, table: str) -> bool:
        """A new write; whether it is the armed one."""
        cls.writes += 1
        cls.seen[table] = cls.seen.get(table, 0) + 1
        cls.current = {"write": cls.writes, "table": table, "pid": os.getpid()}
        cls.note("begin")
        return bool(POINT) and AT in (table, f"{table}#{cls.seen[table]}")


def kill(point: str, **detail) -> None:
    """Journal where, then SIGKILL this process and all it started (its process group when
    the test started it as a group leader; never the group of whoever launched us)."""
    Journal.note("kill", point=point, **detail)
    if os.getpgrp() == os.getpid():
        os.killpg(os.getpgrp(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


class Write:
    """What the armed write does at each of its points."""

    def __init__(self, armed: bool):
        self.armed = armed
        self.inserts = 0

    def at(self, point: str) -> None:
        if self.armed and POINT == point:
            kill(point)

    def commit_sent(self, **detail) -> None:
        Journal.note("commit", **detail)
        self.at("before_commit")
        if self.armed and POINT == "in_commit":
            timer = threading.Timer(DELAY_MS / 1000, kill, args=("in_commit",), kwargs={"delay_ms": DELAY_MS})
            timer.daemon = True
            timer.start()

    def commit_returned(self) -> None:
        Journal.note("committed")
        self.at("after_commit")


# ---- DuckDB ----------------------------------------------------------------------------


class WatchedConnection:
    """The session's DuckDB connection during a replace: each statement of the write is seen
    as it returns; everything else goes straight to the connection."""

    def __init__(self, con, write: Write):
        self._con, self._write = con, write

    def __getattr__(self, name):
        return getattr(self._con, name)

    def execute(self, query, *args, **kwargs):
        statement = query.lstrip().split(" ", 1)[0].upper()
        if statement == "COMMIT":
            self._write.commit_sent()
        result = self._con.execute(query, *args, **kwargs)
        if statement == "DELETE":
            Journal.note("deleted")
            self._write.at("after_delete")
        elif statement == "INSERT":
            self._write.inserts += 1
            Journal.note("inserted", batch=self._write.inserts)
            if self._write.inserts == 1:
                self._write.at("mid_insert")
        elif statement == "COMMIT":
            self._write.commit_returned()
        return result


class JournaledSession:
    """The product's session, its replaces journaled (and one of them killed)."""

    def __init__(self, inner):
        self._inner = inner

    def __getattr__(self, name):
        return getattr(self._inner, name)

    @property
    def con(self):
        return self._inner.con

    def replace(self, spec, rows, scope):
        write = Write(Journal.begin(str(spec.ref)))
        write.at("before_write")
        result = self._replace(write, spec, rows, scope)
        Journal.note("returned", inserted=result.inserted, total=result.total_rows)
        return result

    def _replace(self, write: Write, spec, rows, scope):
        real = self._inner.con
        self._inner.con = WatchedConnection(real, write)
        try:
            return self._inner.replace(spec, rows, scope)
        finally:
            self._inner.con = real


class CrashingDuckDBWarehouse(DuckDBWarehouse):
    def open_session(self):
        return JournaledSession(super().open_session())


# ---- Iceberg ---------------------------------------------------------------------------


class WatchedGlue:
    """pyiceberg's Glue client: the UpdateTable that switches a table to its new metadata is
    the commit of an Iceberg write."""

    def __init__(self, client, session: IcebergJournaledSession):
        self._client, self._session = client, session

    def __getattr__(self, name):
        return getattr(self._client, name)

    def update_table(self, **kwargs):
        write = self._session.write
        if write is None:
            return self._client.update_table(**kwargs)
        write.commit_sent(metadata=kwargs["TableInput"]["Parameters"]["metadata_location"])
        result = self._client.update_table(**kwargs)
        write.commit_returned()
        return result


class IcebergJournaledSession(JournaledSession):
    write: Write | None = None

    def __init__(self, inner):
        super().__init__(inner)
        inner.catalog.glue = WatchedGlue(inner.catalog.glue, self)

    def _replace(self, write: Write, spec, rows, scope):
        self.write = write
        try:
            return self._inner.replace(spec, rows, scope)
        finally:
            self.write = None


def crashing(shipped: Warehouse) -> Warehouse:
    fields = {name: getattr(shipped, name) for name in type(shipped).model_fields}  # EnvVars stay EnvVars
    if isinstance(shipped, DuckDBWarehouse):
        return CrashingDuckDBWarehouse(**fields)
    from lakehouse_assets.storage.iceberg_warehouse import IcebergWarehouse

    class CrashingIcebergWarehouse(IcebergWarehouse):
        def open_session(self):
            return IcebergJournaledSession(super().open_session())

    if isinstance(shipped, IcebergWarehouse):
        return CrashingIcebergWarehouse(**fields)
    raise TypeError(f"no crashing variant of {type(shipped).__name__}")


defs = Definitions(
    assets=product.defs.assets,
    asset_checks=product.defs.asset_checks,
    sensors=product.defs.sensors,
    schedules=product.defs.schedules,
    jobs=product.defs.jobs,
    resources={**product.defs.resources, "warehouse": crashing(product.defs.resources["warehouse"])},
    executor=product.defs.executor,
)


def execute_request(path: str) -> int:
    """Execute a landing sensor's request (JSON: selection, tags, run_key) as the daemon would:
    one run of the chosen assets and checks on the instance at DAGSTER_HOME, in-process."""
    from dagster import AssetKey, DagsterInstance, materialize

    request = json.loads(open(path).read())
    result = materialize(
        [*defs.assets, *defs.asset_checks], selection=[AssetKey.from_user_string(k) for k in request["selection"]],
        resources=defs.resources, instance=DagsterInstance.get(), raise_on_error=False,
        tags={**request["tags"], "dagster/run_key": request["run_key"]},
    )
    return 0 if result.success else 1


if __name__ == "__main__":
    import sys

    raise SystemExit(execute_request(sys.argv[1]))
