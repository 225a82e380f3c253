"""Does a DuckDB write whose COMMIT returned survive kill -9? Trials for the crash-safety
finding (test_crash_safety.py runs a few; run many by hand):

    python -m lakehouse_assets_tests.system.crash.commit_trials --trials 500 --burners 4
    python -m lakehouse_assets_tests.system.crash.commit_trials --cli --trials 40 --burners 4   (whole CLI runs)

A child process writes through the product's own session (`open_session`, `replace`): write i
replaces the whole of table `trial.t<i % TABLES>` with rows stamped i, small writes (kept in
the write-ahead log) and large ones (written to the file by DuckDB's optimistic writes and
its checkpoints) in turn. It journals "commit i" as the product sends COMMIT and, once
`replace` returned, "done i" (fsynced). When one of its first writes sends COMMIT it starts a
timer that SIGKILLs it 10 us to 300 ms later (log-uniform): inside that COMMIT, or after it.
The parent then opens the warehouse as any reader would and checks each table: one write's
rows, whole; that write is the last "done" one of the table, or the one whose COMMIT was
under way (it may land or not); never an older one. Optionally other processes burn every
core meanwhile. The warehouse file carries on from trial to trial, as a real one does.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

TABLES = 5
SMALL, LARGE = 50, 400_000
ENCODING = "utf-8"

CHILD = """
import math, os, random, signal, sys, threading
import polars as pl
from lakehouse_assets.schemas.types import PgType
from lakehouse_assets.storage.duckdb_warehouse import open_session
from lakehouse_assets.storage.tables import Scope, TableRef, TableSpec
path, journal, start, tables, small, large, seed = sys.argv[1:8]
start, tables, small, large = int(start), int(tables), int(small), int(large)
rng = random.Random(seed)
armed = start + rng.randint(0, 3)  # the write whose COMMIT starts the kill timer
delay = math.exp(rng.uniform(math.log(1e-5), math.log(0.3)))  # 10 us .. 300 ms, log-uniform
out = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
session = open_session(path, "1GB")
real = session.con

class Watched:  # sees the product's COMMIT go out
    def __getattr__(self, name):
        return getattr(real, name)
    def execute(self, query, *args, **kwargs):
        if query == "COMMIT":
            os.write(out, f"commit {i}\\n".encode())
            if i == armed:
                threading.Timer(delay, os.kill, args=(os.getpid(), signal.SIGKILL)).start()
        return real.execute(query, *args, **kwargs)

session.con = Watched()
specs = [TableSpec(TableRef("trial", f"t{k}"), {"gen": PgType.BIGINT, "n": PgType.BIGINT, "pad": PgType.TEXT})
         for k in range(tables)]
i = start
while True:
    rows = large if i % 3 == 0 else small
    frame = pl.DataFrame({"gen": [i] * rows, "n": range(rows), "pad": ["x" * 16] * rows})
    os.write(out, f"begin {i}\\n".encode())
    session.replace(specs[i % tables], frame, Scope())
    os.write(out, f"done {i}\\n".encode())  # the COMMIT of write i returned
    os.fsync(out)
    i += 1
"""


@dataclass
class Tally:
    trials: int = 0
    writes_returned: int = 0  # in all trials
    kills_in_commit_landed: int = 0  # COMMIT sent, not returned: the write is there
    kills_in_commit_absent: int = 0  # COMMIT sent, not returned: the write is not there
    kills_before_commit: int = 0  # inside a later write, its COMMIT not sent
    kills_after_return: int = 0  # the last write had returned (and was journaled)
    lost: list[str] = field(default_factory=list)  # a returned write missing: the finding
    broken: list[str] = field(default_factory=list)  # torn, mixed or unreadable tables


def rows_per_write(i: int) -> int:
    return LARGE if i % 3 == 0 else SMALL


def journal_state(journal: Path) -> tuple[dict[int, int], int | None, bool]:
    """Per table, the last write whose COMMIT returned; the write in flight, if any, and
    whether its COMMIT had been sent."""
    last: dict[int, int] = {}
    begun, committing = None, False
    for line in journal.read_text(ENCODING).splitlines():
        kind, _, number = line.partition(" ")
        if not number.isdigit():
            continue  # a line cut short by the kill: that write had not returned
        i = int(number)
        if kind == "begin":
            begun, committing = i, False
        elif kind == "commit":
            committing = True
        elif kind == "done":
            last[i % TABLES] = i
            begun = None
    return last, begun, committing


def look(path: Path) -> dict[int, list[tuple[int, int]]]:
    """Each trial table as (write stamp, rows) pairs, read as any reader would."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        names = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'trial'").fetchall()]
        return {int(name[1:]): con.execute(f'SELECT gen, count(*) FROM trial."{name}" GROUP BY gen').fetchall()
                for name in names}
    finally:
        con.close()


def check(path: Path, journal: Path, tally: Tally) -> None:
    last, in_flight, committing = journal_state(journal)
    try:
        seen = look(path)
    except duckdb.Error as exc:
        tally.broken.append(f"trial {tally.trials}: the warehouse does not open: {exc}")
        return
    if in_flight is None:
        tally.kills_after_return += 1
    elif not committing:
        tally.kills_before_commit += 1
    for k in range(TABLES):
        stamps = seen.get(k, [])
        flying = in_flight is not None and in_flight % TABLES == k
        if len(stamps) > 1 or any(n != rows_per_write(g) for g, n in stamps):
            tally.broken.append(f"trial {tally.trials}: t{k} holds {stamps} (torn or mixed)")
            continue
        stamp = stamps[0][0] if stamps else None
        if stamp not in {last.get(k)} | ({in_flight} if flying and committing else set()):
            tally.lost.append(f"trial {tally.trials}: t{k} holds write {stamp}; returned last: {last.get(k)}, "
                              f"in flight: {in_flight} (COMMIT sent: {committing})")
        elif flying and committing:
            if stamp == in_flight:
                tally.kills_in_commit_landed += 1
            else:
                tally.kills_in_commit_absent += 1


