"""Helpers of the crash-safety tests (`test_crash_safety.py`): running the contract's CLI as a
process group that can be SIGKILLed at a chosen log line, and reading back everything a reader
of the warehouse would see (the DuckDB file; the Glue catalog and the S3 files it points at)."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from lakehouse_assets.sources import SOURCE_TABLES

PROJECT = Path(__file__).resolve().parents[1]
DAGSTER = Path(sys.executable).with_name("dagster")
PRODUCT = "lakehouse_assets.definitions"
CRASHING = "lakehouse_assets_tests.crash_points"
# The project's local instance (run queue, its SQLite event log): what `scripts/run.sh` uses.
INSTANCE_YAML = PROJECT / "data" / "dagster_home" / "dagster.yaml"
LAYERS = ("bronze", "silver", "gold")

# Lines of the CLI's log that mark places in a run.
MARKERS = {
    "step_start": re.compile(r" - STEP_START - "),
    # A table's frame is handed to the IO manager right after this line: the write follows.
    "data_output": re.compile(r'STEP_OUTPUT - Yielded output "(core_[a-z]+|cdc_rejects|current|quarantine|result)"'),
    # Logged per partition after a write returned: the run is between two writes.
    "materialization": re.compile(r" - ASSET_MATERIALIZATION - "),
}

# ---- running the CLI -------------------------------------------------------------------

RUN_SECONDS: list[tuple[str, float]] = []  # every CLI run of this process: (module, seconds)


def make_home(parent: Path, name: str = "dagster_home") -> Path:
    home = parent / name
    home.mkdir(parents=True)
    shutil.copy(INSTANCE_YAML, home / "dagster.yaml")
    return home


def cli_env(home: Path, landing: Path, *, duckdb_path: Path | None = None,
            aws: dict[str, str] | None = None, crash: dict[str, str] | None = None) -> dict[str, str]:
    """Only the contract's variables (plus, in AWS mode, the SDK's, pointing at moto with dummy
    credentials, so that no SDK goes looking for the instance-metadata service)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LAKEHOUSE_", "DAGSTER_", "AWS_"))}
    env.update(DAGSTER_HOME=str(home), LAKEHOUSE_LANDING_URI=str(landing),
               LAKEHOUSE_PARTITIONS_START="2024-01-01",
               # As scripts/run.sh: the instance's event log gets batches of asset events (the
               # event log used to set this itself; lakehouse_instance/sqlite_event_log.py).
               DAGSTER_EVENT_BATCH_SIZE="1000")
    if duckdb_path is not None:
        env.update(LAKEHOUSE_ENV="local", LAKEHOUSE_DUCKDB_PATH=str(duckdb_path))
    if aws is not None:
        env.update(aws)
    env.update(crash or {})
    return env


@dataclass
class Outcome:
    returncode: int
    output: str
    seconds: float
    killed_at: str = ""  # the log line after which the test killed the run
    reports: list[dict] = field(default_factory=list)  # what crash_points reported

    @property
    def killed(self) -> bool:
        return self.returncode == -signal.SIGKILL

    log: Path | None = None  # the whole output

    def tail(self, chars: int = 4000) -> str:
        return f"(whole log: {self.log})\n" + self.output[-chars:]


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the run and everything it started: it leads its own process group."""
    try:
        if os.getpgid(proc.pid) == proc.pid:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except ProcessLookupError:
        pass


def run_cli(module: str, span: str, env: dict[str, str], cwd: Path, *, select: str = "*",
            kill_after: tuple[re.Pattern, int, float] | None = None,
            report: Path | None = None, timeout: float = 400) -> Outcome:
    """`dagster asset materialize -m <module> --select <select> --partition-range <span>`.

    With `kill_after=(pattern, n, delay)` the whole process group is SIGKILLed `delay` seconds
    after the n-th log line matching `pattern`."""
    if report is not None:
        report.unlink(missing_ok=True)
        env = {**env, "LAKEHOUSE_CRASH_REPORT": str(report)}
    started = time.perf_counter()
    proc = subprocess.Popen(
        [str(DAGSTER), "asset", "materialize", "-m", module, "--select", select,
         "--partition-range", span],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    hit = threading.Event()
    hit_line: list[str] = []

    def read() -> None:
        seen = 0
        for line in proc.stdout:
            lines.append(line)
            if kill_after is not None and not hit.is_set() and kill_after[0].search(line):
                seen += 1
                if seen == kill_after[1]:
                    hit_line.append(line.rstrip())
                    hit.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if kill_after is not None:
            deadline = time.monotonic() + timeout
            while not hit.wait(0.05):
                if proc.poll() is not None or time.monotonic() > deadline:
                    break
            if hit.is_set():
                time.sleep(kill_after[2])
                _kill_group(proc)
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            _kill_group(proc)
            proc.wait()
        reader.join(timeout=30)
    RUN_SECONDS.append((module, time.perf_counter() - started))
    reports = []
    if report is not None and report.exists():
        reports = [json.loads(line) for line in report.read_text().splitlines() if line.strip()]
    log = cwd / f"cli-{len(RUN_SECONDS):03d}.log"
    log.write_text("".join(lines))
    return Outcome(proc.returncode, "".join(lines), time.perf_counter() - started,
                   hit_line[0] if hit_line else "", reports, log)


def marker_counts(output: str) -> dict[str, int]:
    return {name: sum(1 for line in output.splitlines() if p.search(line)) for name, p in MARKERS.items()}


def written_tables(output: str) -> list[str]:
    """The tables in the order a run wrote them ('bronze.core_tenant', ...), from the
    per-partition materialization lines logged after each write."""
    found = re.findall(r" - ASSET_MATERIALIZATION - Materialized value ([a-z]+) ([a-z_]+)\.", output)
    order: list[str] = []
    for layer, name in found:
        if not order or order[-1] != f"{layer}.{name}":
            order.append(f"{layer}.{name}")
    return order


# A process that opens a new warehouse through the product's own connect(), as the first
# load or write of a run does, and is killed by the kernel the moment DuckDB's writes of the new
# file's headers would take it past `limit` bytes (RLIMIT_FSIZE with SIGXFSZ's default action:
# a kill at that exact instant, as deterministic as a kill can be). Python ignores SIGXFSZ by
# default, so the child restores it.
KILLED_WHILE_CREATING = """
import resource, signal, sys
from types import SimpleNamespace
from lakehouse_assets.storage.duckdb_io import LakehouseDuckDbClient
path, limit = sys.argv[1], int(sys.argv[2])
context = SimpleNamespace(resource_config={"database": path, "connection_config": {}})
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
with LakehouseDuckDbClient.connect(context, None) as conn:
    conn.execute("CREATE SCHEMA IF NOT EXISTS bronze").fetchall()
