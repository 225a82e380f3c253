"""The production instance (deploy/dagster.yaml) against a real PostgreSQL: Debian's, started on
loopback with TLS required (no plain connection is accepted) and SCRAM passwords, as RDS.

The instance is the shipped file's storage section exactly (`sslmode: require`, the psycopg2
scheme, the connection plugin), with its run queue, limits, monitoring and retries; its run
launcher (ECS) and compute logs (S3) need AWS, so those two are Dagster's local defaults
(lakehouse_assets_tests/production_instance.py). On it: `dagster instance migrate`, the
connections a process keeps, and a live `dagster dev` whose landing sensor loads a generated
zone into gold with every event in Postgres."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import DagsterInstance

from lakehouse_assets.sample_data import generate_landing_zone
from lakehouse_assets_tests.dagster_services import FINISHED, running_dagster
from lakehouse_assets_tests.postgres_server import pg_server  # noqa: F401  (fixture)
from lakehouse_assets_tests.production_instance import production_instance_yaml, write_production_home

pytestmark = pytest.mark.system

DAGSTER = Path(sys.executable).with_name("dagster")
SENSOR = "landing_sensor"


def sessions(server, db: str) -> int:
    """Connections ever opened to `db` (PostgreSQL counts them in pg_stat_database)."""
    con = server.connect(db)
    try:
        with con.cursor() as cur:
            cur.execute("SELECT pg_stat_clear_snapshot()")
            cur.execute("SELECT sessions FROM pg_stat_database WHERE datname = %s", (db,))
            return cur.fetchone()[0]
    finally:
        con.close()


def migrate(home: Path, env: dict) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "LAKEHOUSE_"))}
    return subprocess.run([str(DAGSTER), "instance", "migrate"], env={**clean, **env,
                          "DAGSTER_HOME": str(home)}, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def production(pg_server, tmp_path_factory):  # noqa: F811
    """A migrated production instance: (server, database, DAGSTER_HOME, its env)."""
    db = pg_server.create_database()
    home = write_production_home(tmp_path_factory.mktemp("production") / "dagster_home")
    env = pg_server.env(db)
    done = migrate(home, env)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{pg_server.log_tail()}"
    return pg_server, db, home, env


@pytest.mark.system
def test_dagster_instance_migrate_creates_the_storage(production):
    server, db, home, env = production
    con = server.connect(db)
    with con.cursor() as cur:
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        tables = {row[0] for row in cur.fetchall()}
    con.close()
    assert {"runs", "event_logs", "asset_keys", "jobs", "instigators", "alembic_version"} <= tables
    assert migrate(home, env).returncode == 0  # and again, on an up-to-date schema


@pytest.mark.system
def test_a_process_keeps_its_connections_and_they_use_tls(production, monkeypatch):
    server, db, home, env = production
    for name, value in {**env, "DAGSTER_HOME": str(home)}.items():
        monkeypatch.setenv(name, value)
    instance = DagsterInstance.get()
    try:
        before = sessions(server, db)
        for _ in range(40):  # 40 reads of each storage: runs, event log, schedules
            instance.get_runs(limit=1)
            instance.get_asset_keys()
            instance.all_instigator_state()
        opened = sessions(server, db) - before - 1  # less the count's own connection
        con = server.connect(db)
        with con.cursor() as cur:
            cur.execute("SELECT a.pid, s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)"
                        " WHERE a.datname = %s AND a.pid <> pg_backend_pid()", (db,))
            kept = cur.fetchall()
        con.close()
    finally:
        instance.dispose()
    # dagster-postgres alone opens one connection per read (NullPool): 120 here.
    assert opened <= 6, opened
    assert kept and all(ssl for _, ssl in kept), kept


@pytest.mark.system
def test_a_live_run_succeeds_on_the_production_storage(production, tmp_path):
    server, db, _, env = production
    summary = generate_landing_zone(tmp_path / "landing", scale=0.01, seed=11, dirty_rate=0.0)
    started = time.monotonic()
    with running_dagster(tmp_path, tmp_path / "landing", tmp_path / "warehouse.duckdb",
                         instance_yaml=production_instance_yaml(), env=env,
                         startup_timeout=180) as services:
        runs = services.wait_for_runs(
            lambda runs: any({"key": "dagster/sensor_name", "value": SENSOR} in r["tags"]
                             and r["status"] in FINISHED for r in runs),
            timeout=480, what="the landing sensor's run to finish")
        print(f"sensor run finished {time.monotonic() - started:.0f} s after dagster dev started")
        assert [r["status"] for r in runs] == ["SUCCESS"], runs
        first, last = summary.partition_range.split("...")
        ranges = services.asset_partitions_materialized("gold/daily_revenue")
        assert any(a <= first and b >= last for a, b in ranges), ranges
        [(orders,)] = services.query_warehouse("SELECT count(*) FROM silver.orders")
        assert orders == summary.table("core_order").live_rows
    # What the UI showed came from Postgres: the run and its events are there.
    con = server.connect(db)
    with con.cursor() as cur:
        cur.execute("SELECT status FROM runs WHERE run_id = %s", (runs[0]["runId"],))
        assert cur.fetchone() == ("SUCCESS",)
        cur.execute("SELECT count(*) FROM event_logs WHERE run_id = %s"
                    " AND dagster_event_type = 'ASSET_MATERIALIZATION'", (runs[0]["runId"],))
        assert cur.fetchone()[0] > 0
    con.close()
