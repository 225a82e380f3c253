"""Several runs writing the one DuckDB file at once: no lock errors, the same tables as one run.

DuckDB lets one process write a file at a time. A run holds the warehouse from its first
load or write to its end (storage/warehouse.py); another process waits for the lock with
backoff, so separate `dagster` processes (as when runs are launched at once outside the run
queue) wait their turn."""

import subprocess
from pathlib import Path

import pytest

from lakehouse_assets.sample_data import generate_landing_zone
from lakehouse_assets.sources import SOURCE_TABLES
from lakehouse_assets_tests.dagster_services import DAGSTER, service_env
from lakehouse_assets_tests.harness import assert_same, snapshot

pytestmark = pytest.mark.system

# bronze is written with its ledger (rejects and manifest) or not at all
BRONZE = ",".join([f"bronze/{t.name}" for t in SOURCE_TABLES] + ["bronze/cdc_rejects", "bronze/landing_manifest"])
RANGES = ["2024-11-17...2024-11-23", "2024-11-24...2024-11-29", "2024-11-30...2024-12-04"]


def materialize(tmp_path: Path, landing: Path, warehouse: Path, select: str, span: str):
    home = tmp_path / f"home-{warehouse.stem}-{span[:10]}"
    home.mkdir()
    return subprocess.Popen(
        [str(DAGSTER), "asset", "materialize", "-m", "lakehouse_assets.definitions",
         "--select", select, "--partition-range", span],
        cwd=tmp_path, env=service_env(home, landing, warehouse), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def test_runs_at_once_write_without_lock_errors_and_match_one_run(tmp_path):
    landing = tmp_path / "landing"
    summary = generate_landing_zone(landing, scale=0.02, seed=5, history_days=14, cdc_days=4)
    assert summary.partition_range == "2024-11-17...2024-12-04"
    shared = tmp_path / "shared.duckdb"
    procs = [materialize(tmp_path, landing, shared, BRONZE, span) for span in RANGES]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-3000:]
        assert "Could not set lock" not in out

    single = tmp_path / "single.duckdb"
    one = materialize(tmp_path, landing, single, BRONZE, summary.partition_range)
    out = one.communicate(timeout=600)[0]
    assert one.returncode == 0, out[-3000:]
    together, alone = snapshot(shared), snapshot(single)
    assert together.keys() == alone.keys()
    assert_same(together, alone)
