"""The local Dagster instance's event log: Dagster's SQLite storage, made fast enough for
single-run backfills of many partitions (this is Dagster's bookkeeping, not the warehouse).

A backfill run of 32 daily assets over 101 days logs 3,232 ASSET_MATERIALIZATION events (and,
with Dagster's defaults, as many ASSET_MATERIALIZATION_PLANNED events). Dagster's
`SqliteEventLogStorage` (1.13) opens a new SQLAlchemy engine and connection for every write,
commits it with an fsync, and closes it (the last close of a WAL database checkpoints it),
twice per asset event (run shard, index shard); it does not implement batch writes. Profiled
at scale 1, that was 80% of a full backfill's wall time. This subclass changes how it talks
to SQLite and, in the last point, how a run's plan is recorded, never what the UI and the
sensors read back:

- one engine per shard, kept (the index and the latest run shards), so connections are reused;
- `synchronous=NORMAL`, the setting SQLite recommends with WAL: a committed event survives
  the process being killed; only an operating-system crash can lose the latest commits;
- `store_event_batch` writes a batch of asset events (and the planned asset checks of a new
  run) in one transaction per shard, exactly as `store_event` would one by one. Dagster hands
  batches only when the environment variable DAGSTER_EVENT_BATCH_SIZE is a positive number in
  the process that writes the events (`DagsterInstance` reads it at every event). This module
  never sets it: whatever starts the instance's processes does, and they pass it on to the
  processes they start (webserver, daemon, code server, run workers): `scripts/run.sh`, the
  tests' `dagster_services.service_env` and `crash_helpers.cli_env`, and
  `benchmarks/instance_storage.py` (the production instance's ECS tasks set it too, for
  Postgres: deploy/README.md). Without it every event is written on its own, still
  correctly, only more slowly.
- a run over a partition range plans each asset with one ASSET_MATERIALIZATION_PLANNED event
  carrying the range (`supports_partition_subset_in_asset_materialization_planned_events`, as
  Dagster+'s storage does) instead of one event per partition: 3,200 fewer events for a
  backfill. Dagster's own SQL query for partitions planned but never materialized (what makes
  a partition show as failed or in progress) reads only per-partition planned events, which
  is why OSS Dagster leaves this off; `get_latest_asset_partition_materialization_attempts_
  without_materializations` here also reads the range events, so failed partitions stay failed.

Configured in `data/dagster_home/dagster.yaml`; `base_dir` defaults to Dagster's own place,
`$DAGSTER_HOME/history/runs`. It lives outside the product package (it imports nothing from
`lakehouse_assets`), so that a product that fails to import breaks only its code location,
never the webserver and the daemon; and the product depends on nothing here: with Dagster's
own storage every feature works the same.

It subclasses a private Dagster class and uses private members, so it imports Dagster's
private modules (there is no public base for an event log storage) and is pinned to the Dagster
versions it is tested on (`dagster_version.py`): checked first, before those imports, so that
an upgrade fails with that message and not with an ImportError from a moved private module.
"""

from __future__ import annotations

import os
import sqlite3
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import dagster

from lakehouse_instance.dagster_version import require_tested

require_tested(dagster.__version__)

# ruff: noqa: E402  (the imports below come after the version check, on purpose)
from dagster import Field, StringSource
from dagster._core.events import ASSET_EVENTS, DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable, SqlEventLogStorageTable
from dagster._core.storage.sqlalchemy_compat import db_fetch_mappings, db_select
from dagster._serdes import ConfigurableClassData, deserialize_value, serialize_value
from sqlalchemy import event as sa_event
from sqlalchemy import func
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.pool import QueuePool

KEPT_ENGINES = 8  # the index shard and the shards of the latest runs
BUSY_TIMEOUT_SECONDS = 30  # as Dagster's own SQLITE_BUSY_TIMEOUT_SECONDS


def _tune(dbapi_connection: sqlite3.Connection, _record) -> None:
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")


