"""The Dagster versions the SQLite event log is tested on. It subclasses Dagster's private
`SqliteEventLogStorage` and overrides private members, which any Dagster release may change:
outside these versions the instance refuses to start with an error that says so, instead of
misbehaving. Widen the range only after the tests pass on the new version (CI installs the
newest release that pyproject.toml allows)."""

from __future__ import annotations

import re

TESTED_FROM = (1, 13, 20)  # as pyproject.toml: dagster>=1.13.20,<1.14
TESTED_BELOW = (1, 14, 0)
RELEASE = re.compile(r"(\d+)\.(\d+)\.(\d+)")  # a final release; rc/dev builds are untested


class UntestedDagsterVersion(RuntimeError):
    pass


def _text(version: tuple[int, int, int]) -> str:
    return ".".join(map(str, version))


def require_tested(version: str) -> None:
    """Raise UntestedDagsterVersion unless `version` is a release in [TESTED_FROM, TESTED_BELOW)."""
    match = RELEASE.fullmatch(version)
    parsed = tuple(int(part) for part in match.groups()) if match else None
    if parsed is None or not TESTED_FROM <= parsed < TESTED_BELOW:
        raise UntestedDagsterVersion(
            f"lakehouse_instance.sqlite_event_log is tested on dagster {_text(TESTED_FROM)} up "
            f"to (not including) {_text(TESTED_BELOW)}; this is dagster {version}. It subclasses "
            "Dagster's private SqliteEventLogStorage: remove `event_log_storage` from dagster.yaml "
            "to use Dagster's own (slower, same data), or run its tests on this version and "
            "widen the range in lakehouse_instance/dagster_version.py."
        )
