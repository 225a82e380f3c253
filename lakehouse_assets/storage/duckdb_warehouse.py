"""The local warehouse: one DuckDB file, where tables live and all data work runs.

One process writes it at a time (DuckDB locks the file): a run opens it once, on first use,
and holds it to its end (`DuckDBWarehouse`, a Dagster resource); another writer waits for the
lock with backoff, a sensor's read-only look fails at once (`WarehouseBusy`) and tries again
on its next tick. Every `replace` is one transaction: a crash leaves the old rows or the new.
DuckDB works within `memory_limit` and spills the rest to `<file>.tmp/`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import duckdb
import polars as pl

from lakehouse_assets.schemas.types import duckdb_type
from lakehouse_assets.storage.scope_sql import scope_predicate, temp_name
from lakehouse_assets.storage.tables import Rows, Scope, TableRef, TableSpec, WarehouseBusy, WriteResult
from lakehouse_assets.values import quote_ident, quote_literal, register

HEADER_BYTES = 3 * 4096  # a DuckDB file starts with three 4 KiB headers
LOCK_WAIT = [min(0.2 * 1.5**i, 5.0) for i in range(30)]  # about two minutes in all


class DuckDBSession:
    """Tables of a DuckDB file; data work in the same database (its temp objects spill)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, read_only: bool = False):
        self.con = con
        self.read_only = read_only
        self._registered: list[str] = []
        # Names are qualified with the database: a schema named like the file would be ambiguous.
        self.catalog = con.execute("SELECT current_database()").fetchall()[0][0]

    def qualified(self, ref: TableRef) -> str:
        return f"{quote_ident(self.catalog)}.{quote_ident(ref.layer)}.{quote_ident(ref.name)}"

    # ---- reading ---------------------------------------------------------------------

    def exists(self, ref: TableRef) -> bool:
        return bool(self.columns(ref))

    def columns(self, ref: TableRef) -> dict[str, str]:
        rows = self.con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() "
            "WHERE database_name = ? AND schema_name = ? AND table_name = ? ORDER BY column_index",
            [self.catalog, ref.layer, ref.name],
        ).fetchall()
        return dict(rows)

    def scan(self, spec: TableSpec, scope: Scope = Scope(), columns: Sequence[str] | None = None) -> str:
        wanted = list(columns or spec.columns)
        unknown = [c for c in wanted if c not in spec.columns]
        if unknown:
            raise ValueError(f"{spec.ref} has no column(s) {', '.join(unknown)}")
        present = self.columns(spec.ref)
        view = temp_name("scan")
        # Columns declared later than the table was written read as NULL.
        select = ", ".join(
            quote_ident(c) if c in present else f"CAST(NULL AS {duckdb_type(spec.columns[c])}) AS {quote_ident(c)}"
            for c in wanted
        )
        if not present or scope.is_nothing:
            nothing = ", ".join(f"CAST(NULL AS {duckdb_type(spec.columns[c])}) AS {quote_ident(c)}" for c in wanted)
            self.con.execute(f"CREATE TEMP VIEW {view} AS SELECT {nothing} WHERE false")
        else:
            where = scope_predicate(self.con, scope, spec, self._registered)
            self.con.execute(f"CREATE TEMP VIEW {view} AS SELECT {select} FROM {self.qualified(spec.ref)} WHERE {where}")
        return view

    def row_count(self, ref: TableRef) -> int:
        if not self.exists(ref):
            return 0
        return self.con.execute(f"SELECT count(*) FROM {self.qualified(ref)}").fetchall()[0][0]

    # ---- writing ---------------------------------------------------------------------

    def replace(self, spec: TableSpec, rows: Rows, scope: Scope) -> WriteResult:
        if self.read_only:
            raise PermissionError("a read-only look at the warehouse cannot write")
        registered: list[str] = []
        self.con.execute("BEGIN TRANSACTION")
        try:
            self._ensure_table(spec)
            target = self.qualified(spec.ref)
            deleted = 0
            if not scope.is_nothing:
                where = scope_predicate(self.con, scope, spec, registered)
                deleted = self.con.execute(f"DELETE FROM {target} WHERE {where}").fetchall()[0][0]
            inserted = 0
            for source in self._sources(rows, registered):
                inserted += self._insert(spec, source)
            total = self.con.execute(f"SELECT count(*) FROM {target}").fetchall()[0][0]
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        finally:
            for name in registered:
                self.con.unregister(name)
        return WriteResult(deleted=deleted, inserted=inserted, total_rows=total)

    def _sources(self, rows: Rows, registered: list[str]):
        if isinstance(rows, str):
            yield rows
            return
        for frame in [rows] if isinstance(rows, pl.DataFrame) else rows:
            name = temp_name("rows")
            register(self.con, name, frame)
            registered.append(name)
            yield name

    def _insert(self, spec: TableSpec, source: str) -> int:
        have = [r[0] for r in self.con.execute(f"SELECT column_name FROM (DESCRIBE {source})").fetchall()]
        extra = [c for c in have if c not in spec.columns]
        missing = [c for c in spec.columns if c not in have]
        if extra or missing:
            raise ValueError(
                f"rows for {spec.ref} do not match its declared columns"
                + (f"; not declared: {', '.join(extra)}" if extra else "")
                + (f"; missing: {', '.join(missing)}" if missing else "")
            )
        casts = ", ".join(f"CAST({quote_ident(c)} AS {duckdb_type(t)}) AS {quote_ident(c)}" for c, t in spec.columns.items())
        return self.con.execute(f"INSERT INTO {self.qualified(spec.ref)} BY NAME SELECT {casts} FROM {source}").fetchall()[0][0]

    def _ensure_table(self, spec: TableSpec) -> None:
        present = self.columns(spec.ref)
        defs = {c: duckdb_type(t) for c, t in spec.columns.items()}
        if not present:
            self.con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(self.catalog)}.{quote_ident(spec.ref.layer)}")
            cols = ", ".join(f"{quote_ident(c)} {t}" for c, t in defs.items())
            self.con.execute(f"CREATE TABLE {self.qualified(spec.ref)} ({cols})")
            return
        retyped = [f"{c}: {present[c]} -> {t}" for c, t in defs.items() if c in present and present[c] != t]
        if retyped:
            raise TypeError(f"{spec.ref}: column types changed ({', '.join(retyped)}); migrate the table on purpose")
        for c, t in defs.items():  # a declaration gained a column: older rows read it as NULL
            if c not in present:
                self.con.execute(f"ALTER TABLE {self.qualified(spec.ref)} ADD COLUMN {quote_ident(c)} {t}")

    def close(self) -> None:
        self.con.close()


