"""What the lakehouse asks of a store of tables, whatever the store is.

A `Session` (one per run, or a read-only one for a sensor) gives:
- `con`: a DuckDB connection where all data work runs. Locally it is the warehouse file
  itself; in AWS mode a scratch database, into which `scan` brings Iceberg rows.
- `scan(spec, scope, columns)`: the name of a relation in `con` holding the table's rows in
  `scope` (an empty relation of the declared columns when the table does not exist yet).
- `replace(spec, rows, scope)`: in one atomic step, delete the table's rows in `scope` and
  insert `rows` (a relation name in `con`, a polars frame, or an iterable of frames, consumed
  once, so a big write never sits in memory whole). A crash leaves the old rows or the new.

A `Scope` says which rows a write replaces or a scan reads: those matching every constraint
given (UTC days of the partition column, key values, source files); `Scope()` is the whole
table. The rows of a write must lie inside its scope (the IO manager checks it), so a later
write of the same scope replaces them exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Protocol, Union

import duckdb
import polars as pl

from lakehouse_assets.schemas.types import Columns, PgType


@dataclass(frozen=True)
class TableRef:
    layer: str  # bronze | silver | gold | lakehouse (bookkeeping)
    name: str

    def __str__(self) -> str:
        return f"{self.layer}.{self.name}"


@dataclass(frozen=True)
class TableSpec:
    ref: TableRef
    columns: Columns  # ordered: the table's columns and their types
    partition_column: str | None = None  # daily partitions by this DATE/TIMESTAMPTZ column (UTC)
    description: str = ""

    def __post_init__(self) -> None:
        if self.partition_column is not None:
            kind = self.columns.get(self.partition_column)
            if kind not in (PgType.DATE, PgType.TIMESTAMPTZ):
                raise TypeError(
                    f"{self.ref}: partition column {self.partition_column!r} is {kind}; a daily "
                    "partition needs a date or timestamptz column (text compared with dates mis-files rows)"
                )


@dataclass(frozen=True)
class Scope:
    days: frozenset[date] | None = None  # the partition column's UTC date is one of these
    # These columns match a row here: a polars frame, or (a big set, kept where it is) the name
    # of a relation in the session's `con`.
    keys: pl.DataFrame | str | None = field(default=None, compare=False)
    files: frozenset[str] | None = None  # _source_file is one of these
    after: tuple[str, datetime] | None = None  # (column, t): the column is later than t (reads only)

    @classmethod
    def of_days(cls, days: Iterable[date]) -> Scope:
        return cls(days=frozenset(days))

    @classmethod
    def none(cls) -> Scope:
        """No rows: a write with this scope only appends."""
        return cls(files=frozenset())

    @property
    def is_everything(self) -> bool:
        return self.days is None and self.keys is None and self.files is None and self.after is None

    @property
    def is_nothing(self) -> bool:
        return (
            (self.days is not None and not self.days)
            or (self.files is not None and not self.files)
            or (isinstance(self.keys, pl.DataFrame) and self.keys.is_empty())
        )

    def describe(self) -> str:
        parts = []
        if self.days is not None:
            parts.append(f"{len(self.days)} days ({describe_days(self.days)})")
        if isinstance(self.keys, str):
            parts.append(f"the keys of {self.keys}")
        elif self.keys is not None:
            parts.append(f"{len(self.keys)} keys ({', '.join(self.keys.columns)})")
        if self.files is not None:
            parts.append(f"{len(self.files)} files")
        if self.after is not None:
            parts.append(f"{self.after[0]} after {self.after[1].isoformat()}")
        return " and ".join(parts) or "the whole table"


def with_key_frame(scope: Scope, con: duckdb.DuckDBPyConnection) -> Scope:
    """The scope with its keys as a polars frame (a store that needs the values themselves)."""
    if not isinstance(scope.keys, str):
        return scope
    return Scope(days=scope.days, keys=con.sql(f"SELECT * FROM {scope.keys}").pl(), files=scope.files, after=scope.after)


def day_ranges(days: Iterable[date]) -> list[tuple[date, date]]:
    """Sorted days as inclusive ranges of consecutive days."""
    ranges: list[tuple[date, date]] = []
    for d in sorted(set(days)):
        if ranges and ranges[-1][1] + timedelta(days=1) == d:
            ranges[-1] = (ranges[-1][0], d)
        else:
            ranges.append((d, d))
    return ranges


def describe_days(days: Iterable[date]) -> str:
    ranges = day_ranges(days)
    shown = [f"{a}" if a == b else f"{a}...{b}" for a, b in ranges[:4]]
    return ", ".join(shown) + (f" and {len(ranges) - 4} more ranges" if len(ranges) > 4 else "")


Rows = Union[str, pl.DataFrame, Iterable[pl.DataFrame]]


class WarehouseBusy(RuntimeError):
    """Another process is writing the warehouse (a store with one writer at a time)."""


@dataclass(frozen=True)
class WriteResult:
    deleted: int
    inserted: int
    total_rows: int  # of the table after the write
    snapshot_id: int | None = None  # stores with snapshots (Iceberg) name the new one


class Session(Protocol):
    con: duckdb.DuckDBPyConnection

    def exists(self, ref: TableRef) -> bool: ...

    def scan(self, spec: TableSpec, scope: Scope = Scope(), columns: Sequence[str] | None = None) -> str: ...

    def replace(self, spec: TableSpec, rows: Rows, scope: Scope) -> WriteResult: ...

    def row_count(self, ref: TableRef) -> int: ...

    def close(self) -> None: ...


def frames(rows: Rows, con: duckdb.DuckDBPyConnection, batch_rows: int = 1_000_000) -> Iterator[pl.DataFrame]:
    """Rows as polars frames of at most about `batch_rows` rows each (a relation is streamed)."""
    if isinstance(rows, str):
        reader = con.sql(f"SELECT * FROM {rows}").fetch_record_batch(batch_rows)
        for batch in reader:
            yield pl.from_arrow(batch)
    elif isinstance(rows, pl.DataFrame):
        yield rows
    else:
        yield from rows
