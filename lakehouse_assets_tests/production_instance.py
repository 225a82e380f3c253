"""The production instance (`deploy/dagster.yaml`) as far as it can run on one machine.

Its storage section is taken exactly as shipped (the Postgres settings and their `{env: ...}`
references; `PostgresServer.env` points those at a test server), and so are the run queue,
its limits, run monitoring and retries. Two sections need AWS and are replaced by Dagster's
local defaults: the run launcher (ECS tasks: here each run is a local process) and the compute
log manager (S3: here files under DAGSTER_HOME).
"""

from __future__ import annotations

from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parents[1]
DEPLOY_YAML = PROJECT / "deploy" / "dagster.yaml"
NEEDS_AWS = ("run_launcher", "compute_logs")
TAKEN = ("storage", "run_coordinator", "concurrency", "run_monitoring", "run_retries", "telemetry")


def deploy_config() -> dict:
    return yaml.safe_load(DEPLOY_YAML.read_text())


def production_instance_yaml() -> str:
    """dagster.yaml text of the production instance, less its AWS-only sections."""
    config = deploy_config()
    unknown = set(config) - set(TAKEN) - set(NEEDS_AWS)
    # A section added to deploy/dagster.yaml must be decided on here, not silently dropped.
    assert not unknown, f"deploy/dagster.yaml has sections this test does not know: {unknown}"
    return yaml.safe_dump({k: config[k] for k in TAKEN if k in config}, sort_keys=False)


def write_production_home(home: Path) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(production_instance_yaml())
    return home
