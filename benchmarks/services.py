"""`dagster dev` (webserver, daemon, code server) for a measurement: started from the project
folder on a free loopback port against a given DAGSTER_HOME, landing zone and warehouse,
spoken to over GraphQL as the UI speaks to it, and always stopped (its whole process group).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

from benchmarks.instance import REPO, dagster_cmd

LOCATION = "lakehouse_assets"
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}

LOCATIONS = """
{ workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on PythonError { message } } } } } }"""

RUNS = """
query Runs($limit: Int) { runsOrError(limit: $limit) { __typename
  ... on Runs { results { runId status creationTime startTime endTime
    tags { key value } assetSelection { path } } } } }"""

MATERIALIZATIONS = """
query Mats($key: AssetKeyInput!, $limit: Int) { assetOrError(assetKey: $key) { __typename
  ... on Asset { assetMaterializations(limit: $limit) { runId partition timestamp } } } }"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_tail(log: Path, chars: int = 6000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else "(no log)"


@dataclass
class Services:
    port: int
    log: Path
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    def graphql(self, query: str, **variables) -> dict:
        response = requests.post(self.url, json={"query": query, "variables": variables}, timeout=60)
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise RuntimeError(f"GraphQL errors: {body['errors']}")
        return body["data"]

    def wait(self, what: str, check: Callable[[], object], timeout: float, every: float = 1.0):
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"dagster dev exited with {self.process.returncode}:\n{log_tail(self.log)}")
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}\n{log_tail(self.log)}")
            time.sleep(every)

    def runs(self, limit: int = 100) -> list[dict]:
        """Newest first: runId, status, creationTime/startTime/endTime (epoch s), tags, assetSelection."""
        result = self.graphql(RUNS, limit=limit)["runsOrError"]
        if result["__typename"] != "Runs":
            raise RuntimeError(result)
        return result["results"]

    def materializations(self, key: str, limit: int = 100) -> list[dict]:
        """Newest first: runId, partition, timestamp (epoch ms as text). key: 'gold/x'."""
        asset = self.graphql(MATERIALIZATIONS, key={"path": key.split("/")}, limit=limit)["assetOrError"]
        return asset["assetMaterializations"] if asset["__typename"] == "Asset" else []

    def loaded(self) -> bool:
        try:
            data = self.graphql(LOCATIONS)["workspaceOrError"]
        except (requests.RequestException, ValueError, RuntimeError):
            return False
        for entry in data.get("locationEntries") or []:
            located = entry.get("locationOrLoadError") or {}
            if located.get("__typename") == "PythonError":
                raise RuntimeError(f"code location failed to load: {located['message']}")
            if entry["name"] == LOCATION and entry["loadStatus"] == "LOADED" \
                    and located.get("__typename") == "RepositoryLocation":
                return True
        return False


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to the whole process group (webserver, daemon, code server, runs), SIGKILL after 30 s."""
    for sig, grace in ((signal.SIGTERM, 30.0), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                process.wait()
                return
            process.poll()
            time.sleep(0.2)


@contextlib.contextmanager
def running_dagster(env: dict, log: Path, startup_timeout: float = 300) -> Iterator[Services]:
    """`dagster dev` with `env` (DAGSTER_HOME and the LAKEHOUSE_ variables) until the code
    location has loaded; stopped on exit."""
    port = free_port()
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [*dagster_cmd(), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO, env={**env, "PYTHONUNBUFFERED": "1"}, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
    services = Services(port, log, process)
    try:
        services.wait("the code location to load", services.loaded, startup_timeout)
        yield services
    finally:
        stop(process)
