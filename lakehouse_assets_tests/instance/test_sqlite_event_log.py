"""The local instance's event log (lakehouse_instance/sqlite_event_log.py) stores exactly what
Dagster's own SQLite event log stores: the same runs, over both, leave the same events,
materialized and failed partitions, asset records and check records, whether Dagster hands it
batches (DAGSTER_EVENT_BATCH_SIZE set, as scripts/run.sh does) or not. It only writes faster,
never touches the environment, and is an instance plugin: it imports nothing of the product and
refuses Dagster versions it was not tested on."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from dagster import (
    AssetCheckKey,
    AssetCheckResult,
    AssetKey,
    BackfillPolicy,
    DagsterEventType,
    DagsterInstance,
    DailyPartitionsDefinition,
    MaterializeResult,
    asset,
    asset_check,
    materialize,
)
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from lakehouse_instance.dagster_version import UntestedDagsterVersion, require_tested
from lakehouse_instance.sqlite_event_log import LakehouseSqliteEventLogStorage

pytestmark = pytest.mark.system

DAYS = DailyPartitionsDefinition(start_date="2024-12-01", end_date="2024-12-11")
PROJECT = Path(__file__).resolve().parents[2]
PROJECT_YAML = PROJECT / "data" / "dagster_home" / "dagster.yaml"
BATCH = "DAGSTER_EVENT_BATCH_SIZE"


# No IO manager: what is stored here is Dagster's bookkeeping only.
@asset(partitions_def=DAYS, backfill_policy=BackfillPolicy.single_run())
def upstream(context) -> MaterializeResult:
    return MaterializeResult(metadata={"partitions": len(context.partition_keys)})


@asset(partitions_def=DAYS, backfill_policy=BackfillPolicy.single_run(), deps=[upstream])
def downstream(context) -> MaterializeResult:
    if os.environ.get("EVENT_LOG_TEST_FAIL"):
        raise RuntimeError("downstream fails on purpose")
    return MaterializeResult()


@asset_check(asset=upstream, blocking=False)
def upstream_is_positive() -> AssetCheckResult:
    return AssetCheckResult(passed=True)


def instance_in(home: Path, yaml: str, monkeypatch) -> DagsterInstance:
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return DagsterInstance.from_config(str(home))


def run_range(instance, first: str, last: str):
    return materialize(
        [upstream, downstream, upstream_is_positive],
        instance=instance,
        tags={ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last},
        raise_on_error=False,
    )


def planned_partitions(records):
    for r in records:
        if r.event_log_entry.dagster_event_type == DagsterEventType.ASSET_MATERIALIZATION_PLANNED:
            data = r.event_log_entry.dagster_event.event_specific_data
            keys = data.partitions_subset.get_partition_keys() if data.partitions_subset else [data.partition]
            yield from ((data.asset_key.to_user_string(), k) for k in keys)


def facts(instance: DagsterInstance, runs) -> dict:
    """What the UI and the sensors read back, without run ids and timestamps."""
    out = {}
    for i, result in enumerate(runs):
        records = instance.get_records_for_run(result.run_id, limit=10_000).records
        # Planned events are compared by what they plan: ours is one event per asset per run.
        out[f"run {i} event types"] = Counter(
            r.event_log_entry.dagster_event_type
            for r in records
            if r.event_log_entry.is_dagster_event
            and r.event_log_entry.dagster_event_type != DagsterEventType.ASSET_MATERIALIZATION_PLANNED
        )
        out[f"run {i} planned"] = sorted(planned_partitions(records))
        out[f"run {i} status"] = result.success
    graph_keys = [AssetKey("upstream"), AssetKey("downstream")]
    for key in graph_keys:
        out[f"{key} materialized"] = sorted(instance.get_materialized_partitions(key))
        status = instance.get_status_by_partition(key, DAYS.get_partition_keys(), DAYS)
        out[f"{key} status"] = {k: v.value for k, v in status.items() if v is not None}
        latest = instance.get_latest_materialization_event(key)
        out[f"{key} latest partition"] = latest.dagster_event.partition if latest else None
        record = instance.get_asset_records([key])[0]
        entry = record.asset_entry
        out[f"{key} last run is the last run"] = entry.last_run_id == runs[-1].run_id
        out[f"{key} last materialization partition"] = (
            entry.last_materialization.dagster_event.partition if entry.last_materialization else None
        )
        planned = instance.get_latest_planned_materialization_info(key)
        out[f"{key} planned by the last run"] = planned.run_id == runs[-1].run_id if planned else None
    check = AssetCheckKey(AssetKey("upstream"), "upstream_is_positive")
    history = instance.event_log_storage.get_asset_check_execution_history(check, limit=1000)
    out["check executions"] = Counter((h.partition, h.status.value) for h in history)
    return out


def scenario(instance, monkeypatch) -> list:
    runs = [run_range(instance, "2024-12-01", "2024-12-05"), run_range(instance, "2024-12-04", "2024-12-10")]
    monkeypatch.setenv("EVENT_LOG_TEST_FAIL", "1")
    runs.append(run_range(instance, "2024-12-08", "2024-12-10"))
    monkeypatch.delenv("EVENT_LOG_TEST_FAIL")
    return runs


@pytest.mark.parametrize("batch_size", ["1000", None], ids=["batched", "one by one"])
def test_the_fast_event_log_stores_what_dagsters_own_stores(tmp_path, monkeypatch, batch_size):
    if batch_size:  # as scripts/run.sh and the tests' dagster dev set it
        monkeypatch.setenv(BATCH, batch_size)
    else:
        monkeypatch.delenv(BATCH, raising=False)
    ours = instance_in(tmp_path / "ours", PROJECT_YAML.read_text(), monkeypatch)
    assert isinstance(ours.event_log_storage, LakehouseSqliteEventLogStorage)
    ours_facts = facts(ours, scenario(ours, monkeypatch))
    ours.dispose()

    monkeypatch.delenv(BATCH, raising=False)  # Dagster's own storage, as Dagster runs it
    theirs = instance_in(tmp_path / "theirs", "telemetry:\n  enabled: false\n", monkeypatch)
    assert type(theirs.event_log_storage).__name__ == "SqliteEventLogStorage"
    theirs_facts = facts(theirs, scenario(theirs, monkeypatch))
    theirs.dispose()

    assert ours_facts["run 2 status"] is False  # the failing run did fail
    assert ours_facts["AssetKey(['upstream']) materialized"] == [f"2024-12-{d:02d}" for d in range(1, 11)]
    assert ours_facts["check executions"]  # partitions of the check, planned and evaluated
    # The failed run's partitions of downstream show as failed (Dagster's own query reads only
    # per-partition planned events; ours plans a run's range in one event per asset).
    failed = {k for k, v in ours_facts["AssetKey(['downstream']) status"].items() if v == "FAILED"}
    assert failed == {"2024-12-08", "2024-12-09", "2024-12-10"}
    assert ours.event_log_storage.supports_partition_subset_in_asset_materialization_planned_events
    assert ours_facts == theirs_facts


def shard_openings(instance, monkeypatch) -> int:
    storage = instance.event_log_storage
    opened = []
    connect = storage._connect

    def counting(shard):
        opened.append(shard)
        return connect(shard)

    monkeypatch.setattr(storage, "_connect", counting)
    assert run_range(instance, "2024-12-01", "2024-12-10").success
    instance.dispose()
    return len(opened)


def test_batches_are_written_in_one_transaction_per_shard(tmp_path, monkeypatch):
    """The point of the subclass: a run's 40 asset events (2 assets x 10 days, planned and
    materialized) do not each open the run and the index shard."""
    monkeypatch.setenv(BATCH, "1000")
    ours = shard_openings(instance_in(tmp_path / "ours", PROJECT_YAML.read_text(), monkeypatch), monkeypatch)
    theirs = shard_openings(instance_in(tmp_path / "theirs", "{}\n", monkeypatch), monkeypatch)
    assert theirs >= 2 * 40  # Dagster's: both shards for every asset event
    assert ours <= theirs / 2, (ours, theirs)


def test_the_storage_needs_a_home(monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    with pytest.raises(ValueError, match="DAGSTER_HOME"):
        LakehouseSqliteEventLogStorage()


def test_the_storage_leaves_the_environment_alone(tmp_path, monkeypatch):
    monkeypatch.delenv(BATCH, raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    (tmp_path / "dagster.yaml").write_text(PROJECT_YAML.read_text())
    before = dict(os.environ)
    instance = DagsterInstance.from_config(str(tmp_path))
    assert isinstance(instance.event_log_storage, LakehouseSqliteEventLogStorage)
    assert run_range(instance, "2024-12-01", "2024-12-02").success
    instance.dispose()
    assert dict(os.environ) == before


def python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=PROJECT, capture_output=True,
                          text=True, timeout=120)


def test_the_plugins_import_nothing_of_the_product():
    # The product made unimportable, as a broken product package would be.
    done = python(
        "import sys; sys.modules['lakehouse_assets'] = None\n"
        "import lakehouse_instance.sqlite_event_log, lakehouse_instance.postgres_pool\n"
        "print(sorted(m for m, v in sys.modules.items() if m.startswith('lakehouse_assets') and v))")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("version", ["1.13.20", "1.13.27", "1.13.99"])
def test_the_tested_dagster_versions_pass(version):
    require_tested(version)


@pytest.mark.parametrize("version", ["1.13.19", "1.14.0", "2.0.0", "1.12.40", "1.13.28rc0", "1!0+dev"])
def test_other_dagster_versions_are_refused_naming_the_tested_ones(version):
    expected = rf"tested on dagster 1\.13\.20 .*1\.14\.0; this is dagster {re.escape(version)}\."
    with pytest.raises(UntestedDagsterVersion, match=expected):
        require_tested(version)


def test_importing_the_storage_under_an_untested_dagster_fails_clearly():
    done = python("import dagster; dagster.__version__ = '1.14.2'\n"
                  "import lakehouse_instance.sqlite_event_log")
    assert done.returncode != 0
    assert "UntestedDagsterVersion" in done.stderr
    assert "tested on dagster 1.13.20 up to (not including) 1.14.0; this is dagster 1.14.2" in done.stderr
