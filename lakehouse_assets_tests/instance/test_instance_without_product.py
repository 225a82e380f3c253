"""A product package that fails to import breaks its code location, not the instance: `dagster
dev` with the shipped workspace.yaml and the shipped local instance (data/dagster_home, whose
event log is the lakehouse_instance plugin), in processes where `lakehouse_assets` raises on
import. The webserver answers, shows the location's error, and the daemon runs."""

from __future__ import annotations

import pytest

from lakehouse_assets_tests.dagster_services import running_dagster

pytestmark = pytest.mark.system

BROKEN = "lakehouse_assets is broken on purpose (test_instance_without_product)"

# Imported at start-up by every Python process that has its folder on PYTHONPATH: dagster dev,
# its webserver, daemon and code server all fail to import the product, as with a syntax error
# or a missing dependency in it.
SITECUSTOMIZE = f'''
import sys

class BrokenProduct:
    def find_spec(self, name, path=None, target=None):
        if name == "lakehouse_assets" or name.startswith("lakehouse_assets."):
            raise ImportError({BROKEN!r})
        return None

sys.meta_path.insert(0, BrokenProduct())
'''

LOCATIONS = """
{ workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on PythonError { message } } } } } }"""

DAEMONS = """
{ instance { info daemonHealth { allDaemonStatuses { daemonType required healthy } } } }"""


def location_error(services) -> str | None:
    """The code location's load error once its load has been attempted."""
    try:
        data = services.graphql(LOCATIONS)["workspaceOrError"]
    except Exception:  # the webserver is not answering yet
        return None
    for entry in data.get("locationEntries") or []:
        located = entry.get("locationOrLoadError") or {}
        if entry["name"] == "lakehouse_assets" and located.get("__typename") == "PythonError":
            return located["message"]
    return None


def daemons(services) -> dict[str, bool] | None:
    """Healthy or not, by daemon type, once every required daemon has sent a heartbeat."""
    statuses = services.graphql(DAEMONS)["instance"]["daemonHealth"]["allDaemonStatuses"]
    required = {s["daemonType"]: s["healthy"] for s in statuses if s["required"]}
    return required if required and all(required.values()) else None


def test_the_webserver_and_daemon_run_when_the_product_fails_to_import(tmp_path):
    blocker = tmp_path / "broken_product"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(SITECUSTOMIZE)
    with running_dagster(tmp_path, tmp_path / "landing", tmp_path / "warehouse.duckdb",
                         env={"PYTHONPATH": str(blocker)}, ready=location_error) as services:
        message = location_error(services)
        assert BROKEN in message, message
        healthy = services.wait("every required daemon to be healthy", lambda: daemons(services),
                                timeout=90, every=2)
        assert {"SENSOR", "SCHEDULER", "QUEUED_RUN_COORDINATOR"} <= set(healthy), healthy
        # The instance that runs is the shipped one, with the plugin as its event log.
        info = services.graphql(DAEMONS)["instance"]["info"]
        assert "LakehouseSqliteEventLogStorage" in info, info
        assert services.process.poll() is None  # dagster dev is still up
