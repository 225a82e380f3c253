"""The contract's command line (CONTRACT section 6): `dagster asset materialize` over a partition
range, in a fresh DAGSTER_HOME, from outside the project folder, with only the contract's
variables set."""

import subprocess

import pytest

from lakehouse_assets_tests.dagster_services import DAGSTER, service_env
from lakehouse_assets_tests.harness import assert_same, snapshot
from lakehouse_assets_tests.pipeline import run_pipeline

pytestmark = pytest.mark.system


def test_partition_range_cli_with_only_the_contract_variables(small_zone, tmp_path):
    root, summary = small_zone
    warehouse = tmp_path / "wh" / "lakehouse.duckdb"
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = service_env(home, root, warehouse)  # the contract's variables, no other LAKEHOUSE_ or DAGSTER_
    proc = subprocess.run(
        [str(DAGSTER), "asset", "materialize", "-m", "lakehouse_assets.definitions",
         "--select", "*", "--partition-range", summary.partition_range],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    tables = snapshot(warehouse)
    assert len(tables) == 10 + 16 + 6  # bronze (8, rejects, manifest), silver, gold
    assert len(tables["silver.orders"]) == summary.table("core_order").live_rows
    # the same warehouse as the same run in this process
    inprocess = tmp_path / "inprocess.duckdb"
    assert run_pipeline(root, inprocess, *summary.partition_range.split("...")).success
    assert_same(tables, snapshot(inprocess))
