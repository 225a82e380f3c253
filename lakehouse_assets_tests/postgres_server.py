"""A throwaway PostgreSQL server for tests and benchmarks: Debian's `postgresql` package
(`scripts/install-postgres.sh`), a fresh cluster in a temporary folder, listening on 127.0.0.1
on a free port only, password (SCRAM) authentication as on RDS, and TLS with a self-signed
certificate, so `sslmode: require` of `deploy/dagster.yaml` is tested as shipped.

    with postgres_server() as pg:        # or the session fixture `pg_server`
        env = pg.env(pg.create_database())   # DAGSTER_PG_* of deploy/dagster.yaml

The server runs as a non-root OS user (PostgreSQL refuses to run as root): the `postgres`
user the Debian package creates, when this process is root; this process's own user otherwise.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Iterator

import psycopg2
import pytest

from lakehouse_assets_tests.dagster_services import free_port

SERVER_USER = "postgres"  # created by Debian's postgresql package
OWNER = "dagster"  # the role the instance connects as, owner of the databases it gets
_names = count(1)


@dataclass
class PostgresServer:
    port: int
    password: str  # of OWNER
    data: Path
    log: Path
    tls: bool
    plain: bool  # also accepts connections without TLS
    host: str = "127.0.0.1"
    user: str = OWNER
    databases: list[str] = field(default_factory=list)

    def connect(self, db: str = "postgres", **params):
        return psycopg2.connect(host=self.host, port=self.port, user=self.user,
                                password=self.password, dbname=db,
                                sslmode="require" if self.tls else "disable", **params)

    def create_database(self, name: str | None = None) -> str:
        """A new empty database owned by OWNER (one per test or benchmark variant)."""
        name = name or f"dagster_{os.getpid()}_{next(_names)}"
        con = self.connect()
        try:
            con.autocommit = True
            with con.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}" OWNER "{self.user}"')
        finally:
            con.close()
        self.databases.append(name)
        return name

    def env(self, db: str) -> dict[str, str]:
        """The variables `deploy/dagster.yaml` reads its storage from, pointing here."""
        return {"DAGSTER_PG_HOST": self.host, "DAGSTER_PG_PORT": str(self.port),
                "DAGSTER_PG_DB": db, "DAGSTER_PG_USERNAME": self.user,
                "DAGSTER_PG_PASSWORD": self.password}

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else "(no log)"


def server_bin() -> Path:
    """Debian's newest installed PostgreSQL (15 on Debian 12)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    if not found:
        raise RuntimeError("PostgreSQL is not installed: run bash scripts/install-postgres.sh")
    return found[-1].parent


def _as_server_user() -> dict:
    """subprocess keyword arguments that run a command as the server's OS user."""
    if os.geteuid() != 0:
        return {}
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise RuntimeError(f"running as root needs the OS user {SERVER_USER!r} "
                           "(bash scripts/install-postgres.sh creates it)") from None
    return {"user": SERVER_USER, "group": SERVER_USER,
            "env": {**os.environ, "HOME": pwd.getpwnam(SERVER_USER).pw_dir}}


def _run(cmd: list, **kwargs) -> None:
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, **kwargs)
    if done.returncode:
        raise RuntimeError(f"{cmd[0]} failed ({done.returncode}): {done.stdout}{done.stderr}")


def _self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "server.crt", folder / "server.key"
    _run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
          "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", cert])
    key.chmod(0o600)  # PostgreSQL refuses a key others can read
    return cert, key


def _hba(tls: bool, plain: bool) -> str:
    lines = []
    if tls:
        lines.append("hostssl all all 127.0.0.1/32 scram-sha-256")
    if plain or not tls:
        lines.append("hostnossl all all 127.0.0.1/32 scram-sha-256")
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def postgres_server(*, tls: bool = True, plain: bool = False,
                    durable: bool = True) -> Iterator[PostgresServer]:
    """A running server until the block ends, then stopped and deleted. tls: a self-signed
    certificate and `hostssl` access; plain: also `hostnossl` (the benchmark's no-TLS variant);
    durable=False turns fsync off (tests: less disk wait; the benchmark keeps RDS's default)."""
    pg_bin = server_bin()
    as_user = _as_server_user()
    # Not under pytest's tmp_path: that is private to this user, and the server's user must
    # own its folder. mkdtemp makes it 0700; it is handed to the server's user below.
    root = Path(tempfile.mkdtemp(prefix="lakehouse-pg-"))
    data, log = root / "data", root / "server.log"
    password = secrets.token_urlsafe(18)
    (root / "pw").write_text(password)
    cert = key = None
    if tls:
        cert, key = _self_signed_certificate(root)
    if as_user:
        uid, gid = pwd.getpwnam(SERVER_USER).pw_uid, pwd.getpwnam(SERVER_USER).pw_gid
        for path in (root, *root.iterdir()):
            os.chown(path, uid, gid)
    server = None
    try:
        _run([pg_bin / "initdb", "-D", data, "-U", OWNER, "--pwfile", root / "pw",
              "--auth=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"], **as_user)
        (root / "pw").unlink()
        (data / "pg_hba.conf").write_text(_hba(tls, plain))
        port = free_port()
        options = ["-c listen_addresses=127.0.0.1", f"-c port={port}",
                   "-c unix_socket_directories=''", "-c max_connections=200"]
        if tls:
            options += ["-c ssl=on", f"-c ssl_cert_file={cert}", f"-c ssl_key_file={key}"]
        if not durable:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        try:
            _run([pg_bin / "pg_ctl", "-D", data, "-l", log, "-w", "-t", "60", "-o",
                  " ".join(options), "start"], **as_user)
        except RuntimeError as error:
            tail = log.read_text(errors="replace") if log.exists() else "(no log)"
            raise RuntimeError(f"{error}\n--- server log ---\n{tail}") from None
        server = PostgresServer(port, password, data, log, tls, plain)
        yield server
    finally:
        if server is not None or (data / "postmaster.pid").exists():
            with contextlib.suppress(RuntimeError):
                _run([pg_bin / "pg_ctl", "-D", data, "-m", "fast", "-w", "stop"], **as_user)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """One TLS-only server for the whole test session; each test takes a database of its own
    (`create_database`). Import this fixture into a test module or conftest to use it."""
    with postgres_server(tls=True, plain=False, durable=False) as server:
        yield server