"""


def kill_while_creating(path: Path, limit: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", KILLED_WHILE_CREATING, str(path), str(limit)],
                          capture_output=True, text=True, timeout=120)


# ---- what a reader sees --------------------------------------------------------------

ENTITY_KEYS = {t.entity: t.primary_key for t in SOURCE_TABLES}
GOLD_GRAIN = {
    "daily_revenue": ("date", "tenant_id"),
    "daily_funnel": ("date", "tenant_id"),
    "subscription_mrr": ("date", "tenant_id"),
    "daily_summary": ("date", "tenant_id"),
    "hourly_activity": ("date", "hour", "tenant_id"),
    "customer_segments": ("date", "tenant_id", "customer_id"),
}


def grain(table: str) -> tuple[tuple[str, ...], bool]:
    """The columns unique in a table, and whether rows with a NULL in them are exempt
    (a quarantined version may lack its primary key)."""
    layer, name = table.split(".")
    if layer == "bronze" and name == "landing_manifest":  # one row per landed file and day
        return ("_source_file", "_partition_date"), False
    if layer == "bronze":  # the tables of changes and cdc_rejects: one row per landed record
        return ("_source_file", "_source_row"), False
    if layer == "silver":
        if name.endswith("_quarantine"):
            return ENTITY_KEYS[name.removesuffix("_quarantine")], True
        return ENTITY_KEYS[name], False
    assert name in GOLD_GRAIN, f"no grain declared here for {table}: add it to GOLD_GRAIN"
    return GOLD_GRAIN[name], False


def duplicates(table: str, frame: pl.DataFrame) -> int:
    """Rows beyond the first of each grain value (0 when the table's grain is unique)."""
    keys, nulls_exempt = grain(table)
    if frame.is_empty() and not frame.columns:
        return 0
    missing = [k for k in keys if k not in frame.columns]
    assert not missing, f"{table} lacks its grain columns {missing}"
    keyed = frame.select(keys)
    if nulls_exempt:
        keyed = keyed.drop_nulls()
    else:
        assert keyed.null_count().sum_horizontal().item() == 0, f"{table}: NULL in grain {keys}"
    return keyed.height - keyed.unique().height


# Columns that say when and by which run a row was written: they differ between any two runs.
VOLATILE = ("_ingested_at", "_run_id")


def tidy(frame: pl.DataFrame) -> pl.DataFrame:
    """Comparable: without the columns that record when (and by which run) it was read, rows
    sorted."""
    frame = frame.drop(*VOLATILE, strict=False)
    return frame.sort(frame.columns, nulls_last=True) if frame.columns else frame


def row_difference(expected: pl.DataFrame, actual: pl.DataFrame) -> tuple[int, int]:
    """(rows of `expected` missing from `actual`, rows of `actual` not in `expected`), as
    multisets of whole rows."""
    if expected.is_empty() and actual.is_empty():
        return 0, 0
    if expected.columns != actual.columns:
        return expected.height, actual.height
    want = Counter(expected.hash_rows(seed=1).to_list())
    got = Counter(actual.hash_rows(seed=1).to_list())
    return sum((want - got).values()), sum((got - want).values())


def duckdb_tables(path: Path) -> dict[str, pl.DataFrame]:
    """Every table of the DuckDB file, opened read-only as any reader would (after a crash
    this replays the write-ahead log), without `_ingested_at`, rows sorted."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        names = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables ORDER BY 1, 2"
        ).fetchall()
        return {f"{s}.{t}": tidy(con.sql(f'SELECT * FROM "{s}"."{t}"').pl()) for s, t in names}
    finally:
        con.close()


@dataclass
class Check:
    """What one look at a warehouse found."""

    tables: int = 0
    partitions: int = 0
    lost: int = 0  # rows of the reference missing where they must be
    extra: int = 0  # rows that are not the reference's (doubled or half-written)
    problems: list[str] = field(default_factory=list)
    wal: bool = False  # local: a write-ahead log was there to replay


def check_local(path: Path, reference: dict[str, pl.DataFrame], days: int,
                must_exist: set[str]) -> tuple[Check, set[str]]:
    """After a crash (or a rerun): every table opens and has a unique grain; every table that
    exists is exactly the reference's (a run replaces a table's whole partition range in one
    transaction, so there is nothing in between); tables in `must_exist` still exist."""
    check = Check()
    check.wal = Path(f"{path}.wal").exists()  # committed changes DuckDB must replay on open
    # No file yet: the run was killed before its first write opened one.
    tables = duckdb_tables(path) if path.exists() else {}
    for name, frame in tables.items():
        check.tables += 1
        check.partitions += days
        dup = duplicates(name, frame)
        if dup:
            check.problems.append(f"{name}: {dup} rows repeat the grain {grain(name)[0]}")
        if name not in reference:
            check.problems.append(f"{name}: a table the uninterrupted run does not have")
            continue
        ref = reference[name]
        if frame.schema != ref.schema:
            check.problems.append(f"{name}: schema {frame.schema} != {ref.schema}")
        lost, extra = row_difference(ref, frame)
        check.lost += lost
        check.extra += extra
        if lost or extra:
            check.problems.append(f"{name}: {lost} reference rows missing, {extra} rows not the reference's")
    for name in sorted(must_exist - tables.keys()):
        check.problems.append(f"{name}: existed before the crash, gone after it")
        check.lost += reference[name].height
    return check, set(tables)


# ---- AWS: the Glue catalog and the files it points at ------------------------------------


@dataclass
class AwsWarehouse:
    """One warehouse on the moto server: Glue databases `<prefix>_<layer>`, files under
    s3://<bucket>/<folder>/."""

    aws: object  # moto_server.MotoAWS
    bucket: str
    folder: str
    prefix: str

    def env(self, landing: Path) -> dict[str, str]:
        return {**self.aws.env(), "LAKEHOUSE_ENV": "aws",
                "LAKEHOUSE_WAREHOUSE_URI": f"s3://{self.bucket}/{self.folder}",
                "LAKEHOUSE_GLUE_DATABASE_PREFIX": self.prefix,
                "LAKEHOUSE_LANDING_URI": str(landing)}

    def keys(self) -> list[str]:
        return self.aws.keys(self.bucket, f"{self.folder}/")

    def tables(self) -> dict[str, dict]:
        glue = self.aws.glue()
        out = {}
        for layer in LAYERS:
            try:
                pages = list(glue.get_paginator("get_tables").paginate(DatabaseName=f"{self.prefix}_{layer}"))
            except glue.exceptions.EntityNotFoundException:
                continue
            for page in pages:
                out.update({f"{layer}.{t['Name']}": t for t in page["TableList"]})
        return out

    def partitions(self, table: str, glue=None) -> list[dict]:
        layer, name = table.split(".")
        pages = (glue or self.aws.glue()).get_paginator("get_partitions").paginate(
            DatabaseName=f"{self.prefix}_{layer}", TableName=name)
        return [p for page in pages for p in page["Partitions"]]

    def read(self) -> tuple[dict[str, dict[str, pl.DataFrame]], list[str], list[str]]:
        """What a catalog reader (Athena) sees: per table, per registered day, the rows of the
        files in the folder the partition points at. Also problems (a partition whose folder
        does not hold exactly one complete Parquet file matching its row count) and the S3
        objects no partition points at (garbage, invisible to catalog readers)."""
        s3 = self.aws.s3()
        keys = self.keys()
        by_folder: dict[str, list[str]] = {}
        for key in keys:
            by_folder.setdefault(f"s3://{self.bucket}/{key.rsplit('/', 1)[0]}/", []).append(key)
        out: dict[str, dict[str, pl.DataFrame]] = {}
        problems: list[str] = []
        referenced: set[str] = set()
        tables = self.tables()
        glue = self.aws.glue()  # one client per thread pool: boto3 clients are thread-safe
        with ThreadPoolExecutor(max_workers=8) as pool:
            listed = dict(zip(tables, pool.map(lambda t: self.partitions(t, glue), tables)))
            wanted = [k for parts in listed.values() for p in parts
                      for k in by_folder.get(p["StorageDescriptor"]["Location"], []) if k.endswith(".parquet")]
            bodies = dict(zip(wanted, pool.map(
                lambda k: s3.get_object(Bucket=self.bucket, Key=k)["Body"].read(), wanted)))
        for table, raw in tables.items():
            days: dict[str, pl.DataFrame] = {}
            if not raw.get("PartitionKeys"):
                problems.append(f"{table}: not partitioned in Glue")
            for p in listed[table]:
                day, location = p["Values"][0], p["StorageDescriptor"]["Location"]
                files = [k for k in by_folder.get(location, []) if k.endswith(".parquet")]
                referenced.update(by_folder.get(location, []))
                if len(files) != 1:
                    problems.append(f"{table} dt={day}: {len(files)} Parquet files at {location}")
                    continue
                body = bodies[files[0]]
                try:
                    frame = pl.read_parquet(io.BytesIO(body))
                except Exception as exc:  # a torn or truncated file
                    problems.append(f"{table} dt={day}: unreadable {files[0]}: {exc}")
                    continue
                rows = int(p.get("Parameters", {}).get("recordCount", -1))
                if rows != frame.height:
                    problems.append(f"{table} dt={day}: Glue says {rows} rows, the file has {frame.height}")
                days[day] = tidy(frame)
            out[table] = days
        garbage = [k for k in keys if k not in referenced]
        return out, problems, garbage


