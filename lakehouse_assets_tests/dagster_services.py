"""The real Dagster services (`dagster dev`: webserver, daemon, code server) for end-to-end
tests: started from the project folder against a temporary DAGSTER_HOME, landing zone and
warehouse, spoken to over GraphQL, and always stopped (the whole process group)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import duckdb
import requests
from dagster_graphql import DagsterGraphQLClient

PROJECT = Path(__file__).resolve().parents[1]
DAGSTER = Path(sys.executable).with_name("dagster")
LOCATION = "lakehouse_assets"
REPOSITORY = "__repository__"
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}

RUNS = """
query Runs($limit: Int) { runsOrError(limit: $limit) { __typename
  ... on Runs { results { runId status creationTime startTime endTime
    tags { key value } assetSelection { path } } } } }"""

LOCATIONS = """
{ workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on PythonError { message } } } } } }"""

MATERIALIZATIONS = """
query Mats($key: AssetKeyInput!, $limit: Int) { assetOrError(assetKey: $key) { __typename
  ... on Asset { assetMaterializations(limit: $limit) { runId partition timestamp } } } }"""

PARTITIONS = """
query Parts($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) { __typename
  ... on AssetNode { assetPartitionStatuses { __typename
    ... on TimePartitionStatuses { ranges { status startKey endKey } } } } } }"""

SENSOR = """
query Sensor($s: SensorSelector!) { sensorOrError(sensorSelector: $s) { __typename
  ... on Sensor { name sensorState { status } } ... on PythonError { message } } }"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what: str, check: Callable[[], object], timeout: float, every: float = 1.0,
               log: Path | None = None):
    """check() until it returns something truthy; AssertionError (with the log's tail) after
    `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            tail = f"\n--- dagster dev log (tail) ---\n{log_tail(log)}" if log else ""
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{tail}")
        time.sleep(every)


def log_tail(log: Path, chars: int = 6000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else "(no log)"


@dataclass
class DagsterServices:
    port: int
    home: Path
    landing: Path
    warehouse: Path
    log: Path
    process: subprocess.Popen

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def client(self) -> DagsterGraphQLClient:
        return DagsterGraphQLClient("127.0.0.1", port_number=self.port)

    def graphql(self, query: str, **variables) -> dict:
        response = requests.post(
            f"{self.base_url}/graphql", json={"query": query, "variables": variables}, timeout=30
        )
        response.raise_for_status()
        body = response.json()
        assert not body.get("errors"), body["errors"]
        return body["data"]

    def wait(self, what: str, check: Callable[[], object], timeout: float, every: float = 1.0):
        return wait_until(what, check, timeout, every, self.log)

    # ------------------------------------------------------------------ runs

    def runs(self, limit: int = 100) -> list[dict]:
        """Newest first: runId, status, creationTime/startTime/endTime (epoch s), tags,
        assetSelection."""
        result = self.graphql(RUNS, limit=limit)["runsOrError"]
        assert result["__typename"] == "Runs", result
        return result["results"]

    def wait_for_runs(self, predicate: Callable[[list[dict]], bool], timeout: float,
                      what: str = "runs") -> list[dict]:
        """Poll the run list until predicate(runs) holds; returns the runs."""
        def check():
            runs = self.runs()
            return runs if predicate(runs) else None
        return self.wait(what, check, timeout, every=2.0)

    def wait_for_run(self, run_id: str, timeout: float) -> dict:
        """The run once it has finished (any outcome)."""
        def check():
            return next((r for r in self.runs() if r["runId"] == run_id
                         and r["status"] in FINISHED), None)
        return self.wait(f"run {run_id} to finish", check, timeout, every=2.0)

    def wait_until_idle(self, timeout: float) -> None:
        """No run queued, starting or in progress."""
        self.wait("no run in progress",
                  lambda: all(r["status"] in FINISHED for r in self.runs()), timeout, 2.0)

    # ------------------------------------------------------------------ assets

    def materializations(self, key: str, limit: int = 100) -> list[dict]:
        """Newest first: runId, partition, timestamp (epoch ms as text). key: 'gold/x'."""
        result = self.graphql(MATERIALIZATIONS, key={"path": key.split("/")}, limit=limit)
        asset = result["assetOrError"]
        return asset["assetMaterializations"] if asset["__typename"] == "Asset" else []

    def asset_partitions_materialized(self, key: str) -> list[tuple[str, str]]:
        """(first, last) partition key of every materialized range of the asset."""
        node = self.graphql(PARTITIONS, key={"path": key.split("/")})["assetNodeOrError"]
        assert node["__typename"] == "AssetNode", node
        statuses = node["assetPartitionStatuses"]
        return [(r["startKey"], r["endKey"]) for r in statuses.get("ranges", [])
                if r["status"] == "MATERIALIZED"]

    def sensor_status(self, name: str) -> str:
        selector = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY,
                    "sensorName": name}
        sensor = self.graphql(SENSOR, s=selector)["sensorOrError"]
        assert sensor["__typename"] == "Sensor", sensor
        return sensor["sensorState"]["status"]

    # ------------------------------------------------------------------ warehouse

    def query_warehouse(self, sql: str) -> list[tuple]:
        """Rows of `sql` over a copy of the DuckDB file taken while no run is writing it (a
        running step holds the file's lock)."""
        self.wait_until_idle(300)
        copy = self.home / "warehouse-copy.duckdb"
        for suffix in ("", ".wal"):
            Path(f"{copy}{suffix}").unlink(missing_ok=True)
            if Path(f"{self.warehouse}{suffix}").exists():
                shutil.copyfile(f"{self.warehouse}{suffix}", f"{copy}{suffix}")
        con = duckdb.connect(str(copy))
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()


def service_env(home: Path, landing: Path, warehouse: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKEHOUSE_", "DAGSTER_"))}
    env.update(
        DAGSTER_HOME=str(home),
        LAKEHOUSE_LANDING_URI=str(landing),
        LAKEHOUSE_DUCKDB_PATH=str(warehouse),
        LAKEHOUSE_PARTITIONS_START="2024-01-01",
        # As scripts/run.sh: Dagster then hands the event log batches of asset events.
        DAGSTER_EVENT_BATCH_SIZE="1000",
        PYTHONUNBUFFERED="1",
    )
    return env


def make_home(tmp: Path, instance_yaml: str | None = None) -> Path:
    """tmp/dagster_home with the shipped local instance, or with `instance_yaml` (text)."""
    home = tmp / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    if instance_yaml is None:
        shutil.copyfile(PROJECT / "data" / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    else:
        (home / "dagster.yaml").write_text(instance_yaml)
    return home


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to the whole process group, SIGKILL after 30 s."""
    for sig, grace in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            continue
        # the leader is gone; give its children (same group) the same chance
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


@contextlib.contextmanager
def running_dagster(tmp: Path, landing: Path, warehouse: Path, startup_timeout: float = 120,
                    host: str | None = "127.0.0.1", *, instance_yaml: str | None = None,
                    env: dict[str, str] | None = None, workspace: Path | None = None,
                    ready: Callable[[DagsterServices], bool] | None = None,
                    ) -> Iterator[DagsterServices]:
    """`dagster dev` on a free port until the code location has loaded; stopped on exit.
    host=None leaves the address to dagster's default. The log is kept in tmp/dagster-dev.log
    and its tail printed when the body raises. instance_yaml: the instance's dagster.yaml text
    (default: the shipped data/dagster_home one); env: more variables for the services;
    workspace: another workspace file; ready: what to wait for instead of the project's code
    location having loaded."""
    home = make_home(tmp, instance_yaml)
    log = tmp / "dagster-dev.log"
    port = free_port()
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(DAGSTER), "dev", "-w", str(workspace or "workspace.yaml"),
             *(["-h", host] if host else []), "-p", str(port)],
            cwd=PROJECT, env={**service_env(home, landing, warehouse), **(env or {})}, stdout=out,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
    services = DagsterServices(port, home, landing, warehouse, log, process)
    started = time.monotonic()
    try:
        services.wait("the services to be ready",
                      lambda: _alive(services) and (ready or _loaded)(services), startup_timeout)
        print(f"dagster dev up on {services.base_url} in {time.monotonic() - started:.1f} s")
        yield services
    except BaseException:
        print(f"--- dagster dev log ({log}), tail ---\n{log_tail(log, 20000)}")
        raise
    finally:
        stop(process)


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a socket listening on `port` (from /proc/net/tcp and tcp6)."""
    found = set()
    for name, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        if not os.path.exists(name):
            continue
        for line in Path(name).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(address)
                if width == 8:
                    found.add(socket.inet_ntop(socket.AF_INET, raw[::-1]))
                else:  # four little-endian 32-bit words
                    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
                    found.add(socket.inet_ntop(socket.AF_INET6, words))
    return found


def _alive(services: DagsterServices) -> bool:
    if services.process.poll() is not None:
        raise AssertionError(f"dagster dev exited with {services.process.returncode}:\n"
                             f"{log_tail(services.log)}")
    return True


def _loaded(services: DagsterServices) -> bool:
    try:
        data = services.graphql(LOCATIONS)["workspaceOrError"]
    except (requests.RequestException, ValueError, AssertionError):
        return False
    entries = data.get("locationEntries") or []
    for entry in entries:
        located = entry.get("locationOrLoadError") or {}
        if located.get("__typename") == "PythonError":
            raise AssertionError(f"code location failed to load: {located['message']}")
    return any(e["name"] == LOCATION and e["loadStatus"] == "LOADED"
               and (e["locationOrLoadError"] or {}).get("__typename") == "RepositoryLocation"
               for e in entries)
