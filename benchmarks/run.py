"""The benchmark: the project against the plain-DuckDB limit and against its own full
backfill, in one command.

    python -m benchmarks.run --scale 10 --repeat 1 [--profile incremental,ui]

Generates the sample landing zone once, then per repetition, each step a subprocess measured
for wall time and the peak RSS of its process tree:
- the baseline (benchmarks/baseline.py: one process, a fresh DuckDB file) over the whole zone;
- the full backfill of the whole zone through the contract's CLI (one run, fresh instance);
- the one-day CDC drop (benchmarks/incremental.py): the zone without its last day built with
  the CLI, a landing-sensor tick before the drop, the drop lands, a tick and the run it
  requests (through the CLI with its tags), and any follow-up run the next tick requests;
- a backfill of the last few days of every asset launched over GraphQL on `dagster dev`, as
  the UI launches it (benchmarks/ui_backfill.py), on the warehouse of the drop.
Every warehouse is compared row for row with the baseline's: any difference is printed under
`!!!` and the command exits 1. Prints a table of medians with the targets that apply, and
writes benchmarks/results/scale-<scale>.json. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time as clock
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb

from benchmarks import report, steps, zone
from benchmarks.compare import compare
from benchmarks.incremental import incremental
from benchmarks.instance import (SHIPPED_YAML, check_plugins, copy_home, fresh_home, instance_config,
                                 materialize_cmd, plugins, prepare_storage, project_env)
from benchmarks.steps import Failed, log

RESULTS = Path(__file__).resolve().parent / "results"
PROFILES = ("tick", "incremental", "ui", "full")


def scale_name(scale: float) -> str:
    return f"{scale:g}"


def ui_days(span: str, n: int) -> list[str]:
    last = date.fromisoformat(span.split("...")[1])
    return [(last - timedelta(days=n - 1 - i)).isoformat() for i in range(n)]


def repetition(i: int, args, landing: Path, summary, split: zone.Split, work: Path) -> dict:
    span, fp = split.span, args.first_partition
    d = work / f"rep{i + 1}"
    d.mkdir()
    rep: dict = {"repetition": i + 1}
    layers = ("gold", "silver", "bronze") if i == 0 else ("gold",)
    profiling = set(args.profile) if i == 0 else set()

    log(f"rep {i + 1}: baseline over {span}")
    base_db = d / "baseline.duckdb"
    rep["baseline"] = steps.baseline(landing, base_db, span, fp, d / "baseline", args.timeout)
    log(f"rep {i + 1}: baseline {rep['baseline']['wall_seconds']:.1f} s")

    log(f"rep {i + 1}: dagster full backfill --partition-range {span}")
    home = fresh_home(d / "dagster_home_full", args.instance)
    warehouse = d / "warehouse_full.duckdb"
    env = project_env(home, landing, warehouse, fp)
    rep["instance_setup_seconds_not_counted"] = prepare_storage(env)
    rep["backfill"] = steps.backfill(env, home, warehouse, span, d, "full_backfill", args.timeout)
    log(f"rep {i + 1}: full backfill {rep['backfill']['wall_seconds']:.1f} s, "
        f"peak RSS {rep['backfill']['peak_rss_bytes'] / 2**20:,.0f} MiB")
    rep["backfill_vs_baseline"] = [x.as_dict() for x in compare(base_db, warehouse, layers)]
    if not args.keep:
        warehouse.unlink(missing_ok=True)
    if "full" in profiling:
        rep["profile_full"] = profile_full(args, d, landing, span)

    if args.no_incremental:
        return rep
    inc = incremental(d, landing, split, base_db, args, layers,
                      keep_for_profile=bool({"tick", "incremental"} & profiling))
    paths = inc.pop("_paths")
    rep["incremental"] = inc
    if "tick" in profiling:
        rep["profile_tick"] = profile_tick(args, d, paths)
    if "incremental" in profiling:
        rep["profile_incremental"] = profile_incremental(args, d, paths)

    if not args.no_ui_backfill:
        days = ui_days(summary.partition_range, args.ui_days)  # the last days with commits
        if "ui" in profiling:  # the same days through the CLI, on a copy of this warehouse, profiled later
            saved = d / "before_ui"
            saved.mkdir()
            shutil.copy(paths["warehouse"], saved / "warehouse.duckdb")
            copy_home(paths["home"], saved / "dagster_home")
        log(f"rep {i + 1}: UI backfill of {days[0]}...{days[-1]}, every asset, on dagster dev")
        from benchmarks.ui_backfill import ui_backfill

        rep["ui_backfill"] = ui_backfill(paths["env"], days, d / "dagster_dev.log", args.timeout or 3600)
        log(f"rep {i + 1}: UI backfill {rep['ui_backfill']['wall_seconds']:.1f} s, "
            f"status {rep['ui_backfill']['status']}")
        rep["ui_backfill_vs_baseline"] = [x.as_dict() for x in compare(base_db, paths["warehouse"], ("gold",))]
        if "ui" in profiling:
            rep["profile_ui"] = profile_ui(args, d, paths, days)
    if not args.keep:
        for p in (base_db, paths["warehouse"]):
            p.unlink(missing_ok=True)
        shutil.rmtree(paths["landing"], ignore_errors=True)
    return rep


# --------------------------------------------------------------------------- profiles


def _profile(args, cmd, env, cwd, name, what) -> dict:
    from benchmarks.profiling import profile

    log(f"profile: {what} under pyinstrument")
    return profile(cmd, env, cwd, args.results, f"profile-scale-{scale_name(args.scale)}-{name}", what, args.timeout)


def profile_tick(args, d: Path, paths: dict) -> dict:
    """The tick after the drop again: the warehouse and cursor of before the drop, the zone
    with the drop."""
    from benchmarks.instance import tick_cmd

    p = d / "profile_tick"
    shutil.copytree(paths["saved"], p)
    env = project_env(p / "dagster_home", paths["landing"], p / paths["warehouse"].name, args.first_partition)
    return _profile(args, tick_cmd(p / "sensor_state.json"), env, p, "tick",
                    f"the landing sensor's tick after the drop at scale {scale_name(args.scale)} (one process)")


def profile_incremental(args, d: Path, paths: dict) -> dict:
    """The drop's run again, from the state it started from (saved before the drop landed)."""
    from benchmarks.steps import request_cmd

    p = d / "profile_incremental"
    shutil.copytree(paths["saved"], p)
    env = project_env(p / "dagster_home", paths["landing"], p / paths["warehouse"].name, args.first_partition)
    req = paths["request"]
    what = (f"the one-day drop's run at scale {scale_name(args.scale)} ({len(req['asset_keys'])} assets, "
            f"{req['tags']['dagster/asset_partition_range_start']}...{req['tags']['dagster/asset_partition_range_end']}, "
            "changes mode)")
    return _profile(args, request_cmd(req), env, p, "incremental", what)


