"""The production deployment files load and name only config keys that exist: the instance
config through Dagster's own loader, each pluggable class against its own schema, and the IAM
policy against every AWS call the code makes."""

import json
import re
from importlib import import_module
from importlib.metadata import entry_points
from pathlib import Path

import boto3
import pytest
import yaml
from dagster._config import validate_config
from dagster._core.instance.config import dagster_instance_config
from dagster._core.workspace.config_schema import WORKSPACE_CONFIG_SCHEMA

pytestmark = pytest.mark.unit

PROJECT = Path(__file__).resolve().parents[2]
DEPLOY = PROJECT / "deploy"
PACKAGE = PROJECT / "lakehouse_assets"
# Environment variables that deploy/README.md must explain.
VARIABLE = re.compile(r"\{env: ([A-Z0-9_]+)\}|^\s+- ([A-Z][A-Z0-9_]+)$", re.M)


def instance_yaml() -> dict:
    return yaml.safe_load((DEPLOY / "dagster.yaml").read_text())


def test_the_instance_config_loads_with_dagster_and_uses_its_production_parts():
    config, custom_class = dagster_instance_config(str(DEPLOY))  # validates the whole schema
    assert custom_class is None
    assert "postgres_db" in config["storage"]["postgres"]
    assert config["run_launcher"]["class"] == "EcsRunLauncher"
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["concurrency"]["runs"]["max_concurrent_runs"] > 0


@pytest.mark.parametrize("section", ["run_launcher", "run_coordinator", "compute_logs"])
def test_each_pluggable_class_exists_and_accepts_its_config(section):
    entry = instance_yaml()[section]
    cls = getattr(import_module(entry["module"]), entry["class"])
    result = validate_config(cls.config_type(), entry.get("config", {}))
    assert result.success, [e.message for e in result.errors]


def test_postgres_storage_class_is_installed():
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage  # noqa: F401


def test_the_storage_names_the_installed_driver_and_connection_plugin():
    """Without a scheme SQLAlchemy 2.1 loads psycopg 3, which nothing installs; dagster-postgres
    brings psycopg2. (test_production_instance.py connects with it to a real PostgreSQL.)"""
    storage = instance_yaml()["storage"]["postgres"]["postgres_db"]
    assert storage["scheme"] == "postgresql+psycopg2"
    import_module("psycopg2")
    assert storage["params"]["sslmode"] == "require"
    plugins = {e.name: e.value for e in entry_points(group="sqlalchemy.plugins")}
    assert plugins.get(storage["params"]["plugin"]) == "lakehouse_instance.postgres_pool:KeptConnections"


def test_the_workspace_loads_the_code_location_over_grpc():
    workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
    result = validate_config(WORKSPACE_CONFIG_SCHEMA, workspace)
    assert result.success, [e.message for e in result.errors]
    assert workspace["load_from"][0]["grpc_server"]["location_name"] == "lakehouse_assets"


def test_no_secret_value_is_written_in_the_deploy_files():
    text = (DEPLOY / "dagster.yaml").read_text()
    storage = instance_yaml()["storage"]["postgres"]["postgres_db"]
    assert storage["password"] == {"env": "DAGSTER_PG_PASSWORD"}
    assert "AKIA" not in text and "aws_secret_access_key" not in text.lower()


def test_the_guide_explains_every_variable_the_files_use():
    guide = (DEPLOY / "README.md").read_text()
    names = {a or b for a, b in VARIABLE.findall((DEPLOY / "dagster.yaml").read_text())}
    names |= {"LAKEHOUSE_ENV", "LAKEHOUSE_WAREHOUSE_URI", "AWS_REGION", "DAGSTER_HOME"}
    missing = sorted(n for n in names if f"`{n}`" not in guide)
    assert missing == []
    assert "SELECT" in guide and "lakehouse_gold" in guide  # example Athena queries on gold


# ---- IAM --------------------------------------------------------------------------------

# The IAM action that allows an S3 API operation, where the names differ.
S3_ACTION = {"ListObjectsV2": "ListBucket", "DeleteObjects": "DeleteObject", "HeadObject": "GetObject"}
CALL = re.compile(r"""\.(?:get_paginator\(["']|)([a-z][a-z0-9_]+)(?:["']\)|\()""")


def policy() -> dict:
    return json.loads((DEPLOY / "iam-policy.json").read_text())


def allowed_actions() -> set[str]:
    return {a for s in policy()["Statement"] if s["Effect"] == "Allow" for a in s["Action"]}


def operations_called(service: str, files: list[Path]) -> set[str]:
    """API operations the code calls on a boto3 client of the service."""
    client = boto3.client(service, region_name="eu-west-1")
    api = client.meta.method_to_api_mapping
    called = {m for f in files for m in CALL.findall(f.read_text())}
    return {api[m] for m in called if m in api}


def test_the_policy_is_valid_and_names_only_real_actions():
    doc = policy()
    assert doc["Version"] == "2012-10-17"
    glue_ops = set(boto3.client("glue", region_name="eu-west-1").meta.service_model.operation_names)
    s3_ops = set(boto3.client("s3", region_name="eu-west-1").meta.service_model.operation_names)
    for statement in doc["Statement"]:
        assert set(statement) <= {"Sid", "Effect", "Action", "Resource", "Condition"}
        assert statement["Effect"] == "Allow"
        for action in statement["Action"]:
            service, _, name = action.partition(":")
            assert "*" not in name, action  # least privilege: no wildcard actions
            assert name in {"glue": glue_ops, "s3": s3_ops | {"ListBucket"}}[service], action
        assert all(r.startswith(("arn:aws:s3:::", "arn:aws:glue:")) and r != "*" for r in statement["Resource"])


def test_the_policy_allows_every_s3_call_the_code_makes():
    """boto3's calls in the project's own code; pyiceberg's (Glue, and S3 through pyarrow) are
    recorded from a real run in test_aws_pipeline.py."""
    s3 = operations_called("s3", [PACKAGE / "landing" / "s3.py", PACKAGE / "storage" / "iceberg_maintenance.py"])
    assert {"ListObjectsV2", "GetObject", "DeleteObjects"} <= s3  # the scan finds calls
    needed = {f"s3:{S3_ACTION.get(op, op)}" for op in s3}
    assert sorted(needed - allowed_actions()) == []
