"""A full backfill fanned out over K runs at once (jobs/fanout.py), all committing to the same
Iceberg tables in moto's Glue, equals the single-run backfill, for K = 2 and K = 4.

The runs go the production way: `lakehouse-fanout` submits them to the instance, the run
queue (run coordinator and concurrency limits copied from deploy/dagster.yaml) admits them,
and a real `dagster-daemon` launches each in its own process. The daemon starts only once
the driver has stopped the landing sensor and the daily schedule, as in production, where
the daemon is always up: so no sensor run races the fan-out here either."""

import shutil
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

import pytest
import yaml
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

from lakehouse_assets.jobs.fanout import FANOUT_TAG, split
from lakehouse_assets.runs import RANGE_END_TAG, RANGE_START_TAG, REASON_TAG
from lakehouse_assets.sample_data import generate_landing_zone
from lakehouse_assets_tests.aws_lakehouse import DAGSTER, AwsLakehouse, AwsMode, assert_same_as_local
from lakehouse_assets_tests.dagster_services import PROJECT, stop
from lakehouse_assets_tests.harness import Lakehouse, keys, span
from lakehouse_assets_tests.moto_server import shared_aws  # noqa: F401 (fixture)

pytestmark = pytest.mark.system


@pytest.fixture(scope="module")
def zone(tmp_path_factory):
    root = tmp_path_factory.mktemp("landing")
    summary = generate_landing_zone(root, scale=0.01, seed=5, history_days=20)
    first, last = summary.partition_range.split("...")
    return root, date.fromisoformat(first), date.fromisoformat(last)


@pytest.fixture(scope="module")
def single_run(zone, tmp_path_factory):
    """The reference: one run over the whole range (local mode, which AWS mode equals:
    test_aws_pipeline.py), and what the landing sensor asks for after it (keys whose day lies
    outside the range are left to write: the bookkeeping must say the same after a fan-out)."""
    root, first, last = zone
    lake = Lakehouse(root, tmp_path_factory.mktemp("single") / "lakehouse.duckdb")
    lake.backfill(str(first), str(last))
    return lake.snapshot(), leftover(lake.tick())


def leftover(result) -> list[tuple]:
    return [(r.tags.get(REASON_TAG), span(r), keys(r)) for r in result.run_requests]


def queued_home(folder):
    """A DAGSTER_HOME whose run queue is production's (deploy/dagster.yaml); storage stays the
    default sqlite, in memory-backed /dev/shm where there is one (its fsyncs cost nothing)."""
    production = yaml.safe_load((PROJECT / "deploy" / "dagster.yaml").read_text())
    folder.mkdir(parents=True)
    config = {k: production[k] for k in ("run_coordinator", "concurrency")} | {"telemetry": {"enabled": False}}
    config["run_coordinator"]["config"] = {"dequeue_interval_seconds": 1}  # not the limits: how often it looks
    (folder / "dagster.yaml").write_text(yaml.safe_dump(config))
    return folder


@pytest.fixture
def home(tmp_path):
    base = Path(tempfile.mkdtemp(prefix="fanout-", dir="/dev/shm" if Path("/dev/shm").is_dir() else tmp_path))
    yield queued_home(base / "home")
    shutil.rmtree(base, ignore_errors=True)


def fan_out(mode: AwsMode, home, first: date, last: date, k: int, cwd) -> str:
    env = mode.cli_env(home)
    driver = subprocess.Popen(
        [sys.executable, "-m", "lakehouse_assets.jobs.fanout", "--runs", str(k), "--partition-range",
         f"{first}...{last}", "--timeout", "900"],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in driver.stdout:  # until the sensor and schedule are stopped and the first run queued
        lines.append(line)
        if line.startswith("bronze:") or driver.poll() is not None:
            break
    with open(cwd / "daemon.log", "wb") as log:
        daemon = subprocess.Popen([str(DAGSTER.with_name("dagster-daemon")), "run", "-m",
                                   "lakehouse_assets.definitions"], cwd=cwd, env=env, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = driver.communicate(timeout=900)
    finally:
        stop(daemon)
    text = "".join(lines) + out
    assert driver.returncode == 0, text[-3000:] + "\n" + "\n".join(step_failures(home))
    return text


def step_failures(home) -> list[str]:
    """Why the runs that failed failed: their steps' errors, from the instance."""
    with DagsterInstance.from_config(str(home)) as instance:
        return [f"{run.run_id} {run.tags.get(FANOUT_TAG)}: "
                f"{e.dagster_event.event_specific_data.error.to_string()[-2000:]}"
                for run in instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.FAILURE]))
                for e in instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_FAILURE)]


@pytest.mark.parametrize("k", [2, 4])
def test_a_backfill_fanned_out_over_k_runs_equals_the_single_run(k, shared_aws, zone, single_run, home,  # noqa: F811
                                                                 tmp_path, monkeypatch):
    root, first, last = zone
    mode = AwsMode(shared_aws, f"fanout{k}").create()
    mode.upload(root)
    out = fan_out(mode, home, first, last, k, tmp_path)
    assert "stopped landing_sensor, daily_refresh" in out and "started landing_sensor" in out

    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with DagsterInstance.get() as instance:
        runs = instance.get_runs(RunsFilter(tags={FANOUT_TAG: ["bronze", "merge", "silver", "gold"]}))
        by_phase = {p: [r for r in runs if r.tags[FANOUT_TAG] == p] for p in ("bronze", "merge", "silver", "gold")}
        assert {p: len(rs) for p, rs in by_phase.items()} == {"bronze": 1, "merge": 1, "silver": k, "gold": k}
        assert all(r.status == DagsterRunStatus.SUCCESS for r in runs)
        for phase in ("silver", "gold"):
            ranges = sorted((date.fromisoformat(r.tags[RANGE_START_TAG]), date.fromisoformat(r.tags[RANGE_END_TAG]))
                            for r in by_phase[phase])
            assert ranges == split(first, last, k) and len(ranges) == k
            # The queue let all K go at once: each was launched before any of them ended.
            launched = [_event_time(instance, r.run_id, DagsterEventType.RUN_STARTING) for r in by_phase[phase]]
            ended = [_event_time(instance, r.run_id, DagsterEventType.RUN_SUCCESS) for r in by_phase[phase]]
            assert max(launched) < min(ended), phase
        # The merge phase merged; the K silver runs found nothing left to merge.
        assert _merged(instance, by_phase["merge"]) > 0
        assert _merged(instance, by_phase["silver"]) == 0

    tables, left = single_run
    assert_same_as_local(mode.snapshot(), tables)
    # The bookkeeping agrees: a fresh sensor finds nothing new, and what is left as after the single run.
    assert leftover(AwsLakehouse(mode).tick()) == left


def _event_time(instance: DagsterInstance, run_id: str, kind: DagsterEventType) -> float:
    [event] = instance.all_logs(run_id, of_type=kind)
    return event.timestamp


def _merged(instance: DagsterInstance, runs) -> int:
    total = 0
    for run in runs:
        for event in instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION):
            metadata = event.dagster_event.event_specific_data.materialization.metadata
            total += metadata["changes_merged"].value if "changes_merged" in metadata else 0
    return total