def profile_ui(args, d: Path, paths: dict, days: list[str]) -> dict:
    """The UI backfill's run: one run of every asset over the days, without the mode tag
    (what the backfill daemon launches), through the CLI on the warehouse it started from."""
    p = d / "before_ui"
    env = project_env(p / "dagster_home", paths["landing"], p / "warehouse.duckdb", args.first_partition)
    what = (f"the UI backfill's run at scale {scale_name(args.scale)} (every asset, {days[0]}...{days[-1]}, "
            "days mode; launched through the CLI)")
    return _profile(args, materialize_cmd("*", f"{days[0]}...{days[-1]}"), env, p, "ui", what)


def profile_full(args, d: Path, landing: Path, span: str) -> dict:
    p = d / "profile_full"
    p.mkdir()
    home = fresh_home(p / "dagster_home", args.instance)
    env = project_env(home, landing, p / "warehouse.duckdb", args.first_partition)
    prepare_storage(env)
    return _profile(args, materialize_cmd("*", span), env, p, "full",
                    f"one full backfill at scale {scale_name(args.scale)} ({span})")


# --------------------------------------------------------------------------- main


def mismatches(reps: list[dict]) -> list[str]:
    out = []
    for r in reps:
        for what, diffs in (("full backfill", r.get("backfill_vs_baseline", [])),
                            ("after the drop's run", r.get("incremental", {}).get("vs_baseline", [])),
                            ("after the UI backfill", r.get("ui_backfill_vs_baseline", []))):
            for dct in diffs:
                if not dct["equal"]:
                    out.append(f"rep {r['repetition']}, {what}: {dct['table']}: baseline "
                               f"{dct['baseline_rows']} rows, project {dct['project_rows']}; "
                               f"{dct['only_in_baseline']} only in baseline, {dct['only_in_project']} "
                               f"only in project {dct['problem'] or ''}\n"
                               + "".join(f"      baseline only: {x}\n" for x in dct["sample_baseline"])
                               + "".join(f"      project only:  {x}\n" for x in dct["sample_project"]))
    return out


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="sample data scale (default: 1)")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions (default: 3)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--instance", choices=("shipped", "stock"), default="shipped",
                        help="the DAGSTER_HOME config: data/dagster_home/dagster.yaml as shipped (default), "
                             "or 'stock': that file without its plugin sections (Dagster's own storage)")
    parser.add_argument("--profile", default="",
                        help=f"comma-separated, of {', '.join(PROFILES)} (or 'all'): profile that command "
                             "again with pyinstrument, in the first repetition (not timed)")
    parser.add_argument("--no-incremental", action="store_true", help="skip the drop and the UI backfill")
    parser.add_argument("--no-ui-backfill", action="store_true", help="skip the UI backfill")
    parser.add_argument("--ui-days", type=int, default=3, help="days of the UI backfill (default 3: the last ones)")
    parser.add_argument("--first-partition", default="2024-01-01", help="LAKEHOUSE_PARTITIONS_START")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where zones and warehouses go (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--results", type=Path, default=RESULTS, help="results folder")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per subprocess")
    args = parser.parse_args(argv)
    args.profile = list(PROFILES) if args.profile == "all" else [p for p in args.profile.split(",") if p]
    if set(args.profile) - set(PROFILES):
        parser.error(f"--profile takes {', '.join(PROFILES)} or all")
    if args.no_incremental:
        args.no_ui_backfill = True
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from lakehouse_assets.sample_data import generate_landing_zone

    config = instance_config(args.instance)
    check_plugins(config)
    args.results.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="lakehouse-bench-", dir=args.workdir))
    log(f"work folder {work}; instance {args.instance} ({SHIPPED_YAML.relative_to(SHIPPED_YAML.parents[2])}"
        f"{', plugins: ' + ', '.join(f'{m}.{c}' for _, m, c in plugins(config)) if plugins(config) else ''})")
    started, load_start = datetime.now(UTC), os.getloadavg()
    t0 = clock.perf_counter()
    landing = work / "landing"
    summary = generate_landing_zone(landing, args.scale, args.seed)
    generated = clock.perf_counter() - t0
    # The generator runs in this process: its peak is this process's peak so far.
    generation_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    split = zone.split_last_day(landing, summary)
    log(f"landing zone: {summary.records:,} records in {summary.files} files ({generated:.1f} s), span "
        f"{split.span}; drop: {len(split.held_back)} files named {split.day} or later ({split.records:,} records)")

    reps, error = [], None
    try:
        for i in range(args.repeat):
            reps.append(repetition(i, args, landing, summary, split, work))
    except (Failed, RuntimeError, TimeoutError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    result = {
        "scale": args.scale, "seed": args.seed, "started": started.isoformat(), "span": split.span,
        "generator_partition_range": summary.partition_range,
        "instance": {"kind": args.instance, "config": config},
        "landing": {"records": summary.records, "files": summary.files, "generation_seconds": generated,
                    "generation_peak_rss_bytes": generation_rss,
                    "tables": {t.table: t.records for t in summary.tables}},
        "drop": split.as_dict(),
        "machine": {"cpus": os.cpu_count(),
                    "memory_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
                    "platform": platform.platform(), "python": platform.python_version(),
                    "duckdb": duckdb.__version__, "load_average_start": load_start,
                    "load_average_end": os.getloadavg()},
        "repetitions": reps, "error": error,
    }
    status = 0
    if reps and all("backfill" in r for r in reps):
        s = report.summarize(reps)
        result["median"] = s
        result["targets"] = report.targets(args.scale, s, args.results)
        result["mismatches"] = mismatches(reps)
        title = (f"scale {scale_name(args.scale)}: {summary.records:,} landing records in {summary.files} files, "
                 f"span {split.span}; {len(reps)} repetition(s), medians; instance {args.instance}")
        print("\n" + report.table(title, s))
        print(f"machine: {os.cpu_count()} cores, load average {load_start[0]:.1f} at start, "
              f"{os.getloadavg()[0]:.1f} at end (above the core count, timings are inflated)")
        for t in result["targets"]:
            print(f"target: {t['target']}: {t['value']} -> {'PASS' if t['pass'] else 'FAIL'}")
        if result["mismatches"]:
            status = 1
            print("\n!!! THE PROJECT'S WAREHOUSE AND THE BASELINE DIFFER !!!")
            for m in result["mismatches"]:
                print("  " + m)
        else:
            print("project and baseline: equal row for row (every comparison; see the JSON for which layers)")
    for r in reps[:1]:
        for key in ("profile_tick", "profile_incremental", "profile_ui", "profile_full"):
            if key in r:
                from benchmarks.profiling import format_top

                print(f"\n{r[key]['what']}: {', '.join(r[key]['files'])} in {args.results}")
                print(format_top(r[key], 8))
    if error:
        status = 1
        print(f"\n!!! {error}", file=sys.stderr)
    out = args.results / f"scale-{scale_name(args.scale)}.json"
    out.write_text(json.dumps(result, indent=2, default=str))
    print(f"\nresults: {out}")
    return status


if __name__ == "__main__":
    sys.exit(main())