def configure(con: duckdb.DuckDBPyConnection, memory_limit: str, spill_dir: str | None) -> None:
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET memory_limit = {quote_literal(memory_limit)}")
    # Insertion order is not a property of a table here: without it big inserts stream.
    con.execute("SET preserve_insertion_order = false")
    if spill_dir:
        con.execute(f"SET temp_directory = {quote_literal(spill_dir)}")  # a path may hold quotes


def open_session(path: str, memory_limit: str) -> DuckDBSession:
    """The warehouse for writing: created whole if missing, another writer's lock waited for."""
    create_whole(Path(path))
    con = connect_when_free(path)
    configure(con, memory_limit, f"{path}.tmp")
    return DuckDBSession(con)


def open_reader(path: str, memory_limit: str) -> DuckDBSession:
    """A read-only look; an empty database when the file does not exist yet."""
    if not Path(path).exists():
        con = duckdb.connect(":memory:")
    else:
        try:
            con = duckdb.connect(path, read_only=True)
        except duckdb.Error as exc:
            # Another process's lock, or (in this process) an open writing connection.
            if "lock" in str(exc).lower() or "same database file" in str(exc):
                raise WarehouseBusy(f"{path} is being written") from exc
            raise
    configure(con, memory_limit, None)
    return DuckDBSession(con, read_only=True)


def create_whole(path: Path) -> None:
    """Create the warehouse file so that it exists whole or not at all: DuckDB writes a new
    file's headers in place, and a process killed meanwhile leaves a file no one can open.
    It is made under another name and linked into place; a file left short by such a crash
    is moved aside and made again."""
    path.parent.mkdir(parents=True, exist_ok=True)
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


def connect_when_free(database: str) -> duckdb.DuckDBPyConnection:
    """DuckDB lets one process write a file: wait for another run's lock to go, fail at
    once on anything else."""
    for delay in [*LOCK_WAIT, None]:
        try:
            return duckdb.connect(database, config={"custom_user_agent": "lakehouse_assets"})
        except duckdb.Error as exc:
            if "lock" not in str(exc).lower() or delay is None:
                raise
            time.sleep(delay)
    raise AssertionError("unreachable")
