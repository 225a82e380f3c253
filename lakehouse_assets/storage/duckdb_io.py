"""The local warehouse: polars frames in a DuckDB file, one table per asset.

Built on dagster-duckdb(-polars), which as of 0.29 with duckdb 2.0 breaks in ways that lose
or corrupt data. Everything it gets wrong is fixed here, in one place:

- loads call `DuckDBPyConnection.arrow()`, removed in duckdb 2.0: we fetch with `.pl()`;
- writes insert by column position: we `INSERT ... BY NAME` (and add new columns first);
- delete-then-insert is two transactions: one transaction here, so a crash leaves the old
  partition or the new one, never neither or both;
- an empty frame deletes the partition and writes nothing (not even the table): we replace
  the partition with nothing on purpose and create the table from the frame's schema;
- the partition filter compares the column with timestamp strings, which silently
  mis-filters a text column: we compare typed values and refuse non-date columns, and refuse
  rows that fall outside the partitions being written (they would never be replaced);
- a process killed while DuckDB creates the file leaves one nothing can open: we create it
  whole under another name, and wait on another writer's lock but fail at once otherwise;
- every load and write opens the database anew, and opening one costs ~25 ms (DuckDB's
  start-up, not the file) and closing it a checkpoint: a run's loads and writes share one
  open database (RunDatabase).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb
import polars as pl
from dagster import DagsterInvariantViolationError, InputContext, OutputContext
from dagster._core.definitions.partitions.utils import TimeWindow
from dagster._core.storage.db_io_manager import (
    DbIOManager,
    DbTypeHandler,
    TablePartitionDimension,
    TableSlice,
)
from dagster_duckdb import DuckDBIOManager
from dagster_duckdb.io_manager import DuckDbClient

from lakehouse_assets.storage.row_counts import row_counts
from lakehouse_assets.values import quote_ident, quote_literal, register

DATE_TYPES = ("DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP_NS", "TIMESTAMP_MS")


def qualified(table_slice: TableSlice) -> str:
    return f"{quote_ident(table_slice.schema)}.{quote_ident(table_slice.table)}"


def table_exists(conn, table_slice: TableSlice) -> bool:
    return bool(column_types(conn, table_slice))  # a table has at least one column


def column_types(conn, table_slice: TableSlice) -> dict[str, str]:
    # duckdb_columns() is what information_schema.columns is a view of, at a third of its
    # cost; every load and write asks a few times.
    rows = conn.execute(
        "SELECT column_name, data_type FROM duckdb_columns() "
        "WHERE schema_name = ? AND table_name = ? ORDER BY column_index",
        [table_slice.schema, table_slice.table],
    ).fetchall()
    return dict(rows)


def _bounds(window: TimeWindow) -> tuple[str, str]:
    fmt = "%Y-%m-%d %H:%M:%S"
    return window.start.strftime(fmt), window.end.strftime(fmt)


def partition_filter(dimensions: Sequence[TablePartitionDimension], types: dict[str, str]) -> str:
    """WHERE clause selecting the partitions, comparing values of the column's own type."""
    clauses = []
    for dim in dimensions:
        col = dim.partition_expr
        if isinstance(dim.partitions, TimeWindow):
            col_type = types.get(col, "DATE")
            if col_type not in DATE_TYPES:
                raise TypeError(
                    f"partition column {col!r} is {col_type}; a daily partition needs a DATE or "
                    "TIMESTAMP column (comparing text with dates mis-files rows)"
                )
            start, end = _bounds(dim.partitions)
            literal_type = "TIMESTAMPTZ" if "ZONE" in col_type else "TIMESTAMP"
            clauses.append(
                f"{quote_ident(col)} >= {literal_type} '{start}' "
                f"AND {quote_ident(col)} < {literal_type} '{end}'"
            )
        else:
            keys = ", ".join(quote_literal(str(k)) for k in dim.partitions)
            clauses.append(f"{quote_ident(col)} IN ({keys})")
    return " AND ".join(clauses) if clauses else "true"


HEADER_BYTES = 3 * 4096  # a DuckDB file starts with three 4 KiB headers
LOCK_WAIT = [min(0.2 * 1.5**i, 5.0) for i in range(30)]  # about two minutes in all


