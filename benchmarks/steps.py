"""The measured steps of a repetition, each a subprocess measured for wall time and the peak
RSS of its process tree: the plain-DuckDB baseline, a backfill through the contract's CLI, a
landing-sensor tick, and the run a tick requests (through the CLI, with its tags)."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

import duckdb

from benchmarks import measure
from benchmarks.baseline import GOLD_TABLES, TABLES
from benchmarks.instance import PY, REPO, materialize_cmd, run_facts, tick_cmd


class Failed(Exception):
    pass


def log(msg: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {msg}", flush=True)


def checked(m: measure.Measured, what: str) -> measure.Measured:
    if m.returncode != 0:
        raise Failed(f"{what} failed (exit {m.returncode}); last lines of {m.stderr}:\n{m.tail()}")
    return m


def layer_rows(db: Path) -> dict:
    """Rows per table and per layer of a warehouse (baseline or project)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        have = {(s, t) for s, t in con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables()").fetchall()}

        def count(schema: str, table: str) -> int:
            if (schema, table) not in have:
                return 0
            return con.execute(f'SELECT count(*) FROM "{schema}"."{table}"').fetchone()[0]

        tables = {
            "bronze": {t.name: count("bronze", t.name) for t in TABLES},
            "rejects": count("bronze", "cdc_rejects"),
            "silver": {t.entity: count("silver", t.entity) for t in TABLES},
            "quarantine": {t.entity: count("silver", f"{t.entity}_quarantine") for t in TABLES},
            "gold": {g: count("gold", g) for g in GOLD_TABLES},
        }
    finally:
        con.close()
    totals = {
        "bronze": sum(tables["bronze"].values()),
        "silver": sum(tables["silver"].values()) + sum(tables["quarantine"].values()),
        "gold": sum(tables["gold"].values()),
    }
    return {"totals": totals, "tables": tables}


def baseline(zone: Path, db: Path, span: str, first_partition: str, logs: Path, timeout) -> dict:
    m = checked(
        measure.run(
            [PY, "-m", "benchmarks.baseline", "--landing", str(zone), "--db", str(db),
             "--span", span, "--first-partition", first_partition],
            env=dict(os.environ, PYTHONPATH=str(REPO)), cwd=REPO, log_prefix=logs, timeout=timeout,
        ),
        "baseline",
    )
    out = json.loads(m.stdout.read_text().strip().splitlines()[-1])
    return {**m.as_dict(), "layer_seconds": out["seconds"], "rows": layer_rows(db)}


def with_step_rss(m: measure.Measured, facts: dict) -> dict:
    """The run's facts, with the highest polled RSS of the process during each step."""
    by_step = {k: m.peak_between(a, b) for k, (a, b) in facts.get("step_times", {}).items()}
    return {**facts, "peak_rss_bytes_by_step": dict(sorted(by_step.items(), key=lambda kv: -(kv[1] or 0)))}


def backfill(env: dict, home: Path, warehouse: Path, span: str, cwd: Path, name: str, timeout) -> dict:
    """`dagster asset materialize --select '*' --partition-range <span>` (CONTRACT section 6)."""
    m = checked(measure.run(materialize_cmd("*", span), env=env, cwd=cwd, log_prefix=cwd / name,
                            timeout=timeout), f"dagster backfill {span}")
    return {**m.as_dict(), "span": span, **with_step_rss(m, run_facts(home, m.started_at)),
            "rows": layer_rows(warehouse)}


def tick(env: dict, state: Path, cwd: Path, name: str, timeout) -> dict:
    """One landing-sensor tick with the cursor in `state`; its outcome."""
    m = checked(measure.run(tick_cmd(state), env=env, cwd=cwd, log_prefix=cwd / name, timeout=timeout),
                f"sensor tick ({name})")
    st = json.loads(state.read_text())
    return {**m.as_dict(), "tick_seconds": st["tick_seconds"], "import_seconds": st["import_seconds"],
            "requests": st["requests"], "skip_reason": st["skip_reason"]}


def request_cmd(request: dict) -> list[str]:
    """The run a tick requested, through the CLI: its assets, its range and its tags."""
    tags = request["tags"]
    span = f"{tags['dagster/asset_partition_range_start']}...{tags['dagster/asset_partition_range_end']}"
    return materialize_cmd(",".join(request["asset_keys"]), span, tags=tags)


def run_request(env: dict, home: Path, request: dict, cwd: Path, name: str, timeout) -> dict:
    m = checked(measure.run(request_cmd(request), env=env, cwd=cwd, log_prefix=cwd / name,
                            timeout=timeout), f"the run the sensor requested ({name})")
    tags = request["tags"]
    return {**m.as_dict(), **with_step_rss(m, run_facts(home, m.started_at)),
            "request": {"assets": len(request["asset_keys"]), "asset_keys": request["asset_keys"],
                        "checks": len(request["check_keys"]),
                        "span": f"{tags['dagster/asset_partition_range_start']}..."
                                f"{tags['dagster/asset_partition_range_end']}",
                        "reason": tags.get("lakehouse/reason"), "tags": tags}}
