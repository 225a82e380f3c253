"""The warehouse as a Dagster resource: where every table lives, and the DuckDB that data
work runs in. Assets, the IO manager and checks of a run share one session (opened on first
use, closed when the run ends); sensors take a read-only look.

`DuckDBWarehouse` is the local default; `IcebergWarehouse` (storage/iceberg_warehouse.py)
keeps the tables in Iceberg on S3 with the Glue catalog. Both give the same `Session`.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr

from lakehouse_assets.storage.tables import Session


class Warehouse(ConfigurableResource):
    """Base of the warehouse resources: the run's session and read-only looks."""

    memory_limit: str = Field(
        default="2GB", description="DuckDB memory for data work (LAKEHOUSE_MEMORY_LIMIT); the rest spills to disk"
    )
    _session: Session | None = PrivateAttr(default=None)

    @abstractmethod
    def open_session(self) -> Session: ...

    @abstractmethod
    def open_reader(self) -> Session:
        """Read-only; raises WarehouseBusy when that cannot be had right now."""

    @abstractmethod
    def describe(self) -> str: ...

    def session(self) -> Session:
        """The run's session: every load and write of the run shares it."""
        if self._session is None:
            self._session = self.open_session()
        return self._session

    @contextmanager
    def reader(self) -> Iterator[Session]:
        session = self.open_reader()
        try:
            yield session
        finally:
            session.close()

    def release(self) -> None:
        """Let other processes have the warehouse (the run, or a test, is done with it)."""
        if self._session is not None:
            session, self._session = self._session, None
            session.close()

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        self.release()


class DuckDBWarehouse(Warehouse):
    """A local DuckDB file (LAKEHOUSE_DUCKDB_PATH)."""

    path: str = Field(description="The DuckDB file; created on first write")

    def open_session(self) -> Session:
        from lakehouse_assets.storage.duckdb_warehouse import open_session

        return open_session(self.path, self.memory_limit)

    def open_reader(self) -> Session:
        from lakehouse_assets.storage.duckdb_warehouse import open_reader

        return open_reader(self.path, self.memory_limit)

    def describe(self) -> str:
        return f"DuckDB file {self.path}"
