"""Moving rows between Iceberg data files and DuckDB, in bounded memory, and committing a
change of files as one snapshot.

pyiceberg 0.12 is worked around in two places, both for memory:
- reading: `DataScan.to_arrow_batch_reader` hands every planned file to a thread pool at once
  (`executor.map` submits them all) and keeps each file's batches in a list, so a big scan is
  read whole ahead of its consumer; here a few files are read at a time;
- writing: `append`/`overwrite` accept a stream only for unpartitioned tables, and
  `write_file` again maps all tasks at once; here each batch of rows is written as soon as it
  is read, one file per partition in it, and DuckDB holds (and spills) the rest.
"""

from __future__ import annotations

import itertools
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.expressions import AlwaysFalse, AlwaysTrue, BooleanExpression
from pyiceberg.io.pyarrow import ArrowScan, pyarrow_to_schema, schema_to_pyarrow, write_file
from pyiceberg.manifest import DataFile
from pyiceberg.partitioning import PartitionFieldValue, PartitionKey
from pyiceberg.schema import Schema
from pyiceberg.table import FileScanTask, Table, WriteTask

from lakehouse_assets.storage.iceberg_tables import daily_column, partition_sql
from lakehouse_assets.storage.scope_sql import scope_predicate, temp_name
from lakehouse_assets.storage.tables import Scope, TableSpec

log = logging.getLogger(__name__)

FILES_AT_ONCE = 4  # data files read concurrently by a scan
BATCH_ROWS = 500_000  # rows read from DuckDB and written at a time: one file per partition per batch
PARTITION = "__partition"
EPOCH = date(1970, 1, 1)


def batches(table: Table, tasks: Iterable[FileScanTask], schema: Schema,
            row_filter: BooleanExpression = AlwaysTrue()) -> pa.RecordBatchReader:
    """The rows of planned file tasks, projected on `schema`, a few files at a time."""
    target = schema_to_pyarrow(schema)

    def read() -> Iterator[pa.RecordBatch]:
        pending = iter(tasks)
        while chunk := list(itertools.islice(pending, FILES_AT_ONCE)):
            yield from ArrowScan(table.metadata, table.io, schema, row_filter).to_record_batches(chunk)

    return pa.RecordBatchReader.from_batches(target, read()).cast(target)


def load(con: duckdb.DuckDBPyConnection, reader: pa.RecordBatchReader,
         query: Callable[[str], str] = lambda source: f"SELECT * FROM {source}") -> str:
    """Stream Arrow batches into a new DuckDB temp table (which spills past memory_limit),
    through `query` of the batches' relation."""
    source, name = temp_name("arrow"), temp_name("scan")
    con.register(source, reader)
    try:
        con.execute(f"CREATE TEMP TABLE {name} AS {query(source)}")
    finally:
        con.unregister(source)
    return name


def write(table: Table, con: duckdb.DuckDBPyConnection, relation: str, write_uuid: uuid.UUID | None = None,
          counter: Iterator[int] | None = None) -> tuple[list[DataFile], int]:
    """Write a DuckDB relation's rows (named as the table's columns) as data files of the
    table, sorted by partition so that each batch holds few partitions; a failure removes the
    files already written."""
    write_uuid, counter = write_uuid or uuid.uuid4(), counter or itertools.count()
    column = daily_column(table)
    if column is None:
        reader = con.sql(f"SELECT * FROM {relation}").fetch_record_batch(BATCH_ROWS)
    else:
        reader = con.sql(
            f"SELECT *, {partition_sql(column)} AS {PARTITION} FROM {relation} ORDER BY {PARTITION} NULLS LAST"
        ).fetch_record_batch(BATCH_ROWS)
    files: list[DataFile] = []
    rows = 0
    try:
        for batch in reader:
            rows += batch.num_rows
            tasks = list(_tasks(table, batch, write_uuid, counter))
            files.extend(write_file(table.io, table.metadata, iter(tasks)))
    except BaseException:
        delete_files(table, files)
        raise
    return files, rows


def _tasks(table: Table, batch: pa.RecordBatch, write_uuid: uuid.UUID, counter: Iterator[int]) -> Iterator[WriteTask]:
    if PARTITION not in batch.schema.names:
        yield WriteTask(write_uuid, next(counter), _schema(table, batch), [batch])
        return
    data = batch.drop_columns([PARTITION])
    schema = _schema(table, data)
    runs = pc.run_end_encode(batch.column(PARTITION))  # sorted: one run per partition
    start = 0
    for end, value in zip(runs.run_ends.to_pylist(), runs.values.to_pylist()):
        key = PartitionKey([PartitionFieldValue(table.spec().fields[0], value)], table.spec(), table.schema())
        yield WriteTask(write_uuid, next(counter), schema, [data.slice(start, end - start)], partition_key=key)
        start = end