def create_whole(path: Path) -> None:
    """Create the warehouse file so that it exists whole or not at all: DuckDB writes a new
    file's headers in place, and a process killed meanwhile leaves a file no one can open.
    It is made under another name and linked into place; a file left short by such a crash
    (before this, or by another tool) is moved aside and made again."""
    path.parent.mkdir(parents=True, exist_ok=True)  # a fresh checkout has none
    for stale in path.parent.glob(f".{path.name}.*.creating"):  # of a process killed creating it
        if not _alive(stale.name.split(".")[-2]):
            stale.unlink(missing_ok=True)
    if path.exists():
        if path.stat().st_size >= HEADER_BYTES or _opens(path):
            return
        path.rename(path.with_name(f"{path.name}.incomplete-{int(time.time())}"))
    temporary = path.with_name(f".{path.name}.{os.getpid()}.creating")
    try:
        duckdb.connect(str(temporary)).close()
        os.link(temporary, path)
    except FileExistsError:
        pass  # another process made it first
    finally:
        temporary.unlink(missing_ok=True)


def _alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
        return True
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True


def _opens(path: Path) -> bool:
    try:
        duckdb.connect(str(path), read_only=True).close()
        return True
    except duckdb.Error as exc:
        return "lock" in str(exc).lower()  # held by a writer: it is a database


def connect_when_free(database: str, config: dict) -> duckdb.DuckDBPyConnection:
    """DuckDB lets one process write a file: wait for another run's transaction to end
    (a lock conflict), fail at once on anything else."""
    for delay in [*LOCK_WAIT, None]:
        try:
            return duckdb.connect(database=database, config=config)
        except duckdb.Error as exc:
            if "lock" not in str(exc).lower() or delay is None:
                raise
            time.sleep(delay)
    raise AssertionError("unreachable")


class RunDatabase:
    """The warehouse held open for one run: its steps' loads and writes are connections to it
    (under 1 ms each, against ~25 ms to open the database and, on closing it, a checkpoint
    of what the step wrote). Each is still its own transaction. The file stays locked from
    the run's first load or write until its end (`release`); runs go one at a time anyway
    (data/dagster_home/dagster.yaml), and nothing else of ours opens the warehouse. Held per
    step, it was opened and closed (a checkpoint) 19 times in a scale-1 backfill: 1.2 s."""

    # DuckDB keeps the blocks a query read or wrote in its buffer cache while the database is
    # open: after moving this much the database is closed (reopening costs nothing next to it),
    # so a run does not hold a big table twice, in the cache and in polars.
    BIG_BYTES = 64 * 2**20

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple | None = None
        self._database: duckdb.DuckDBPyConnection | None = None
        self._moved_big = False

    def moved(self, frame: pl.DataFrame) -> None:
        """A load or write of this frame is under way on the open database."""
        if frame.estimated_size() >= self.BIG_BYTES:
            self._moved_big = True

    def done(self) -> None:
        """A load or write is over: let go of the database if it moved a big frame."""
        with self._lock:
            if self._moved_big:
                self._close()

    def connect(self, database: str, config: dict, run_id: str | None) -> duckdb.DuckDBPyConnection:
        if run_id is None:  # outside a run (a test's own context): nothing to share
            return connect_when_free(database, config)
        key = (database, tuple(sorted(config.items())), run_id, os.getpid())
        with self._lock:
            if self._key != key:
                self._close()
                self._database = connect_when_free(database, config)
                self._key = key
            return self._database.cursor()

    def release(self, database: str) -> None:
        with self._lock:
            if self._key is not None and self._key[0] == database:
                self._close()

    def _close(self) -> None:
        if self._database is not None and self._key is not None and self._key[3] == os.getpid():
            self._database.close()  # not in a forked child: the parent owns it
        self._database, self._key, self._moved_big = None, None, False


RUN_DATABASE = RunDatabase()


def _run_id(context: InputContext | OutputContext) -> str | None:
    """The run a load or write is part of; None outside one (a test's own context). An
    InputContext names it only through its step context."""
    try:
        if isinstance(context, InputContext):
            return context.step_context.run_id
        if isinstance(context, OutputContext):
            return context.run_id
    except DagsterInvariantViolationError:
        pass
    return None


