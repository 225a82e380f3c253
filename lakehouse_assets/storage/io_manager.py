"""The warehouse IO manager: the rules every store shares, in one place.

An asset hands it a `Replacement` (rows that replace a scope of its table) or a plain polars
frame (which replaces the run's days). The base decides the scope and enforces it; the
backend (the run's warehouse session) only reads and replaces:

- the days of the run's partition window are the default scope, and a scope of days outside
  the window is refused: a run claims only its own partitions (a file-keyed ledger write,
  bronze, is the one exception: a landing file's records may span days);
- rows outside the scope are refused: they would never be replaced by a later write;
- an empty result empties its scope on purpose;
- a table not written yet loads as an empty frame of its declared columns;
- row counts go in the materialization's metadata (`row_counts`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

import polars as pl
from dagster import InputContext, IOManager, OutputContext

from lakehouse_assets.storage.scope_sql import scope_predicate, temp_name
from lakehouse_assets.storage.tables import Rows, Scope, Session, TableRef, TableSpec, describe_days
from lakehouse_assets.storage.warehouse import Warehouse
from lakehouse_assets.values import register


@dataclass
class Replacement:
    rows: Rows
    scope: Scope | None = None  # None: the run's days
    ledger: bool = False  # rows keyed by landing file: may lie on days outside the run
    metadata: dict = field(default_factory=dict)  # shown on the materialization
    spec: TableSpec | None = None  # the asset's own declaration (else the declared table of its key)


def window_days(context: OutputContext | InputContext) -> frozenset[date] | None:
    if not context.has_asset_partitions:
        return None
    window = context.asset_partitions_time_window
    first, end = window.start.date(), window.end.date()
    return frozenset(first + timedelta(days=i) for i in range((end - first).days))


def row_counts(context: OutputContext, written: int, total: int) -> dict:
    """Dagster copies an output's metadata onto the materialization of each partition it
    covers: the rows a range run wrote are no one partition's count, so they are the run's."""
    one_partition = not context.has_asset_partitions or len(context.asset_partition_keys) == 1
    return {
        "dagster/partition_row_count" if one_partition else "rows_written_by_run": written,
        "dagster/row_count": total,
    }


class WarehouseIOManager(IOManager):
    def __init__(self, warehouse: Warehouse, specs: Mapping[TableRef, TableSpec]):
        self.warehouse = warehouse
        self.specs = specs

    def spec(self, context: OutputContext | InputContext) -> TableSpec:
        path = context.asset_key.path
        ref = TableRef(path[-2], path[-1]) if len(path) >= 2 else None
        if ref not in self.specs:
            raise KeyError(f"{context.asset_key.to_user_string()} is not a declared warehouse table")
        return self.specs[ref]

    def handle_output(self, context: OutputContext, obj: Replacement | pl.DataFrame) -> None:
        replacement = obj if isinstance(obj, Replacement) else Replacement(obj)
        rows = replacement.rows
        if not isinstance(rows, (str, pl.DataFrame)) and (isinstance(rows, Mapping) or not hasattr(rows, "__iter__")):
            # (a mapping iterates its keys: it would be taken for frames, failing obscurely)
            raise TypeError(f"the warehouse stores polars frames or staged relations, not {type(rows).__name__}")
        spec = replacement.spec or self.spec(context)
        scope = self._scope(context, spec, replacement)
        session = self.warehouse.session()
        rows = checked(session, spec, scope, replacement.rows)
        result = session.replace(spec, rows, scope)
        metadata = {
            **row_counts(context, result.inserted, result.total_rows),
            "rows_replaced": result.deleted,
            "scope": scope.describe(),
            "dagster/table_name": str(spec.ref),
            **replacement.metadata,
        }
        if result.snapshot_id is not None:
            metadata["snapshot_id"] = str(result.snapshot_id)
        context.add_output_metadata(metadata)

    def _scope(self, context: OutputContext, spec: TableSpec, replacement: Replacement) -> Scope:
        days = window_days(context)
        scope = replacement.scope or Scope(days=days)
        if days is None or replacement.ledger or spec.partition_column is None:
            return scope
        if scope.days is None:  # keys or files only: within the run's days
            return Scope(days=days, keys=scope.keys, files=scope.files)
        outside = scope.days - days
        if outside:
            raise ValueError(
                f"{spec.ref}: a run over {describe_days(days)} may not replace other days "
                f"({describe_days(outside)}): only its own partitions"
            )
        return scope

    def load_input(self, context: InputContext) -> pl.DataFrame:
        spec = self.spec(context)
        days = window_days(context)
        scope = Scope(days=days) if days is not None and spec.partition_column else Scope()
        columns = (context.definition_metadata or {}).get("columns")
        session = self.warehouse.session()
        return session.con.sql(f"SELECT * FROM {session.scan(spec, scope, columns)}").pl()


def checked(session: Session, spec: TableSpec, scope: Scope, rows: Rows) -> Rows:
    """The rows, refused if any lies outside the scope (checked as they stream by)."""
    if isinstance(rows, str):
        _refuse_outside(session, spec, scope, rows)
        return rows
    if isinstance(rows, pl.DataFrame):
        _refuse_frame_outside(session, spec, scope, rows)
        return rows

    def each() -> Iterator[pl.DataFrame]:
        for frame in rows:
            _refuse_frame_outside(session, spec, scope, frame)
            yield frame

    return each()


def _refuse_frame_outside(session: Session, spec: TableSpec, scope: Scope, frame: pl.DataFrame) -> None:
    if scope.is_everything or frame.is_empty():
        return
    name = temp_name("check")
    register(session.con, name, frame)
    try:
        _refuse_outside(session, spec, scope, name)
    finally:
        session.con.unregister(name)


def _refuse_outside(session: Session, spec: TableSpec, scope: Scope, relation: str) -> None:
    if scope.is_everything:
        return
    registered: list[str] = []
    try:
        where = scope_predicate(session.con, scope, spec, registered)
        outside = session.con.execute(f"SELECT count(*) FROM {relation} WHERE NOT coalesce({where}, false)").fetchall()[0][0]
    finally:
        for name in registered:
            session.con.unregister(name)
    if outside:
        raise ValueError(
            f"{outside} rows for {spec.ref} fall outside what this write replaces ({scope.describe()}); "
            "refusing to write them (no later write would replace them)"
        )
