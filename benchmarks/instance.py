"""The Dagster side of a measurement: a fresh DAGSTER_HOME, the project's environment, the
commands (the contract's CLI, the landing sensor's tick and run), and what a run recorded.

The instance is the shipped one (a copy of `data/dagster_home/dagster.yaml`, whatever plugins
it names) or, with `--instance stock`, that file without its plugin sections (every section
naming a `module:`), so Dagster's own storage classes are used.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import time as clock
from collections import defaultdict
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
SHIPPED_YAML = REPO / "data" / "dagster_home" / "dagster.yaml"
PY = sys.executable
GOLD_TABLES = ("daily_revenue", "daily_funnel", "hourly_activity", "subscription_mrr",
               "customer_segments", "daily_summary")


def dagster_cmd() -> list[str]:
    exe = Path(PY).parent / "dagster"
    return [str(exe)] if exe.exists() else [PY, "-m", "dagster"]


def instance_config(kind: str) -> dict:
    """The dagster.yaml of a measurement: the shipped file, or ('stock') without plugins."""
    config = yaml.safe_load(SHIPPED_YAML.read_text()) or {}
    if kind == "stock":
        config = {k: v for k, v in config.items() if not (isinstance(v, dict) and "module" in v)}
    return config


def plugins(config: dict) -> list[tuple[str, str, str]]:
    """(section, module, class) of every plugin the config names."""
    return [(k, v["module"], v.get("class", "")) for k, v in config.items()
            if isinstance(v, dict) and "module" in v]


def check_plugins(config: dict) -> None:
    """Fail early, and say why, when a plugin of the config does not import on this branch."""
    for section, module, cls in plugins(config):
        try:
            getattr(importlib.import_module(module), cls)
        except (ImportError, AttributeError) as exc:
            raise SystemExit(
                f"{SHIPPED_YAML} names {module}.{cls} for {section}, which does not import here "
                f"({exc!r}); run with --instance stock to use Dagster's own storage") from exc


def fresh_home(path: Path, kind: str) -> Path:
    """A new DAGSTER_HOME: the shipped dagster.yaml as it is, or the stock one."""
    path.mkdir(parents=True)
    if kind == "shipped":
        shutil.copy(SHIPPED_YAML, path / "dagster.yaml")
    else:
        (path / "dagster.yaml").write_text(yaml.safe_dump(instance_config(kind), sort_keys=False))
    return path


def copy_home(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def project_env(home: Path, landing: Path, warehouse: Path, first_partition: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKEHOUSE_", "DAGSTER_"))}
    env.update(
        DAGSTER_HOME=str(home),
        LAKEHOUSE_ENV="local",
        LAKEHOUSE_LANDING_URI=str(landing),
        LAKEHOUSE_DUCKDB_PATH=str(warehouse),
        LAKEHOUSE_PARTITIONS_START=first_partition,
        PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        PYTHONWARNINGS="ignore",
        # Every file is complete before a command starts (linked, not being copied): no file
        # needs to settle. With the default (5 s) a file linked just before a backfill or a
        # tick would wait (a link renews its ctime), and the command would not read it.
        LAKEHOUSE_SETTLE_SECONDS="0",
    )
    yaml_file = home / "dagster.yaml"
    if yaml_file.exists() and "module:" in yaml_file.read_text():
        # The shipped instance's batched event writes need it, as scripts/run.sh sets it.
        env["DAGSTER_EVENT_BATCH_SIZE"] = "1000"
    for name in ("LAKEHOUSE_MEMORY_LIMIT", "LAKEHOUSE_SETTLE_SECONDS"):  # passed on when set
        if os.environ.get(name):
            env[name] = os.environ[name]
    return env


def prepare_storage(env: dict) -> float:
    """Create the storage of a fresh instance, as data/dagster_home's exists once `dagster dev`
    has run: a backfill is not the instance's first use. Created within the backfill's process
    it cost about 0.8 s at scale 1; `dagster instance migrate` is reported, not counted."""
    started = clock.monotonic()
    subprocess.run([*dagster_cmd(), "instance", "migrate"], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return clock.monotonic() - started


def materialize_cmd(select: str, span: str, tags: dict | None = None) -> list[str]:
    """The contract's CLI; with tags, the same command through benchmarks/materialize.py
    (Dagster 1.13's `dagster asset materialize` has no --tags)."""
    args = ["asset", "materialize", "-m", "lakehouse_assets.definitions", "--select", select,
            "--partition-range", span]
    if not tags:
        return [*dagster_cmd(), *args]
    return [PY, "-m", "benchmarks.materialize", "--tags", json.dumps(tags), *args[2:]]


def tick_cmd(state: Path) -> list[str]:
    return [PY, "-m", "benchmarks.sensor_tick", "--state", str(state)]


# --------------------------------------------------------------------------- what a run recorded


def step_layer(step_key: str) -> str:
    if step_key == "bronze_landing":
        return "bronze"
    if step_key.startswith("silver_") and not step_key.startswith("silver__"):
        return "silver"
    if step_key.startswith("gold__") and step_key[len("gold__"):] in GOLD_TABLES:
        return "gold"
    return "checks"


def run_facts(home: Path, since: float, run_id: str | None = None) -> dict:
    """Of run `run_id` (default: the newest) in `home`: its tags, seconds per layer (from step
    stats), the asset partitions it materialized per asset and when the last gold one landed
    (seconds after `since`, epoch)."""
    from dagster import AssetKey, DagsterEventType, DagsterInstance, RunsFilter

    os.environ["DAGSTER_HOME"] = str(home)  # the instance's event log storage finds its files there
    instance = DagsterInstance.from_config(str(home))
    try:
        records = instance.get_run_records(RunsFilter(run_ids=[run_id]) if run_id else None, limit=1)
        if not records:
            return {}
        run = records[0].dagster_run
        seconds: dict[str, float] = defaultdict(float)
        steps, step_times = {}, {}
        for stat in instance.get_run_step_stats(run.run_id):
            if stat.start_time and stat.end_time:
                seconds[step_layer(stat.step_key)] += stat.end_time - stat.start_time
                steps[stat.step_key] = round(stat.end_time - stat.start_time, 3)
                step_times[stat.step_key] = (stat.start_time, stat.end_time)
        per_asset: dict[str, int] = defaultdict(int)
        last_gold = None
        for rec in instance.get_records_for_run(
            run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION, limit=10_000_000
        ).records:
            event = rec.event_log_entry
            key: AssetKey | None = event.dagster_event.asset_key
            if key:
                per_asset[key.to_user_string()] += 1
                if key.path[0] == "gold":
                    last_gold = max(last_gold or 0, event.timestamp)
        stats = records[0]
        return {
            "run_id": run.run_id,
            "status": str(run.status.value),
            "tags": dict(run.tags),
            "start_time": stats.start_time,
            "end_time": stats.end_time,
            "layer_seconds": dict(seconds),
            "step_seconds": steps,
            "step_times": step_times,
            "materializations_per_asset": dict(sorted(per_asset.items())),
            "gold_partitions_materialized": sum(v for k, v in per_asset.items() if k.startswith("gold/")),
            "gold_fresh_after_seconds": (last_gold - since) if last_gold else None,
        }
    finally:
        instance.dispose()
