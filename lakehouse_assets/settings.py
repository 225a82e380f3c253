"""The one place that reads the environment (CONTRACT section 6 and the project's own knobs).

`settings()` reads the variables once per process into a frozen `Settings`; resources,
partitions, sensors and scripts take their values from it, and nothing else reads
`os.environ`. Values that resources read at run time are handed to them as `EnvVar` when the
variable is set (the Dagster UI then shows where a value comes from) and as the documented
default when it is not (`Settings.resource_value`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

from dagster import EnvVar

DEFAULTS = {
    "LAKEHOUSE_ENV": "local",
    "LAKEHOUSE_LANDING_URI": "data/landing",
    "LAKEHOUSE_DUCKDB_PATH": "data/warehouse/lakehouse.duckdb",
    "LAKEHOUSE_WAREHOUSE_URI": "",
    "LAKEHOUSE_GLUE_DATABASE_PREFIX": "lakehouse",
    "LAKEHOUSE_PARTITIONS_START": "2024-01-01",
    "LAKEHOUSE_FRESHNESS_MINUTES": "15",
    # DuckDB's memory for data work, in every mode; beyond it DuckDB spills to disk.
    "LAKEHOUSE_MEMORY_LIMIT": "2GB",
    # A local landing file changed this recently may still be being copied: it waits.
    "LAKEHOUSE_SETTLE_SECONDS": "5",
}
ENVIRONMENTS = ("local", "aws")


@dataclass(frozen=True)
class Settings:
    environment: str
    landing_uri: str
    duckdb_path: str
    warehouse_uri: str
    glue_database_prefix: str
    partitions_start: date
    freshness_minutes: float
    memory_limit: str
    settle_seconds: float
    aws_region: str | None
    aws_endpoint_url: str | None
    # Which variables were set (and so are passed to resources as EnvVar).
    given: frozenset[str] = field(default=frozenset(), repr=False)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        def value(name: str) -> str:
            return environ.get(name) or DEFAULTS[name]

        environment = value("LAKEHOUSE_ENV").strip().lower()
        if environment not in ENVIRONMENTS:
            raise ValueError(f"LAKEHOUSE_ENV must be 'local' or 'aws', not {environment!r}")
        settings = cls(
            environment=environment,
            landing_uri=value("LAKEHOUSE_LANDING_URI"),
            duckdb_path=value("LAKEHOUSE_DUCKDB_PATH"),
            warehouse_uri=value("LAKEHOUSE_WAREHOUSE_URI"),
            glue_database_prefix=value("LAKEHOUSE_GLUE_DATABASE_PREFIX"),
            partitions_start=_date("LAKEHOUSE_PARTITIONS_START", value("LAKEHOUSE_PARTITIONS_START")),
            freshness_minutes=_number("LAKEHOUSE_FRESHNESS_MINUTES", value("LAKEHOUSE_FRESHNESS_MINUTES")),
            memory_limit=value("LAKEHOUSE_MEMORY_LIMIT"),
            settle_seconds=_number("LAKEHOUSE_SETTLE_SECONDS", value("LAKEHOUSE_SETTLE_SECONDS")),
            aws_region=environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or None,
            aws_endpoint_url=environ.get("AWS_ENDPOINT_URL") or None,
            given=frozenset(k for k in [*DEFAULTS, "AWS_REGION"] if environ.get(k)),
        )
        if environment == "aws" and not settings.warehouse_uri:
            raise ValueError("LAKEHOUSE_WAREHOUSE_URI must be set to s3://bucket/prefix when LAKEHOUSE_ENV=aws")
        return settings

    @property
    def landing_on_s3(self) -> bool:
        return self.landing_uri.startswith("s3://")

    @property
    def kinds(self) -> set[str]:
        """What the UI shows an asset is stored and computed with."""
        return {"duckdb", "polars"} if self.environment == "local" else {"iceberg", "s3", "duckdb"}

    def resource_value(self, name: str) -> str | EnvVar:
        """For resource config: an EnvVar when the variable is set, else the default."""
        return EnvVar(name) if name in self.given else DEFAULTS[name]


def _date(name: str, raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be YYYY-MM-DD, not {raw!r}") from exc


def _number(name: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number, not {raw!r}") from exc


@lru_cache(maxsize=1)
def settings() -> Settings:
    """The settings of this process, read once."""
    return Settings.from_environ(os.environ)
