"""The benchmark: the project against the plain-DuckDB limit, in one command.

    python -m benchmarks.run --scale 1 --repeat 3 [--profile]

Generates the sample landing zone once, then per repetition: the baseline (benchmarks/
baseline.py, one process, fresh DuckDB file); the full backfill through Dagster (the CLI of
CONTRACT section 6, one run, fresh DAGSTER_HOME whose storage is created beforehand, untimed,
and a fresh warehouse); the incremental update (one more CDC file of about 1% of the changes,
in a copy of the zone: the landing sensor ticks as the daemon would, with the cursor of a tick
before the drop, and its run request is executed through the same CLI); each a subprocess
measured for wall time and peak RSS of its process tree. Gold (and, in the first repetition,
silver and bronze) of the project and the baseline
are compared row for row: any difference is printed and the command exits 1.

Prints a table of medians and writes benchmarks/results/scale-<scale>.json; with --profile
also a pyinstrument profile of one more (unmeasured) full backfill, with its top costs.
See benchmarks/README.md for how to read it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time as clock
from collections import defaultdict
from datetime import UTC, datetime, time
from pathlib import Path

import duckdb

from benchmarks import measure
from benchmarks.baseline import GOLD_TABLES, TABLES
from benchmarks.compare import compare

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
DAGSTER_YAML = REPO / "data" / "dagster_home" / "dagster.yaml"
PY = sys.executable
GIB = 2**30

# Targets of issue 6 (2 cores, 24 GiB).
TARGET_RATIO = {10: 2.0, 1: 3.0}
TARGET_RSS_BYTES = 4 * GIB
TARGET_INCREMENTAL_SECONDS = 15.0
TARGET_SCALE_GROWTH = 12.0


def log(msg: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {msg}", flush=True)


def scale_name(scale: float) -> str:
    return f"{scale:g}"


def dagster_cmd() -> list[str]:
    exe = Path(PY).parent / "dagster"
    return [str(exe)] if exe.exists() else [PY, "-m", "dagster"]


def project_env(home: Path, landing: Path, warehouse: Path, first_partition: str) -> dict:
    env = dict(os.environ)
    env.update(
        DAGSTER_HOME=str(home),
        LAKEHOUSE_ENV="local",
        LAKEHOUSE_LANDING_URI=str(landing),
        LAKEHOUSE_DUCKDB_PATH=str(warehouse),
        LAKEHOUSE_PARTITIONS_START=first_partition,
        PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    return env


def fresh_home(path: Path) -> Path:
    path.mkdir(parents=True)
    shutil.copy(DAGSTER_YAML, path / "dagster.yaml")
    return path


def prepare_storage(env: dict) -> float:
    """Create the storage of the fresh instance at env's DAGSTER_HOME, as data/dagster_home's
    exists once `dagster dev` has run: a backfill is not the instance's first use. Created
    within the backfill's process it cost about 0.8 s at scale 1; `dagster instance migrate`
    (a process of its own, so more) is reported, not counted. Returns its seconds."""
    started = clock.monotonic()
    subprocess.run([*dagster_cmd(), "instance", "migrate"], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return clock.monotonic() - started


def materialize_cmd(select: str, span: str) -> list[str]:
    return [*dagster_cmd(), "asset", "materialize", "-m", "lakehouse_assets.definitions",
            "--select", select, "--partition-range", span]


# --------------------------------------------------------------------------- reading results


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


def step_layer(step_key: str) -> str:
    if step_key == "bronze_landing":
        return "bronze"
    if step_key.startswith("silver_") and not step_key.startswith("silver__"):
        return "silver"
    if step_key.startswith("gold__") and step_key[len("gold__"):] in GOLD_TABLES:
        return "gold"
    return "checks"


def run_facts(home: Path, since: float) -> dict:
    """Of the newest run in `home`: seconds per layer (from step stats) and the gold partitions
    it materialized, with when the last one landed (epoch seconds)."""
    from dagster import DagsterEventType, DagsterInstance

    os.environ["DAGSTER_HOME"] = str(home)  # the instance's event log storage finds its files there
    instance = DagsterInstance.from_config(str(home))
    try:
        records = instance.get_run_records(limit=1)
        if not records:
            return {}
        run = records[0].dagster_run
        seconds: dict[str, float] = defaultdict(float)
        for stat in instance.get_run_step_stats(run.run_id):
            if stat.start_time and stat.end_time:
                seconds[step_layer(stat.step_key)] += stat.end_time - stat.start_time
        gold_partitions = 0
        last_gold = None
        for rec in instance.get_records_for_run(
            run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION, limit=1_000_000
        ).records:
            event = rec.event_log_entry
            key = event.dagster_event.asset_key
            if key and key.path[0] == "gold":
                gold_partitions += 1
                last_gold = max(last_gold or 0, event.timestamp)
        return {
            "run_id": run.run_id,
            "status": str(run.status.value),
            "layer_seconds": dict(seconds),
            "gold_partitions_materialized": gold_partitions,
            "gold_fresh_after_seconds": (last_gold - since) if last_gold else None,
        }
    finally:
        instance.dispose()


def count_records(paths: list[Path]) -> int:
    import csv

    n = 0
    for p in paths:
        with open(p, newline="") as fh:
            n += sum(1 for rec in csv.reader(fh) if rec)
    return n


# --------------------------------------------------------------------------- one repetition


class Failed(Exception):
    pass


def checked(m: measure.Measured, what: str) -> measure.Measured:
    if m.returncode != 0:
        raise Failed(f"{what} failed (exit {m.returncode}); last lines of {m.stderr}:\n{m.tail()}")
    return m


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


def repetition(i: int, args, zone: Path, summary, work: Path) -> dict:
    span = summary.partition_range
    fp = args.first_partition
    d = work / f"rep{i + 1}"
    d.mkdir()
    rep: dict = {"repetition": i + 1}

    log(f"rep {i + 1}: baseline")
    base_db = d / "baseline.duckdb"
    rep["baseline"] = baseline(zone, base_db, span, fp, d / "baseline", args.timeout)
    log(f"rep {i + 1}: baseline {rep['baseline']['wall_seconds']:.1f} s")

    log(f"rep {i + 1}: dagster full backfill --partition-range {span}")
    home = fresh_home(d / "dagster_home")
    warehouse = d / "warehouse.duckdb"
    env = project_env(home, zone, warehouse, fp)
    setup_seconds = prepare_storage(env)
    m = checked(
        measure.run(materialize_cmd("*", span), env=env, cwd=d, log_prefix=d / "backfill",
                    timeout=args.timeout),
        "dagster full backfill",
    )
    rep["backfill"] = {**m.as_dict(), **run_facts(home, m.started_at), "rows": layer_rows(warehouse),
                       "instance_setup_seconds_not_counted": setup_seconds}
    log(f"rep {i + 1}: backfill {m.wall_seconds:.1f} s")

    layers = ("gold", "silver", "bronze") if i == 0 else ("gold",)
    rep["backfill_vs_baseline"] = [x.as_dict() for x in compare(base_db, warehouse, layers)]

    if not args.no_incremental:
        rep["incremental"] = incremental(i, args, zone, summary, d, home, warehouse)
    if not args.keep:
        for p in (base_db, d / "baseline_after_drop.duckdb"):
            p.unlink(missing_ok=True)
    return rep


def incremental(i, args, zone: Path, summary, d: Path, home: Path, warehouse: Path) -> dict:
    """Copy the zone; a sensor tick sets the cursor; one CDC drop lands; the next tick's run
    request is executed through the CLI, against the warehouse of the full backfill."""
    from lakehouse_assets.sample_data import write_cdc_drop

    fp = args.first_partition
    zone_inc = d / "landing_after_drop"
    shutil.copytree(zone, zone_inc)
    env = project_env(home, zone_inc, warehouse, fp)
    state = d / "sensor_state.json"
    log(f"rep {i + 1}: sensor tick before the drop (sets the cursor)")
    before = checked(
        measure.run([PY, "-m", "benchmarks.sensor_tick", "--state", str(state)], env=env,
                    cwd=d, log_prefix=d / "tick_before", timeout=args.timeout),
        "sensor tick before the drop",
    )
    when = datetime.combine(summary.last_commit_date, time(23, 59), tzinfo=UTC)
    paths = write_cdc_drop(zone_inc, args.scale, args.seed, when)
    records = count_records(paths)
    log(f"rep {i + 1}: dropped {records} records in {len(paths)} files; sensor tick")
    tick = checked(
        measure.run([PY, "-m", "benchmarks.sensor_tick", "--state", str(state)], env=env,
                    cwd=d, log_prefix=d / "tick", timeout=args.timeout),
        "sensor tick after the drop",
    )
    st = json.loads(state.read_text())
    if len(st["requests"]) != 1:
        raise Failed(f"the sensor did not request one run after the drop: {st.get('skip_reason')}")
    req = st["requests"][0]
    span = f"{req['tags']['dagster/asset_partition_range_start']}...{req['tags']['dagster/asset_partition_range_end']}"
    log(f"rep {i + 1}: incremental run of {len(req['asset_keys'])} assets, {span}")
    run = checked(
        measure.run(materialize_cmd(",".join(req["asset_keys"]), span), env=env, cwd=d,
                    log_prefix=d / "incremental", timeout=args.timeout),
        "incremental run",
    )
    facts = run_facts(home, run.started_at)
    log(f"rep {i + 1}: incremental run {run.wall_seconds:.1f} s")

    full_span = f"{summary.first_business_date}...{max(summary.last_commit_date, when.date())}"
    base_db = d / "baseline_after_drop.duckdb"
    rebuilt = baseline(zone_inc, base_db, full_span, fp, d / "baseline_after_drop", args.timeout)
    layers = ("gold", "silver", "bronze") if i == 0 else ("gold",)
    diffs = [x.as_dict() for x in compare(base_db, warehouse, layers)]
    if not args.keep:
        shutil.rmtree(zone_inc, ignore_errors=True)
    return {
        "drop": {"files": [str(p.relative_to(zone_inc)) for p in paths], "records": records,
                 "when": when.isoformat()},
        "tick_before": {**before.as_dict(), "tick_seconds": json.loads(state.read_text()).get("tick_seconds")},
        "tick": {**tick.as_dict(), "tick_seconds": st["tick_seconds"], "import_seconds": st["import_seconds"]},
        "request": {"asset_keys": req["asset_keys"], "span": span, "checks": len(req["check_keys"])},
        "run": {**run.as_dict(), **facts},
        "baseline_rebuild": rebuilt,
        "vs_baseline_rebuild": diffs,
    }


# --------------------------------------------------------------------------- profile


def profile(args, zone: Path, summary, work: Path, out_dir: Path) -> dict:
    """One more full backfill under pyinstrument (not part of the timings)."""
    d = work / "profile"
    d.mkdir()
    home = fresh_home(d / "dagster_home")
    env = project_env(home, zone, d / "warehouse.duckdb", args.first_partition)
    prepare_storage(env)
    session = d / "backfill.pyisession"
    log("profile: full backfill under pyinstrument")
    cmd = [PY, "-m", "pyinstrument", "-i", "0.005", "-r", "pyisession", "-o", str(session),
           "-m", "dagster", *materialize_cmd("*", summary.partition_range)[len(dagster_cmd()):]]
    m = checked(measure.run(cmd, env=env, cwd=d, log_prefix=d / "profile", timeout=args.timeout),
                "profiled backfill")
    name = f"profile-scale-{scale_name(args.scale)}"
    # The interactive tree (tens of MB: results/.gitignore keeps it out of the repository).
    subprocess.run([PY, "-m", "pyinstrument", "--load", str(session), "-r", "html",
                    "-o", str(out_dir / f"{name}.html")], check=True, cwd=d)
    top = top_costs(session)
    (out_dir / f"{name}-top.json").write_text(json.dumps(top, indent=2))
    header = (f"pyinstrument profile of one full backfill at scale {scale_name(args.scale)} "
              f"({summary.partition_range}), {m.wall_seconds:.1f} s wall under the profiler\n\n")
    (out_dir / f"{name}.txt").write_text(header + format_top(top, 40) + "\n")
    return {"wall_seconds": m.wall_seconds, "files": [f"{name}.txt", f"{name}-top.json", f"{name}.html"], **top}


def format_top(top: dict, n: int = 12) -> str:
    sections = [
        ("top costs (self time by what the stack is doing)", "by_cost"),
        ("self time by package ('(C)': C functions called from that package)", "self_time_by_package"),
        ("self time under the innermost project function", "self_time_by_project_function"),
        ("inclusive time of functions between 1% and 70% of the run", "inclusive_1_to_70_percent"),
        ("self time by function", "self_time_by_function"),
    ]
    lines = [f"profiled {top['profiled_seconds']} s wall, {top['cpu_seconds']} s CPU"]
    for title, key in sections:
        lines.append(f"{title}:")
        lines += [f"  {x['seconds']:8.1f} s  {x['share']:6.1%}  {x['name']}" for x in top[key][:n]]
    return "\n".join(lines)


def _package(path: str | None) -> str:
    if not path:
        return "?"
    p = path.replace("\\", "/")
    if "/lakehouse_assets/" in p:
        return "lakehouse_assets"
    if "site-packages/" in p:
        return p.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if p.startswith("<"):
        return p
    return "python stdlib" if "/lib/python" in p else "other"


# Where a sample's time goes, by what is on its stack: the first rule (in this order) that
# matches any frame of the stack names it. (function name or None, path fragment or None)
COST_RULES = [
    ("Dagster run creation: the planned asset and check events (event log)",
     "_log_asset_planned_events", None),
    ("Dagster: an ASSET_MATERIALIZATION event per asset partition after each output (event log)",
     "_log_materialization_or_observation_events_for_asset", None),
    ("project checks: Pandera models, reconciliations, warning checks", None, "lakehouse_assets/checks/"),
    ("IO manager load_input: reading upstream tables from DuckDB into polars", "load_input", "lakehouse_assets/storage/"),
    ("IO manager handle_output: writing partitions to DuckDB", "handle_output", "lakehouse_assets/storage/"),
    ("bronze: listing, reading and splitting landing files", None, "lakehouse_assets/landing/"),
    ("silver: merge, typing, quarantine (DuckDB over polars)", None, "lakehouse_assets/cdc/"),
    ("gold: SQL over silver", None, "lakehouse_assets/assets/gold/"),
    ("other asset code", None, "lakehouse_assets/assets/"),
    ("other project code (sensors, resources, storage)", None, "lakehouse_assets/"),
    ("Dagster: other event-log writes (step events, log messages)", "store_event", None),
    ("Dagster: other event-log writes (step events, log messages)", "handle_new_event", None),
    ("imports (loading the code location)", "_find_and_load", None),
]


def _rule(function: str, path: str | None) -> int | None:
    p = (path or "").replace("\\", "/")
    for i, (_, fn, frag) in enumerate(COST_RULES):
        if (fn is None or fn == function) and (frag is None or frag in p):
            return i
    return None


def top_costs(session_path: Path, n: int = 20) -> dict:
    """Where the profiled backfill spent its (wall) time, four ways:
    - self time by package (time in C functions counted for the package that called them);
    - self time by the innermost project function on the stack (or none: the framework);
    - inclusive time of every function between 1% and 70% of the total, each counted once
      per stack (this names the framework's own costs, e.g. writing events);
    - self time by function."""
    from pyinstrument.session import Session

    session = Session.load(str(session_path))
    root = session.root_frame()
    total = root.time if root else 0.0
    self_fn: dict[str, float] = defaultdict(float)
    self_pkg: dict[str, float] = defaultdict(float)
    by_project: dict[str, float] = defaultdict(float)
    inclusive: dict[str, float] = defaultdict(float)
    by_cost: dict[str, float] = defaultdict(float)
    stack = [(root, frozenset(), None, "?", None)] if root else []
    while stack:
        frame, on_path, project, caller_pkg, rule = stack.pop()
        if frame.is_synthetic:  # '[self]' and the like: already in the parent's self time
            continue
        name = f"{frame.function} ({frame.file_path_short}:{frame.line_no})"
        pkg = _package(frame.file_path)
        if pkg.startswith("<"):  # a C function: its caller's package
            pkg = f"{caller_pkg} (C)" if not caller_pkg.endswith("(C)") else caller_pkg
        if pkg == "lakehouse_assets":
            project = name
        mine = _rule(frame.function, frame.file_path)
        if mine is not None and (rule is None or mine < rule):
            rule = mine
        own = frame.total_self_time
        by_cost[COST_RULES[rule][0] if rule is not None else "Dagster/Python: everything else"] += own
        self_fn[name] += own
        self_pkg[pkg] += own
        by_project[project or "(no project frame: Dagster itself)"] += own
        if name not in on_path:
            inclusive[name] += frame.time
        child_path = on_path | {name}
        stack += [(c, child_path, project, pkg, rule) for c in frame.children]

    def top(d: dict[str, float], k: int = n) -> list[dict]:
        items = sorted(d.items(), key=lambda kv: -kv[1])[:k]
        return [{"name": key, "seconds": round(v, 2), "share": round(v / total, 4) if total else None}
                for key, v in items]

    return {
        "profiled_seconds": round(total, 2),
        "cpu_seconds": round(getattr(session, "cpu_time", 0.0) or 0.0, 2),
        "by_cost": top(by_cost),
        "self_time_by_package": top(self_pkg),
        "self_time_by_project_function": top(by_project),
        "inclusive_1_to_70_percent": top(
            {k: v for k, v in inclusive.items() if 0.01 * total <= v <= 0.7 * total}, 40),
        "self_time_by_function": top(self_fn),
    }


# --------------------------------------------------------------------------- report


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, spec: str = ",.0f", missing: str = "-") -> str:
    return missing if v is None else format(v, spec)


def summarize(reps: list[dict]) -> dict:
    def pick(path):
        out = []
        for r in reps:
            v = r
            for k in path:
                v = v.get(k) if isinstance(v, dict) else None
            out.append(v)
        return out

    s: dict = {}
    for variant in ("baseline", "backfill"):
        s[variant] = {
            "wall_seconds": med(pick([variant, "wall_seconds"])),
            "peak_rss_bytes": med(pick([variant, "peak_rss_bytes"])),
            "rows": reps[0][variant]["rows"]["totals"],
            "layer_seconds": {
                layer: med(pick([variant, "layer_seconds", layer]))
                for layer in ("bronze", "silver", "gold", "checks")
            },
        }
    s["backfill"]["instance_setup_seconds_not_counted"] = med(
        pick(["backfill", "instance_setup_seconds_not_counted"]))
    s["ratio_backfill_to_baseline"] = med(
        [r["backfill"]["wall_seconds"] / r["baseline"]["wall_seconds"] for r in reps]
    )
    s["ratio_of_medians"] = s["backfill"]["wall_seconds"] / s["baseline"]["wall_seconds"]
    if all("incremental" in r for r in reps):
        s["incremental"] = {
            "tick_wall_seconds": med(pick(["incremental", "tick", "wall_seconds"])),
            "tick_seconds": med(pick(["incremental", "tick", "tick_seconds"])),
            "tick_peak_rss_bytes": med(pick(["incremental", "tick", "peak_rss_bytes"])),
            "run_wall_seconds": med(pick(["incremental", "run", "wall_seconds"])),
            "run_peak_rss_bytes": med(pick(["incremental", "run", "peak_rss_bytes"])),
            "gold_fresh_after_seconds": med(pick(["incremental", "run", "gold_fresh_after_seconds"])),
            "gold_partitions_materialized": med(pick(["incremental", "run", "gold_partitions_materialized"])),
            "drop_records": reps[0]["incremental"]["drop"]["records"],
            "span": reps[0]["incremental"]["request"]["span"],
            "assets": len(reps[0]["incremental"]["request"]["asset_keys"]),
            "baseline_rebuild_wall_seconds": med(pick(["incremental", "baseline_rebuild", "wall_seconds"])),
            "baseline_rebuild_peak_rss_bytes": med(pick(["incremental", "baseline_rebuild", "peak_rss_bytes"])),
        }
        s["incremental"]["ratio_run_to_baseline_rebuild"] = (
            s["incremental"]["run_wall_seconds"] / s["incremental"]["baseline_rebuild_wall_seconds"]
        )
    return s


def mismatches(reps: list[dict]) -> list[str]:
    out = []
    for r in reps:
        for what, diffs in (("full backfill", r.get("backfill_vs_baseline", [])),
                            ("after the incremental run", r.get("incremental", {}).get("vs_baseline_rebuild", []))):
            for dct in diffs:
                if not dct["equal"]:
                    out.append(f"rep {r['repetition']}, {what}: {dct['table']}: baseline "
                               f"{dct['baseline_rows']} rows, project {dct['project_rows']}; "
                               f"{dct['only_in_baseline']} only in baseline, {dct['only_in_project']} "
                               f"only in project {dct['problem'] or ''}\n"
                               + "\n".join(f"      baseline only: {x}" for x in dct["sample_baseline"])
                               + ("\n" if dct["sample_baseline"] else "")
                               + "\n".join(f"      project only:  {x}" for x in dct["sample_project"]))
    return out


def targets(scale: float, s: dict, results_dir: Path) -> list[dict]:
    out = []
    if scale in TARGET_RATIO:
        limit = TARGET_RATIO[scale]
        out.append({"target": f"scale {scale:g}: full backfill <= {limit:g}x baseline wall",
                    "value": round(s["ratio_of_medians"], 2), "pass": s["ratio_of_medians"] <= limit})
    if scale == 10:
        rss = s["backfill"]["peak_rss_bytes"]
        out.append({"target": "scale 10: full backfill peak RSS < 4 GiB",
                    "value": f"{rss / GIB:.2f} GiB", "pass": rss < TARGET_RSS_BYTES})
        one = results_dir / "scale-1.json"
        if one.exists():
            prev = json.loads(one.read_text())["median"]["backfill"]["wall_seconds"]
            growth = s["backfill"]["wall_seconds"] / prev
            out.append({"target": "scale 10 full backfill <= 12x scale 1 (scale-1.json)",
                        "value": round(growth, 2), "pass": growth <= TARGET_SCALE_GROWTH})
    if scale == 1 and "incremental" in s:
        v = s["incremental"]["run_wall_seconds"]
        out.append({"target": "scale 1: incremental run (gold fresh) within 15 s",
                    "value": round(v, 1), "pass": v <= TARGET_INCREMENTAL_SECONDS})
    return out


def table(args, summary, s: dict, n_reps: int) -> str:
    rows_b, rows_p = s["baseline"]["rows"], s["backfill"]["rows"]
    head = (f"{'variant':<34}{'wall s':>9}{'bronze rows/s':>15}{'silver rows/s':>15}"
            f"{'gold rows/s':>13}{'peak RSS MiB':>14}{'project/baseline':>18}")
    lines = [
        f"scale {scale_name(args.scale)}: {summary.records:,} landing records in {summary.files} files, "
        f"span {summary.partition_range}; {n_reps} repetition(s), medians",
        head,
        "-" * len(head),
    ]

    def line(name, wall, rows, rss, ratio):
        per = [(rows[k] / wall if rows and wall else None) for k in ("bronze", "silver", "gold")]
        lines.append(f"{name:<34}{fmt(wall, ',.1f'):>9}{fmt(per[0]):>15}{fmt(per[1]):>15}"
                     f"{fmt(per[2]):>13}{fmt(rss and rss / 2**20, ',.0f'):>14}{ratio:>18}")

    line("baseline (plain DuckDB, 1 process)", s["baseline"]["wall_seconds"], rows_b,
         s["baseline"]["peak_rss_bytes"], "1.0x")
    line("dagster full backfill (CLI, 1 run)", s["backfill"]["wall_seconds"], rows_p,
         s["backfill"]["peak_rss_bytes"], f"{s['ratio_of_medians']:.1f}x")
    inc = s.get("incremental")
    if inc:
        line("incremental: sensor tick", inc["tick_wall_seconds"], None, inc["tick_peak_rss_bytes"], "")
        line("incremental: run (CLI)", inc["run_wall_seconds"], None, inc["run_peak_rss_bytes"],
             f"{inc['ratio_run_to_baseline_rebuild']:.1f}x")
        line("baseline: full rebuild after drop", inc["baseline_rebuild_wall_seconds"], None,
             inc["baseline_rebuild_peak_rss_bytes"], "1.0x")
    lines.append("")
    lines.append(f"rows: bronze {rows_p['bronze']:,}  silver+quarantine {rows_p['silver']:,}  "
                 f"gold {rows_p['gold']:,}  (baseline: {rows_b['bronze']:,} / {rows_b['silver']:,} / {rows_b['gold']:,})")
    lb, lp = s["baseline"]["layer_seconds"], s["backfill"]["layer_seconds"]
    lines.append(
        "seconds per layer (baseline phases | dagster step durations): "
        + "  ".join(f"{k} {fmt(lb.get(k), '.1f')} | {fmt(lp.get(k), '.1f')}" for k in ("bronze", "silver", "gold"))
        + f"  checks - | {fmt(lp.get('checks'), '.1f')}"
        + f"  dagster outside steps {fmt(s['backfill']['wall_seconds'] - sum(v or 0 for v in lp.values()), '.1f')}"
    )
    lines.append(
        f"(each backfill's DAGSTER_HOME had its storage created beforehand by `dagster instance migrate`, "
        f"a {fmt(s['backfill'].get('instance_setup_seconds_not_counted'), '.1f')} s process, not counted)"
    )
    if inc:
        lines.append(
            f"incremental: {inc['drop_records']:,} records dropped; the sensor requested {inc['assets']} "
            f"assets over {inc['span']}; the run wrote {fmt(inc['gold_partitions_materialized'])} gold "
            f"partitions, the last {fmt(inc['gold_fresh_after_seconds'], '.1f')} s after it started; "
            f"tick itself {fmt(inc['tick_seconds'], '.1f')} s (+ process start and imports)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="sample data scale (default: 1)")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions (default: 3)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--profile", action="store_true",
                        help="also profile one more full backfill with pyinstrument")
    parser.add_argument("--no-incremental", action="store_true", help="skip the incremental update")
    parser.add_argument("--first-partition", default="2024-01-01", help="LAKEHOUSE_PARTITIONS_START")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where zones and warehouses go (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--results", type=Path, default=RESULTS, help="results folder")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per subprocess")
    args = parser.parse_args(argv)

    from lakehouse_assets.sample_data import generate_landing_zone

    args.results.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="lakehouse-bench-", dir=args.workdir))
    log(f"work folder {work}")
    started = datetime.now(UTC)
    load_start = os.getloadavg()
    t0 = clock.perf_counter()
    zone = work / "landing"
    summary = generate_landing_zone(zone, args.scale, args.seed)
    log(f"landing zone: {summary.records:,} records in {summary.files} files "
        f"({clock.perf_counter() - t0:.1f} s), span {summary.partition_range}")

    reps, error = [], None
    try:
        for i in range(args.repeat):
            reps.append(repetition(i, args, zone, summary, work))
        prof = profile(args, zone, summary, work, args.results) if args.profile else None
    except Failed as exc:
        error, prof = str(exc), None
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    result = {
        "scale": args.scale,
        "seed": args.seed,
        "started": started.isoformat(),
        "span": summary.partition_range,
        "landing": {"records": summary.records, "files": summary.files,
                    "tables": {t.table: t.records for t in summary.tables}},
        "machine": {
            "cpus": os.cpu_count(),
            "memory_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "duckdb": duckdb.__version__,
            "load_average_start": load_start,
            "load_average_end": os.getloadavg(),
        },
        "repetitions": reps,
        "error": error,
    }
    status = 0
    if reps:
        s = summarize(reps)
        result["median"] = s
        result["targets"] = targets(args.scale, s, args.results)
        result["mismatches"] = mismatches(reps)
        print()
        print(table(args, summary, s, len(reps)))
        print(f"machine: {os.cpu_count()} cores, load average {load_start[0]:.1f} at start, "
              f"{os.getloadavg()[0]:.1f} at end")
        for t in result["targets"]:
            print(f"target: {t['target']}: {t['value']} -> {'PASS' if t['pass'] else 'FAIL'}")
        if result["mismatches"]:
            status = 1
            print("\n!!! GOLD/SILVER/BRONZE OF THE PROJECT AND THE BASELINE DIFFER !!!")
            for m in result["mismatches"]:
                print("  " + m)
        else:
            print("project and baseline: equal row for row "
                  "(gold every repetition; silver and bronze in the first)")
    if prof:
        result["profile"] = prof
        print(f"\nprofile in {args.results}: " + ", ".join(prof["files"]))
        print(format_top(prof))
    if error:
        status = 1
        print(f"\n!!! {error}", file=sys.stderr)
    out = args.results / f"scale-{scale_name(args.scale)}.json"
    out.write_text(json.dumps(result, indent=2, default=str))
    print(f"\nresults: {out}")
    return status


if __name__ == "__main__":
    sys.exit(main())