class LakehouseDuckDbClient(DuckDbClient):
    """Connects in UTC inside one transaction, so a step's delete and insert commit together."""

    @staticmethod
    @contextmanager
    def connect(context, _table_slice) -> Iterator[duckdb.DuckDBPyConnection]:
        config = {"custom_user_agent": "lakehouse_assets", **context.resource_config["connection_config"]}
        database = context.resource_config["database"]
        if database == ":memory:":
            conn = connect_when_free(database, config)
        else:
            create_whole(Path(database))
            conn = RUN_DATABASE.connect(database, config, _run_id(context))
        try:
            conn.execute("SET TimeZone = 'UTC'").fetchall()
            conn.execute("BEGIN TRANSACTION").fetchall()
            yield conn
            conn.execute("COMMIT").fetchall()
        except BaseException:
            conn.execute("ROLLBACK").fetchall()
            raise
        finally:
            conn.close()
            RUN_DATABASE.done()

    @staticmethod
    def ensure_schema_exists(context, table_slice: TableSlice, connection) -> None:
        connection.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(table_slice.schema)}").fetchall()

    @staticmethod
    def delete_table_slice(context, table_slice: TableSlice, connection) -> None:
        if not table_exists(connection, table_slice):
            return
        where = partition_filter(
            table_slice.partition_dimensions or [], column_types(connection, table_slice)
        )
        connection.execute(f"DELETE FROM {qualified(table_slice)} WHERE {where}").fetchall()

    @staticmethod
    def get_select_statement(table_slice: TableSlice) -> str:
        cols = ", ".join(quote_ident(c) for c in table_slice.columns) if table_slice.columns else "*"
        where = partition_filter(table_slice.partition_dimensions or [], {})
        return f"SELECT {cols} FROM {qualified(table_slice)} WHERE {where}"


class PolarsTypeHandler(DbTypeHandler[pl.DataFrame]):
    def handle_output(self, context: OutputContext, table_slice: TableSlice, obj, connection):
        RUN_DATABASE.moved(obj)
        register(connection, "__frame", obj)
        target = qualified(table_slice)
        exists = table_exists(connection, table_slice)
        if table_slice.partition_dimensions:
            self._refuse_rows_outside(connection, table_slice, exists)
        if not exists:
            connection.execute(f"CREATE TABLE {target} AS SELECT * FROM __frame").fetchall()
        else:
            existing = column_types(connection, table_slice)
            incoming = connection.execute(
                "SELECT column_name, column_type FROM (DESCRIBE __frame)"
            ).fetchall()
            for name, dtype in incoming:
                if name not in existing:  # a declaration gained a column: grow the table
                    connection.execute(f"ALTER TABLE {target} ADD COLUMN {quote_ident(name)} {dtype}").fetchall()
            connection.execute(f"INSERT INTO {target} BY NAME SELECT * FROM __frame").fetchall()
        total = connection.execute(f"SELECT count(*) FROM {target}").fetchall()[0][0]
        connection.unregister("__frame")
        # The column schema is definition metadata (from the declarations); repeating it here
        # would be serialized into every partition's materialization event.
        return row_counts(context, len(obj), total)

    @staticmethod
    def _refuse_rows_outside(connection, table_slice: TableSlice, exists: bool) -> None:
        """Rows outside the partitions being written would never be replaced: refuse them."""
        if exists:
            types = column_types(connection, table_slice)
        else:
            types = dict(
                connection.execute("SELECT column_name, column_type FROM (DESCRIBE __frame)").fetchall()
            )
        where = partition_filter(table_slice.partition_dimensions, types)
        outside = connection.execute(
            f"SELECT count(*) FROM __frame WHERE NOT coalesce({where}, false)"
        ).fetchall()[0][0]
        if outside:
            raise ValueError(
                f"{outside} rows for {table_slice.schema}.{table_slice.table} fall outside the "
                f"partitions being written ({where}); refusing to write them"
            )

    def load_input(self, context: InputContext, table_slice: TableSlice, connection):
        if not table_exists(connection, table_slice):
            return pl.DataFrame()
        cols = ", ".join(quote_ident(c) for c in table_slice.columns) if table_slice.columns else "*"
        where = "true"
        if table_slice.partition_dimensions:
            if not context.asset_partition_keys:
                where = "false"
            else:
                types = column_types(connection, table_slice)
                where = partition_filter(table_slice.partition_dimensions, types)
        frame = connection.sql(f"SELECT {cols} FROM {qualified(table_slice)} WHERE {where}").pl()
        RUN_DATABASE.moved(frame)
        return frame

    @property
    def supported_types(self):
        return [pl.DataFrame]


class LakehouseDuckDBIOManager(DuckDBIOManager):
    """The local warehouse: schema bronze/silver/gold from the asset key prefix."""

    @staticmethod
    def type_handlers() -> Sequence[DbTypeHandler]:
        return [PolarsTypeHandler()]

    @staticmethod
    def default_load_type() -> type | None:
        return pl.DataFrame

    def teardown_after_execution(self, context) -> None:
        RUN_DATABASE.release(self.database)  # the run is over: let other processes have it

    @staticmethod
    def db_client() -> DuckDbClient:
        return LakehouseDuckDbClient()

    def create_io_manager(self, context) -> DbIOManager:
        return DbIOManager(
            db_client=self.db_client(),
            database=self.database,
            schema=self.schema_,
            type_handlers=self.type_handlers(),
            default_load_type=self.default_load_type(),
            io_manager_name="LakehouseDuckDBIOManager",
        )