class LakehouseSqliteEventLogStorage(SqliteEventLogStorage):
    """`SqliteEventLogStorage` with kept connections and batched asset-event writes."""

    def __init__(self, base_dir: str | None = None, inst_data: ConfigurableClassData | None = None):
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._known_tables: set[str] = set()
        if base_dir is None:
            home = os.environ.get("DAGSTER_HOME")
            if not home:
                raise ValueError(
                    "LakehouseSqliteEventLogStorage: set DAGSTER_HOME (or base_dir in dagster.yaml)"
                )
            base_dir = os.path.join(home, "history", "runs")
        super().__init__(base_dir, inst_data)
        # A forked child must not reuse the parent's SQLite connections.
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: (s := ref()) is not None and s._forget_engines())

    @classmethod
    def config_type(cls):
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> LakehouseSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def _forget_engines(self) -> None:
        for engine in self._engines.values():
            engine.dispose(close=False)
        self._engines.clear()

    def _engine(self, shard: str) -> Engine:
        engine = self._engines.get(shard)
        if engine is not None:
            self._engines.move_to_end(shard)
            return engine
        engine = create_engine(
            self.conn_string_for_shard(shard),
            poolclass=QueuePool,
            pool_size=1,
            max_overflow=4,
            # Connections are used under self._db_lock only, by whichever thread holds it.
            connect_args={"timeout": BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
        )
        sa_event.listen(engine, "connect", _tune)
        self._engines[shard] = engine
        while len(self._engines) > KEPT_ENGINES:
            _, old = self._engines.popitem(last=False)
            old.dispose()
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator:
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def has_table(self, table_name: str) -> bool:
        # Asked on every asset event; a table, once there, stays.
        if table_name not in self._known_tables and super().has_table(table_name):
            self._known_tables.add(table_name)
        return table_name in self._known_tables

    def dispose(self) -> None:
        super().dispose()
        with self._db_lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()

    @property
    def supports_partition_subset_in_asset_materialization_planned_events(self) -> bool:
        return True

    def get_latest_asset_partition_materialization_attempts_without_materializations(
        self, asset_key, after_storage_id: int | None = None
    ):
        """Dagster's answer from per-partition planned events, plus the partitions of planned
        range events (partition NULL, a partitions subset) that no later materialization of
        the same partition followed. Returns {partition: (run_id, planned event id)}."""
        attempts = dict(super().get_latest_asset_partition_materialization_attempts_without_materializations(
            asset_key, after_storage_id=after_storage_id
        ))
        table = SqlEventLogStorageTable
        wipes = self._get_assets_details([asset_key])

        def select(columns, event_type: DagsterEventType, *where):
            query = db_select(columns).where(
                table.c.asset_key == asset_key.to_string(),
                table.c.dagster_event_type == event_type.value,
                *where,
            )
            if after_storage_id is not None:
                query = query.where(table.c.id > after_storage_id)
            return self._add_assets_wipe_filter_to_query(query, wipes, [asset_key])

        ranges = select(
            [table.c.id, table.c.run_id, table.c.event],
            DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
            table.c.partition == None,  # noqa: E711
        ).order_by(table.c.id.asc())
        with self.index_connection() as conn:
            range_rows = db_fetch_mappings(conn, ranges)
        planned: dict[str, tuple[str, int]] = {}
        for row in range_rows:  # one row per planned asset of a run, not per partition
            subset = deserialize_value(row["event"], EventLogEntry).dagster_event.event_specific_data.partitions_subset
            if subset is not None:
                planned.update(dict.fromkeys(subset.get_partition_keys(), (row["run_id"], row["id"])))
        if not planned:
            return attempts
        latest = select(
            [table.c.partition, func.max(table.c.id).label("id")],
            DagsterEventType.ASSET_MATERIALIZATION,
            table.c.partition != None,  # noqa: E711
        ).group_by(table.c.partition)
        with self.index_connection() as conn:
            materialized = {row["partition"]: row["id"] for row in db_fetch_mappings(conn, latest)}
        for partition, (run_id, planned_id) in planned.items():
            if materialized.get(partition, -1) > planned_id:
                continue  # materialized after it was planned
            if partition not in attempts or attempts[partition][1] < planned_id:
                attempts[partition] = (run_id, planned_id)
        return attempts

    def _check_planned_rows(self, event: EventLogEntry, event_id) -> list[dict]:
        # As Dagster's, which serializes the event again for every partition of the check.
        planned = event.dagster_event.event_specific_data
        subset = planned.partitions_subset
        row = dict(
            asset_key=planned.asset_key.to_string(),
            check_name=planned.check_name,
            run_id=event.run_id,
            execution_status=AssetCheckExecutionRecordStatus.PLANNED.value,
            evaluation_event=serialize_value(event),
            evaluation_event_timestamp=self._event_insert_timestamp(event),
            evaluation_event_storage_id=event_id,
        )
        keys = subset.get_partition_keys() if subset else [None]
        return [{**row, "partition": k} for k in keys]

    def _store_asset_check_evaluation_planned(self, event: EventLogEntry, event_id) -> None:
        with self.index_connection() as conn:
            conn.execute(AssetCheckExecutionsTable.insert(), self._check_planned_rows(event, event_id))

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """Asset events and planned asset checks of one run in one transaction per shard, each
        statement compiled once (executemany); anything else one by one, as `store_event` would."""
        batched = [e for e in events if _batchable(e)]
        if len({e.run_id for e in batched}) > 1:
            batched = []
        in_batch = {id(e) for e in batched}
        for event in events:
            if id(event) not in in_batch:
                self.store_event(event)
        if not batched:
            return
        rows = [self._event_to_row(e) for e in batched]  # serialized once, for both shards
        with self.run_connection(batched[0].run_id) as conn:
            conn.execute(SqlEventLogStorageTable.insert(), rows)
        # The index shard mirrors asset and asset check events: cross-run queries read it.
        with self.index_transaction() as conn:
            result = conn.execute(
                SqlEventLogStorageTable.insert().returning(
                    SqlEventLogStorageTable.c.id, sort_by_parameter_order=True
                ),
                rows,
            )
            ids = [row[0] for row in result]
            assets = [(e, i) for e, i in zip(batched, ids) if e.dagster_event_type in ASSET_EVENTS]
            checks = [(e, i) for e, i in zip(batched, ids) if e.dagster_event_type not in ASSET_EVENTS]
            if checks:
                conn.execute(
                    AssetCheckExecutionsTable.insert(),
                    [row for e, i in checks for row in self._check_planned_rows(e, i)],
                )
            if not assets:
                return
            self._store_asset_event_tags(conn, [e for e, _ in assets], [i for _, i in assets])
            # The asset table keeps the latest event of each kind per asset: writing only the
            # last of each leaves it exactly as writing all of them in order would.
            last: dict[tuple, tuple] = {}
            for e, i in assets:
                last[(e.dagster_event.asset_key, e.dagster_event_type)] = (i, e)
            for i, e in sorted(last.values(), key=lambda pair: pair[0]):
                self._store_asset_event(conn, e, i)


def _batchable(event: EventLogEntry) -> bool:
    if not event.is_dagster_event:
        return False
    if event.dagster_event_type == DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED:
        return True
    return event.dagster_event_type in ASSET_EVENTS and bool(event.dagster_event.asset_key)