def burners(n: int) -> list[subprocess.Popen]:
    """Processes that keep every core busy (a loaded machine)."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def run_trials(folder: Path, trials: int, seed: int, burn: int = 0) -> Tally:
    """Each trial a writer killed by its own timer, armed at the COMMIT of one of its first
    writes (10 us to 300 ms later: inside that COMMIT, or in what follows it)."""
    folder.mkdir(parents=True, exist_ok=True)
    path, journal = folder / "trials.duckdb", folder / "journal.txt"
    tally = Tally()
    hot = burners(burn)
    try:
        for trial in range(trials):
            last, _, _ = journal_state(journal) if journal.exists() else ({}, None, False)
            start = max(last.values(), default=0) + 1
            child = subprocess.run([sys.executable, "-c", CHILD, str(path), str(journal), str(start), str(TABLES),
                                    str(SMALL), str(LARGE), f"{seed}-{trial}"], capture_output=True, timeout=600)
            if child.returncode != -signal.SIGKILL:
                raise RuntimeError(f"the writer was not killed (exit {child.returncode}): {child.stderr[-2000:]}")
            tally.trials += 1
            lines = journal.read_text(ENCODING).splitlines()
            tally.writes_returned = sum(1 for line in lines if line.startswith("done"))
            check(path, journal, tally)
    finally:
        for p in hot:
            p.kill()
            p.wait()
    return tally


def run_cli_trials(folder: Path, trials: int, seed: int, burn: int = 0, table: str = "silver.tenants"
                   ) -> dict[str, int]:
    """The old flaky case on the new write path: a CLI backfill of a small zone into a new
    warehouse, killed by crash_points' in_commit timer (10 us to 5 ms, log-uniform) at
    `table`'s COMMIT; each trial counts what the journal says of that write and whether the
    table is there, whole (as the uninterrupted run has it) or not at all."""
    import math
    import random

    os.environ.update(LAKEHOUSE_PARTITIONS_START="2024-01-01", LAKEHOUSE_SETTLE_SECONDS="0")  # as the tests' conftest
    from lakehouse_assets.sample_data import generate_landing_zone
    from lakehouse_assets_tests.system.crash.crash_helpers import (CRASHING, Writes, cli_env, differences, duckdb_tables,
                                                      make_home, materialize_args, run)
    from lakehouse_assets_tests.pipeline import run_pipeline

    folder.mkdir(parents=True, exist_ok=True)
    landing = folder / "landing"
    zone = {"scale": 0.02, "seed": 5, "history_days": 12, "cdc_days": 3, "dirty_rate": 0.01}
    span = generate_landing_zone(landing, overwrite=True, **zone).partition_range
    reference = folder / "reference.duckdb"
    reference.unlink(missing_ok=True)
    assert run_pipeline(landing, reference, *span.split("...")).success
    want = {table: duckdb_tables(reference)[table]}
    assert not want[table].is_empty()
    rng, counts, hot = random.Random(seed), {}, burners(burn)
    try:
        for trial in range(trials):
            path = folder / f"trial-{trial}.duckdb"
            delay = math.exp(rng.uniform(math.log(0.01), math.log(5)))
            env = cli_env(make_home(folder), landing, duckdb_path=path, crash={"LAKEHOUSE_CRASH_POINT": "in_commit",
                          "LAKEHOUSE_CRASH_AT": table, "LAKEHOUSE_CRASH_DELAY_MS": str(delay)})
            out = run(materialize_args(CRASHING, span), env, folder, journal=folder / "journal.jsonl")
            writes = Writes.of(out.journal)
            label = "committed" if table in writes.committed else "in doubt" if table in writes.in_doubt else "not sent"
            got = duckdb_tables(path)
            present = table in got and not differences({table: got[table]}, want)
            whole_or_absent = present or table not in got or got[table].is_empty()
            key = f"{label}, {'present' if present else 'absent' if whole_or_absent else 'TORN'}"
            counts[key] = counts.get(key, 0) + 1
            for leftover in folder.glob(f"trial-{trial}.duckdb*"):
                leftover.unlink()
    finally:
        for p in hot:
            p.kill()
            p.wait()
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--burners", type=int, default=0, help="busy processes loading the cores meanwhile")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--folder", type=Path, default=Path("data/commit_trials"))
    parser.add_argument("--cli", action="store_true", help="CLI backfills killed in silver.tenants' COMMIT instead")
    args = parser.parse_args(argv)
    if args.cli:
        counts = run_cli_trials(args.folder, args.trials, args.seed, args.burners)
        print(json.dumps(counts, indent=1))
        return 1 if any(k.startswith("committed, absent") or k.endswith("TORN") for k in counts) else 0
    tally = run_trials(args.folder, args.trials, args.seed, args.burners)
    print(json.dumps(tally.__dict__, indent=1))
    return 1 if tally.lost or tally.broken else 0


if __name__ == "__main__":
    raise SystemExit(main())
