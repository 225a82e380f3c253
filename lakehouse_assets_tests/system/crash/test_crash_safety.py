"""Crash safety of the local warehouse (one DuckDB file): a run SIGKILLed (kill -9, its whole
process group) inside a write, between two tables, at a seeded log point or while the file is
created leaves every table readable, each data table as the run found it or as an
uninterrupted run leaves it (never half-written or doubled), and a rerun, or the landing
sensor's next tick and its run, gives exactly the uninterrupted run's tables.

Runs are the contract's CLI (or a sensor's request executed in a process of its own, as the
daemon does) against the project's instance configuration. Kills inside writes use the test
code location `crash_points.py`; it journals every write to a file, fsynced before the run
goes on, so a test knows exactly which writes had committed (their COMMIT had returned) when
the kill landed. Reruns use the product as shipped. "Exactly" means equal rows and types,
the columns that say when and by which run a row was written aside (crash_helpers.VOLATILE);
a rerun must also leave the key state and the marks the uninterrupted run leaves.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import signal
import subprocess
import sys
from datetime import datetime, timezone

import pytest
from dagster import DagsterInstance, RunsFilter

from lakehouse_assets.gold import GOLD_TABLES
from lakehouse_assets.sample_data import generate_landing_zone, write_cdc_drop
from lakehouse_assets.sources import SOURCE_TABLES
from lakehouse_assets.storage.duckdb_warehouse import open_reader, open_session
from lakehouse_assets_tests.system.crash.commit_trials import run_trials
from lakehouse_assets_tests.system.crash.crash_helpers import (
    CRASHING,
    PRODUCT,
    Writes,
    check_kill,
    cli_env,
    compared,
    crash_summary,  # noqa: F401  (fixture)
    differences,
    duckdb_tables,
    make_home,
    materialize_args,
    run,
)
from lakehouse_assets_tests.harness import Lakehouse, failures
from lakehouse_assets_tests.pipeline import run_pipeline

pytestmark = pytest.mark.system

SEED = 20241210  # every choice below comes from random.Random(f"{SEED}-<test>")
ZONE = {"scale": 0.02, "seed": 5, "history_days": 12, "cdc_days": 3, "dirty_rate": 0.01}
BRONZE = [f"bronze.{t.name}" for t in SOURCE_TABLES]
SILVER = [f"silver.{t.entity}" for t in SOURCE_TABLES]
GOLD = [f"gold.{g.name}" for g in GOLD_TABLES]
BATCH_BYTES = 100_000  # killed runs read landing files in batches this big (several a table)


@pytest.fixture(scope="module")
def zone(tmp_path_factory):
    root = tmp_path_factory.mktemp("landing")
    return root, generate_landing_zone(root, **ZONE).partition_range


@pytest.fixture(scope="module")
def reference(zone, tmp_path_factory):
    """The uninterrupted backfill of the whole span, in-process."""
    root, span = zone
    path = tmp_path_factory.mktemp("reference") / "reference.duckdb"
    result = run_pipeline(root, path, *span.split("..."))
    assert result.success, failures(result)
    tables = duckdb_tables(path)
    assert all(not tables[name].is_empty() for name in BRONZE + SILVER + GOLD)
    assert sum(f.height for n, f in tables.items() if n.endswith("_quarantine")) > 0
    return path, tables


def test_local_backfill_killed_inside_writes_and_at_log_points_then_rerun(zone, reference, tmp_path):
    """A backfill of the whole span from an empty warehouse, killed five times, each run on
    what the last left: after a bronze table's DELETE (the table itself created in that
    transaction), inside a silver table's COMMIT (a seeded timer), right after a gold table's
    COMMIT returned (Dagster not told), and at two seeded log lines; then rerun. Then once on
    the complete warehouse, between two INSERT batches of a bronze table: it reads as it was.
    (The killed runs read landing files in small batches, the rerun and the reference in the
    product's: how bronze batches its reads changes no row.)"""
    root, span = zone
    _, reference = reference
    rng = random.Random(f"{SEED}-local")
    path, journal = tmp_path / "warehouse.duckdb", tmp_path / "journal.jsonl"
    home = make_home(tmp_path)
    tables: dict = {}

    def crash(point: str, at: str, delay_ms: float = 0) -> None:
        nonlocal tables
        env = cli_env(home, root, duckdb_path=path, crash={
            "LAKEHOUSE_CRASH_POINT": point, "LAKEHOUSE_CRASH_AT": at, "LAKEHOUSE_CRASH_DELAY_MS": str(delay_ms),
            "LAKEHOUSE_CRASH_BATCH_BYTES": str(BATCH_BYTES)})
        out = run(materialize_args(CRASHING, span), env, tmp_path, journal=journal)
        tables = check_kill(duckdb_tables(path), tables, reference, out)
        killed = Writes.of(out.journal).killed
        assert killed.get("point") == point, out.tail()
        assert point == "in_commit" or killed["table"] == at  # a timer may fire in a later write

    crash("after_delete", rng.choice(BRONZE))
    crash("in_commit", rng.choice(SILVER), delay_ms=round(rng.uniform(0, 2), 2))  # COMMIT takes ~1 ms
    crash("after_commit", rng.choice(GOLD))
    # Killed from outside, a seeded delay after a seeded log line: a step starting, a table
    # logged as written (the journal still says exactly which writes had committed).
    step = rng.choice([f"silver_{t.entity}" for t in SOURCE_TABLES] + [f"gold__{g.name}" for g in GOLD_TABLES])
    layer, name = rng.choice(BRONZE + SILVER).split(".")
    for line in (rf'STEP_START - Started execution of step "{step}"',
                 rf"ASSET_MATERIALIZATION - Materialized value {layer} {name}\."):
        out = run(materialize_args(CRASHING, span), cli_env(home, root, duckdb_path=path), tmp_path,
                  journal=journal, kill_after=(re.compile(line), round(rng.uniform(0, 0.3), 2)))
        tables = check_kill(duckdb_tables(path), tables, reference, out)

    out = run(materialize_args(PRODUCT, span), cli_env(home, root, duckdb_path=path), tmp_path)
    assert out.returncode == 0, out.tail()
    tables = duckdb_tables(path)
    assert differences(compared(tables), compared(reference)) == []

    # The complete warehouse (old rows = new rows), between two INSERTs of bronze.core_event.
    assert sum(f.stat().st_size for f in (root / "public" / "core_event").iterdir()) > 2 * BATCH_BYTES
    crash("mid_insert", "bronze.core_event")
    assert differences(compared(duckdb_tables(path)), compared(reference)) == []


CREATING = """
import os, resource, signal, sys
from lakehouse_assets.storage.duckdb_warehouse import open_session
path, how = sys.argv[1], sys.argv[2]
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
if how == "before_link":  # the new file complete under its temporary name
    os.link = lambda *args: os.kill(os.getpid(), signal.SIGKILL)
else:  # killed by the kernel as its writes pass this many bytes (SIGXFSZ's default action)
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(how), resource.RLIM_INFINITY))
open_session(path, "1GB")
"""


@pytest.mark.parametrize("how", ["0", "4096", "8192", "before_link"])
def test_local_killed_while_the_warehouse_file_is_created(tmp_path, how):
    """A run's first write creates the DuckDB file; killed meanwhile (its headers partly
    written, or whole but not yet in place) it must leave nothing that stops the next run or
    a reader: a file no one can open would fail every later run."""
    path = tmp_path / "warehouse" / "lakehouse.duckdb"
    child = subprocess.run([sys.executable, "-c", CREATING, str(path), how], capture_output=True, text=True,
                           timeout=120)
    assert child.returncode in (-signal.SIGXFSZ, -signal.SIGKILL), (child.returncode, child.stderr[-2000:])
    session = open_session(str(path), "1GB")
    try:
        session.con.execute("CREATE SCHEMA bronze; CREATE TABLE bronze.after AS SELECT 1 AS x")
    finally:
        session.close()
    reader = open_reader(str(path), "1GB")
    try:
        assert reader.con.execute("SELECT x FROM bronze.after").fetchall() == [(1,)]
    finally:
        reader.close()
    assert [p.name for p in path.parent.iterdir()] in ([path.name], sorted([path.name, f"{path.name}.wal"]))


def test_returned_commits_survive_kill_9(tmp_path):
    """A few of commit_trials' trials (run many by hand): writes through the product's session,
    each writer killed by a timer armed at a COMMIT; every write whose COMMIT returned is
    there, whole, and the one whose COMMIT was under way is there whole or not at all."""
    tally = run_trials(tmp_path, trials=6, seed=SEED)
    assert tally.trials == 6 and tally.writes_returned > 0
    assert tally.lost == [] and tally.broken == []


def run_request(request, env: dict, cwd, journal):
    """A sensor's request executed in a process group of its own, as the daemon runs it."""
    spec = cwd / "request.json"
    spec.write_text(json.dumps({"selection": [k.to_user_string() for k in request.asset_selection],
                                "tags": dict(request.tags), "run_key": request.run_key}))
    return run([sys.executable, "-m", CRASHING, str(spec)], env, cwd, journal=journal)


def test_sensor_run_killed_then_the_next_ticks_recover(zone, reference, tmp_path, monkeypatch):
    """The landing sensor's incremental run (lakehouse/mode=changes) for a CDC drop, killed
    right after a bronze table of the drop committed, before its ledger (the manifest) was
    written; Dagster then marks the run failed (as run monitoring does on a dead run worker),
    the next tick asks for the files again, and that run is killed right after silver.orders
    committed. The next tick finds what is left (bronze not merged, keys and gold cells
    pending) and its run leaves exactly the warehouse of an uninterrupted sensor run. It starts
    from the reference backfill's warehouse, after the sensor's first look at it."""
    root, _ = zone
    landing, path = tmp_path / "landing", tmp_path / "warehouse.duckdb"
    shutil.copytree(root, landing)
    home = make_home(tmp_path)
    monkeypatch.setenv("DAGSTER_HOME", str(home))  # the instance's event log storage lives there
    instance = DagsterInstance.from_config(str(home))
    shutil.copy(reference[0], path)
    lake = Lakehouse(landing, path, instance=instance)
    lake.tick_and_run()  # a backfill leaves keys deleted before silver held them pending: one run clears them
    write_cdc_drop(landing, ZONE["scale"], 7, datetime(2024, 12, 3, 23, 0, tzinfo=timezone.utc))
    before = duckdb_tables(path)
    shutil.copy(path, tmp_path / "uninterrupted.duckdb")
    uninterrupted = Lakehouse(landing, tmp_path / "uninterrupted.duckdb")
    assert uninterrupted.tick_and_run() is not None
    after = duckdb_tables(uninterrupted.warehouse)
    assert differences(compared(after), compared(before)) != []  # the drop changes something

    env, journal = cli_env(home, landing, duckdb_path=path), tmp_path / "journal.jsonl"
    first = lake.tick().run_requests[0]
    assert first.tags["lakehouse/mode"] == "changes"
    kill = {"LAKEHOUSE_CRASH_POINT": "after_commit", "LAKEHOUSE_CRASH_AT": "bronze.core_order"}
    out = run_request(first, {**env, **kill}, tmp_path, journal)
    tables = check_kill(duckdb_tables(path), before, after, out)
    assert "bronze.landing_manifest" not in Writes.of(out.journal).committed
    (killed,) = instance.get_runs(RunsFilter(tags={"dagster/run_key": first.run_key}))
    instance.report_run_failed(killed)

    again = lake.tick().run_requests[0]
    assert again.run_key != first.run_key and set(again.asset_selection) >= set(first.asset_selection)
    out = run_request(again, {**env, "LAKEHOUSE_CRASH_POINT": "after_commit", "LAKEHOUSE_CRASH_AT": "silver.orders"},
                      tmp_path, journal)
    check_kill(duckdb_tables(path), tables, after, out)

    assert lake.tick_and_run() is not None  # what the killed run left
    assert differences(compared(duckdb_tables(path)), compared(after)) == []
    assert not lake.tick().run_requests  # and nothing more