def check_aws(warehouse: AwsWarehouse, reference: dict[str, dict[str, pl.DataFrame]],
              complete: bool, must_exist: set[tuple[str, str]] = frozenset()
              ) -> tuple[Check, set[tuple[str, str]], list[str]]:
    """Every registered partition is exactly the reference's partition (old version or new,
    which are the same rows), never empty-by-accident, doubled or half; with `complete`,
    every partition of the reference is registered; partitions in `must_exist` still are.
    Returns the check, the registered (table, day) pairs and the garbage keys."""
    check = Check()
    seen, problems, garbage = warehouse.read()
    check.problems += problems
    registered: set[tuple[str, str]] = set()
    for table, days in seen.items():
        check.tables += 1
        if table not in reference:
            check.problems.append(f"{table}: a table the uninterrupted run does not have")
            continue
        frames = []
        for day, frame in days.items():
            registered.add((table, day))
            check.partitions += 1
            ref = reference[table].get(day)
            if ref is None:
                check.problems.append(f"{table} dt={day}: a partition the uninterrupted run does not have")
                continue
            lost, extra = row_difference(ref, frame)
            if frame.schema != ref.schema and not (frame.is_empty() and ref.is_empty()):
                check.problems.append(f"{table} dt={day}: schema {frame.schema} != {ref.schema}")
            check.lost += lost
            check.extra += extra
            if lost or extra:
                check.problems.append(f"{table} dt={day}: {lost} reference rows missing, {extra} not the reference's")
            frames.append(frame)
        nonempty = [f for f in frames if f.height]
        if nonempty:
            dup = duplicates(table, pl.concat(nonempty, how="vertical_relaxed"))
            if dup:
                check.problems.append(f"{table}: {dup} rows repeat the grain {grain(table)[0]}")
    wanted = {(t, d) for t, days in reference.items() for d in days} if complete else set(must_exist)
    for table, day in sorted(wanted - registered):
        check.problems.append(f"{table} dt={day}: not registered in Glue")
        check.lost += reference[table][day].height
    return check, registered, garbage


def by_day(frame: pl.DataFrame, column: str, days: list[str]) -> dict[str, pl.DataFrame]:
    """A local table's rows per daily partition (column a DATE or TIMESTAMP), every day of
    `days` included (empty when it has no rows), to compare with the S3 warehouse's partitions."""
    day = pl.col(column).cast(pl.Date) if frame.schema[column] == pl.Date else pl.col(column).dt.date()
    tagged = frame.with_columns(day.dt.to_string("%Y-%m-%d").alias("__day"))
    parts = {d: tidy(part.drop("__day"))
             for (d,), part in tagged.partition_by("__day", as_dict=True).items()}
    outside = set(parts) - set(days)
    assert not outside, f"rows outside the days asked for: {sorted(outside)[:5]}"
    return {d: parts.get(d, tidy(frame.clear())) for d in days}