def _schema(table: Table, batch: pa.RecordBatch) -> Schema:
    # The batch's columns get the table's field ids by name; write_file casts to the file schema.
    return pyarrow_to_schema(batch.schema, name_mapping=table.schema().name_mapping)


@dataclass
class Plan:
    """What deleting a scope's rows from one snapshot takes: files dropped whole, and files
    rewritten without the scope's rows (the remainders written as new files)."""

    drop: list[DataFile] = field(default_factory=list)
    add: list[DataFile] = field(default_factory=list)
    deleted: int = 0


def plan_delete(table: Table, spec: TableSpec, scope: Scope, row_filter: BooleanExpression,
                con: duckdb.DuckDBPyConnection) -> Plan:
    """Plan removing the rows in `scope` from the table's current snapshot. A file is dropped
    without reading it when its partition lies inside a scope of days only (or the scope is the
    whole table); any other candidate is read and its rows tested exactly in DuckDB."""
    plan = Plan()
    if scope.is_nothing or table.current_snapshot() is None:
        return plan
    whole_days = _whole_days(table, scope)
    write_uuid, counter = uuid.uuid4(), itertools.count()
    registered: list[str] = []
    try:
        inside = f"coalesce({scope_predicate(con, scope, spec, registered)}, false)"
        for task in table.scan(row_filter=row_filter).plan_files():
            data = task.file
            whole = scope.is_everything or (
                data.spec_id == table.spec().spec_id and partition_day(data.partition) in whole_days)
            if whole and not task.delete_files:
                plan.drop.append(data)
                plan.deleted += data.record_count
                continue
            rows = load(con, batches(table, [task], table.schema()))
            try:
                counts = f"SELECT count(*) FILTER (WHERE {inside}), count(*) FROM {rows}"
                matched, total = con.execute(counts).fetchall()[0]
                if matched == 0:
                    continue
                plan.drop.append(data)
                plan.deleted += matched
                if matched < total:
                    remainder = f"(SELECT * FROM {rows} WHERE NOT {inside})"
                    plan.add.extend(write(table, con, remainder, write_uuid, counter)[0])
            finally:
                con.execute(f"DROP TABLE IF EXISTS {rows}")
    except BaseException:
        delete_files(table, plan.add)
        raise
    finally:
        for name in registered:
            con.unregister(name)
    return plan


def _whole_days(table: Table, scope: Scope) -> set[int]:
    """Epoch days whose partitions a scope of days only covers whole (none for other scopes)."""
    if scope.days is None or scope.keys is not None or scope.files is not None or daily_column(table) is None:
        return set()
    return {(d - EPOCH).days for d in scope.days}


def partition_day(partition) -> int | None:
    """A daily partition's value as epoch days (a date identity may be read back as a date)."""
    value = partition[0] if len(partition) else None
    return (value - EPOCH).days if isinstance(value, date) else value


def commit(table: Table, drop: Iterable[DataFile], add: Iterable[DataFile], conflict_filter: BooleanExpression,
           properties: dict[str, str]) -> Table:
    """One overwrite snapshot that removes `drop` and adds `add`, in one catalog commit.

    `conflict_filter` is what the change read: pyiceberg retries a commit that lost a race
    with another writer (refresh, re-check, rebuild manifests on the new head) and fails it
    with ValidationException when the other commit added or removed files matching the filter,
    or removed a file this one drops."""
    transaction = table.transaction()
    with transaction.update_snapshot(snapshot_properties=properties).overwrite() as overwrite:
        if conflict_filter != AlwaysFalse():
            overwrite.delete_by_predicate(conflict_filter)
        for data in drop:
            overwrite.delete_data_file(data)
        for data in add:
            overwrite.append_data_file(data)
    return transaction.commit_transaction()


def delete_files(table: Table, files: Iterable[DataFile]) -> None:
    """Remove data files no commit references (a write that failed before landing)."""
    for data in files:
        try:
            table.io.delete(data.file_path)
        except OSError:  # best effort: orphan-file maintenance removes what is left
            log.warning("could not delete unreferenced %s", data.file_path, exc_info=True)
