"""Which environment the code runs in, decided once from CONTRACT section 6's variables.

Everything else asks this module. Values that resources read at run time are passed as
`EnvVar` when the variable is set (the Dagster UI then shows where they come from) and as the
documented default when it is not, so a fresh checkout works with no variable set.
"""

from __future__ import annotations

import os
from datetime import date

from dagster import EnvVar

DEFAULTS = {
    "LAKEHOUSE_ENV": "local",
    "LAKEHOUSE_LANDING_URI": "data/landing",
    "LAKEHOUSE_DUCKDB_PATH": "data/warehouse/lakehouse.duckdb",
    "LAKEHOUSE_WAREHOUSE_URI": "",
    "LAKEHOUSE_GLUE_DATABASE_PREFIX": "lakehouse",
    "LAKEHOUSE_PARTITIONS_START": "2024-01-01",
}


def value(name: str) -> str:
    """The variable's value now, or its documented default."""
    return os.environ.get(name) or DEFAULTS[name]


def setting(name: str) -> str | EnvVar:
    """For resource config: read from the environment at run time when set."""
    return EnvVar(name) if os.environ.get(name) else DEFAULTS[name]


def lakehouse_env() -> str:
    env = value("LAKEHOUSE_ENV").strip().lower()
    if env not in ("local", "aws"):
        raise ValueError(f"LAKEHOUSE_ENV must be 'local' or 'aws', not {env!r}")
    return env


def partitions_start() -> date:
    raw = value("LAKEHOUSE_PARTITIONS_START")
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise ValueError(f"LAKEHOUSE_PARTITIONS_START must be YYYY-MM-DD, not {raw!r}") from exc


def sdk_setting(name: str) -> EnvVar | None:
    """An AWS SDK variable (AWS_REGION, ...) for resource config: None leaves it to the SDK."""
    return EnvVar(name) if os.environ.get(name) else None


def required_setting(name: str, why: str) -> EnvVar:
    """A variable without a default that the environment in force needs."""
    if not os.environ.get(name):
        raise ValueError(f"{name} must be set {why}")
    return EnvVar(name)
