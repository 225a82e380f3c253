"""Helpers of the crash-safety tests (`test_crash_safety.py`): runs as process groups that can
be SIGKILLed (the contract's CLI, or a sensor's request executed as the daemon would), the
journal the test code location (`crash_points.py`) keeps of every write, and what a reader of
the warehouse sees afterwards (the DuckDB file; Iceberg tables through the Glue catalog)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl
import pytest

from lakehouse_assets.schemas.tables import ALL_SPECS

PROJECT = Path(__file__).resolve().parents[3]
DAGSTER = Path(sys.executable).with_name("dagster")
PRODUCT = "lakehouse_assets.definitions"
CRASHING = "lakehouse_assets_tests.system.crash.crash_points"
INSTANCE_YAML = PROJECT / "data" / "dagster_home" / "dagster.yaml"  # what scripts/run.sh uses
DATA_LAYERS = ("bronze", "silver", "gold")
# Columns that say when and by which run a row was written; other runs write other values.
VOLATILE = ("_ingested_at", "_run_id", "last_seen_at", "merged_through", "since", "reason", "at")
RUN_SECONDS: list[float] = []  # every run of this test session, killed or not
KILLS: list[str] = []  # where each kill landed, for the summary


def make_home(parent: Path) -> Path:
    home = parent / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(INSTANCE_YAML, home / "dagster.yaml")
    return home


def cli_env(home: Path, landing: Path, *, duckdb_path: Path | None = None, aws: dict | None = None,
            crash: dict | None = None) -> dict[str, str]:
    """The contract's variables only (and in AWS mode the SDK's, pointing at moto)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKEHOUSE_", "DAGSTER_", "AWS_"))}
    env.update(DAGSTER_HOME=str(home), LAKEHOUSE_LANDING_URI=str(landing),
               LAKEHOUSE_PARTITIONS_START="2024-01-01", LAKEHOUSE_SETTLE_SECONDS="0",
               # As scripts/run.sh: the instance's event log gets batches of asset events
               # (lakehouse_instance/sqlite_event_log.py).
               DAGSTER_EVENT_BATCH_SIZE="1000")
    if duckdb_path is not None:
        env.update(LAKEHOUSE_ENV="local", LAKEHOUSE_DUCKDB_PATH=str(duckdb_path))
    env.update(aws or {})
    env.update(crash or {})
    return env


@dataclass
class Outcome:
    returncode: int
    output: str
    log: Path
    journal: list[dict] = field(default_factory=list)
    killed_after: str = ""  # the log line after which the test killed the run

    @property
    def killed(self) -> bool:
        return self.returncode == -signal.SIGKILL

    def tail(self, chars: int = 4000) -> str:
        return f"(whole log: {self.log})\n" + self.output[-chars:]


def materialize_args(module: str, span: str, select: str = "*") -> list[str]:
    return [str(DAGSTER), "asset", "materialize", "-m", module, "--select", select, "--partition-range", span]


def run(args: list[str], env: dict[str, str], cwd: Path, *, journal: Path | None = None,
        kill_after: tuple[re.Pattern, float] | None = None, timeout: float = 300) -> Outcome:
    """Run `args` as the leader of a process group. With `kill_after=(pattern, delay)` the
    group is SIGKILLed `delay` seconds after the first log line matching `pattern`."""
    if journal is not None:
        journal.unlink(missing_ok=True)
        env = {**env, "LAKEHOUSE_CRASH_JOURNAL": str(journal)}
    started = time.perf_counter()
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    lines: list[str] = []
    hit: list[str] = []
    seen = threading.Event()

    def read() -> None:
        for line in proc.stdout:
            lines.append(line)
            if kill_after is not None and not seen.is_set() and kill_after[0].search(line):
                hit.append(line.rstrip())
                seen.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if kill_after is not None:
            deadline = time.monotonic() + timeout
            while not seen.wait(0.02) and proc.poll() is None and time.monotonic() < deadline:
                pass
            if seen.is_set():
                time.sleep(kill_after[1])
                kill_group(proc)
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            kill_group(proc)
            proc.wait()
        reader.join(timeout=30)
    RUN_SECONDS.append(time.perf_counter() - started)
    log = cwd / f"run-{len(RUN_SECONDS):03d}.log"
    log.write_text("".join(lines))
    entries = read_journal(journal) if journal is not None else []
    return Outcome(proc.returncode, "".join(lines), log, entries, hit[0] if hit else "")


def kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # it leads its own group (start_new_session)
    except ProcessLookupError:
        pass


# ---- the journal of writes -------------------------------------------------------------


def read_journal(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@dataclass
class Writes:
    """What a killed run's journal says of its writes, per table."""

    committed: set[str]  # a write of the table committed (its COMMIT returned)
    in_doubt: set[str]  # COMMIT sent, not known to have returned: may have landed or not
    killed: dict  # the kill's journal line
    order: list[str]  # tables in the order their writes began
    targets: dict[str, str]  # Iceberg: the metadata file each table's last commit switched Glue to

    @classmethod
    def of(cls, entries: list[dict]) -> Writes:
        events: dict[int, set[str]] = {}
        tables: dict[int, str] = {}
        for e in entries:
            if "write" in e:
                events.setdefault(e["write"], set()).add(e["event"])
                tables[e["write"]] = e["table"]
        committed = {tables[w] for w, ev in events.items() if "committed" in ev}
        doubt = {tables[w] for w, ev in events.items() if "commit" in ev and "committed" not in ev}
        kills = [e for e in entries if e["event"] == "kill"]
        order = list(dict.fromkeys(tables[w] for w in sorted(tables)))
        targets = {e["table"]: e["metadata"] for e in entries if e["event"] == "commit" and "metadata" in e}
        return cls(committed, doubt - committed, kills[-1] if kills else {}, order, targets)


# ---- what a reader sees ----------------------------------------------------------------


def tidy(frame: pl.DataFrame) -> pl.DataFrame:
    frame = frame.drop(*VOLATILE, strict=False)
    return frame.sort(frame.columns, nulls_last=True)


def duckdb_tables(path: Path) -> dict[str, pl.DataFrame]:
    """Every table of the file, every row read (as any reader would: after a kill this
    replays DuckDB's write-ahead log), without the volatile columns; {} when no file yet."""
    if not path.exists():
        return {}
    con = duckdb.connect(str(path), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        names = con.execute("SELECT table_schema, table_name FROM information_schema.tables").fetchall()
        return {f"{s}.{t}": tidy(con.sql(f'SELECT * FROM "{s}"."{t}"').pl()) for s, t in names}
    finally:
        con.close()


def session_tables(session) -> dict[str, pl.DataFrame]:
    """Every declared table that exists, read through a product session (Iceberg: pyiceberg
    reads the snapshot the Glue catalog points at, as Athena would)."""
    out = {}
    for ref, spec in ALL_SPECS.items():
        if session.exists(ref):
            out[str(ref)] = tidy(session.con.sql(f"SELECT * FROM {session.scan(spec)}").pl())
    return out


def compared(tables: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """The tables a rerun must give exactly: bronze, silver, gold and the state a next run
    starts from (keys, marks without their timestamps, the set of gold cells still stale:
    a note made twice, by a killed run and its rerun, is one note)."""
    out = {n: f for n, f in tables.items() if n.split(".")[0] in DATA_LAYERS or n.endswith("_keys")
           or n == "state.marks"}
    if "state.gold_pending" in tables:
        pending = tables["state.gold_pending"].unique()
        out["state.gold_pending"] = pending.sort(pending.columns, nulls_last=True)
    return out


def differences(got: dict[str, pl.DataFrame], want: dict[str, pl.DataFrame],
                may_lack: set[str] = frozenset()) -> list[str]:
    """Tables of `want` that `got` lacks (or holds empty) though not in `may_lack`, and every
    table `got` holds with rows that are not exactly `want`'s."""
    problems = []
    for name in sorted(set(got) | set(want)):
        mine, theirs = got.get(name), want.get(name)
        if theirs is None:
            if mine is not None and not mine.is_empty():
                problems.append(f"{name}: {mine.height} rows in a table the reference lacks")
            continue
        if mine is None or (mine.is_empty() and not theirs.is_empty()):
            if name not in may_lack:
                problems.append(f"{name}: missing ({theirs.height} rows in the reference)")
            continue
        if mine.schema != theirs.schema:
            problems.append(f"{name}: columns {mine.schema} != {theirs.schema}")
        elif not mine.equals(theirs):
            problems.append(f"{name}: {mine.height} rows, not the reference's {theirs.height} "
                            f"({row_difference(theirs, mine)})")
    return problems


def row_difference(want: pl.DataFrame, got: pl.DataFrame) -> str:
    missing = want.join(got, on=want.columns, how="anti", nulls_equal=True).height
    extra = got.join(want, on=want.columns, how="anti", nulls_equal=True).height
    doubled = got.height - got.unique().height
    return f"{missing} missing, {extra} not the reference's, {doubled} doubled"


def either(got: dict[str, pl.DataFrame], before: dict[str, pl.DataFrame],
           after: dict[str, pl.DataFrame]) -> list[str]:
    """Each table exactly as it was before a run or as the uninterrupted run leaves it."""
    problems = []
    for name in sorted(set(got) | set(before) | set(after)):
        mine, old, new = ({name: t[name]} if name in t else {} for t in (got, before, after))
        if differences(mine, old) and differences(mine, new):
            rows = got[name].height if name in got else "no"
            problems.append(f"{name}: neither as before the run nor as after it ({rows} rows)")
    return problems


def check_kill(got: dict[str, pl.DataFrame], before: dict, after: dict, out: Outcome) -> dict:
    """After a kill, given every table as a reader now sees it: each data table is as before
    the run unless the journal says its write committed (then exactly as after) or was inside
    its COMMIT when the kill landed (then either); the state holds no key twice. Returns `got`."""
    assert out.killed, f"the run was not killed (exit {out.returncode}):\n{out.tail()}"
    writes = Writes.of(out.journal)
    problems = []
    for name in sorted({n for n in [*before, *after, *got] if n.split(".")[0] in DATA_LAYERS}):
        mine, old, new = ({name: t[name]} if name in t else {} for t in (got, before, after))
        if name in writes.committed:
            problems += [f"committed, yet {p}" for p in differences(mine, new)]
        elif name in writes.in_doubt:
            problems += either(mine, old, new)
        else:
            problems += [f"not committed, yet {p}" for p in differences(mine, old)]
    for name, frame in got.items():
        key = ["table_name", "layer"] if name == "state.marks" else ["_key"] if name.endswith("_keys") else None
        if key and frame.select(key).is_duplicated().any():
            problems.append(f"{name}: a key twice")
    killed = writes.killed or {"point": f"after log line {out.killed_after[-90:]!r}"}
    table = killed.get("table", writes.order[-1] if writes.order else "no write yet")
    state = "committed" if table in writes.committed else "in doubt" if table in writes.in_doubt else "not committed"
    KILLS.append(f"{killed['point']} in the write of {table} ({state}); {len(writes.committed)} tables committed")
    assert not problems, f"after the kill {killed}:\n  " + "\n  ".join(problems)
    return got


@pytest.fixture(scope="module", autouse=True)
def crash_summary(request):
    """Where each kill of the module landed and the time its runs took, on the terminal."""
    KILLS.clear()
    RUN_SECONDS.clear()
    yield
    lines = ["", f"{request.module.__name__}: {len(RUN_SECONDS)} runs, {sum(RUN_SECONDS):.0f} s", *KILLS]
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            for line in lines:
                reporter.write_line(line)
