"""Exposure (issue: nothing lost, hostile input): credentials never reach a log line, an event,
metadata or an error message, also when a run fails; the services listen on loopback only
(that half is in test_live_dagster.py, against the running webserver)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import DagsterInstance, materialize
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from lakehouse_assets.resources import resources_for
from lakehouse_assets.settings import Settings
from lakehouse_assets.sources import TABLES_BY_NAME
from lakehouse_assets_tests.landing_builder import record, write
from lakehouse_assets_tests.moto_server import ACCESS_KEY, SECRET_KEY, aws  # noqa: F401  (fixture)
from lakehouse_assets_tests.pipeline import ALL_ASSETS

PROJECT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.system


def everything_logged(instance: DagsterInstance, run_id: str) -> str:
    """Every event of the run as stored: messages, metadata, error messages and stack traces."""
    return "\n".join(repr(e) for e in instance.all_logs(run_id))


@pytest.fixture
def aws_env(aws, monkeypatch, tmp_path):  # noqa: F811  (the moto fixture)
    aws.reset()
    order = TABLES_BY_NAME["core_order"]
    write(tmp_path, order, "20241201-000000000.csv", [record(order, "I", "2024-12-01 10:00:00", {
        "id": 1, "tenant_id": 1, "customer_id": 1, "status": "paid", "currency": "EUR",
        "total_amount": "1.00", "created_at": "2024-12-01 09:00:00", "updated_at": "2024-12-01 09:00:00"})])
    aws.create_bucket("exposure-landing")
    aws.upload_folder(tmp_path, "exposure-landing", "dms")
    for name, value in {"LAKEHOUSE_ENV": "aws", "LAKEHOUSE_LANDING_URI": "s3://exposure-landing/dms",
                        "LAKEHOUSE_GLUE_DATABASE_PREFIX": "exposure"}.items():
        monkeypatch.setenv(name, value)
    return aws


@pytest.mark.parametrize("broken", ["warehouse bucket missing", "landing bucket missing"])
def test_a_failing_aws_run_says_why_without_a_credential(aws_env, monkeypatch, broken):
    if broken == "warehouse bucket missing":
        monkeypatch.setenv("LAKEHOUSE_WAREHOUSE_URI", "s3://no-such-bucket-for-exposure/tables")
    else:
        aws_env.create_bucket("exposure-warehouse")
        monkeypatch.setenv("LAKEHOUSE_WAREHOUSE_URI", "s3://exposure-warehouse/tables")
        monkeypatch.setenv("LAKEHOUSE_LANDING_URI", "s3://no-such-landing-bucket/dms")
    instance = DagsterInstance.ephemeral()
    result = materialize(
        ALL_ASSETS,
        resources=resources_for(Settings.from_environ(os.environ)),
        instance=instance,
        tags={ASSET_PARTITION_RANGE_START_TAG: "2024-12-01", ASSET_PARTITION_RANGE_END_TAG: "2024-12-01"},
        raise_on_error=False,
    )
    assert not result.success
    text = everything_logged(instance, result.run_id)
    assert "NoSuchBucket" in text or "does not exist" in text or "no-such" in text  # it says why
    assert SECRET_KEY not in text
    assert ACCESS_KEY not in text


def test_the_cli_error_output_holds_no_credential(aws_env, tmp_path):
    """The contract's command, failing, prints its error; the secret is not in it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_")}
    env.update(LAKEHOUSE_WAREHOUSE_URI="s3://no-such-bucket-for-exposure/tables", DAGSTER_HOME=str(tmp_path))
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("dagster")), "asset", "materialize", "-m",
         "lakehouse_assets.definitions", "--select", "*", "--partition-range", "2024-12-01...2024-12-01"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert "no-such-bucket-for-exposure" in output
    assert SECRET_KEY not in output and ACCESS_KEY not in output


def test_the_run_script_binds_the_ui_to_loopback():
    """scripts/run.sh, the README's first command, says 127.0.0.1 explicitly."""
    script = (PROJECT / "scripts" / "run.sh").read_text()
    [line] = [line for line in script.splitlines() if "dagster dev" in line and not line.lstrip().startswith("#")]
    assert "-h 127.0.0.1" in line
