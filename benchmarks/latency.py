"""Freshness latency of the running lakehouse: from a CDC file landing to its gold partitions.

    python -m benchmarks.latency --scale 1 --repeat 3 --partitions 1,4,16

Starts `dagster dev` (webserver and daemon, the landing sensor on by default) on a generated
landing zone and a fresh warehouse, waits for the sensor's first load, then drops CDC files,
each inserting orders created on `k` different days, and waits for each drop's run. Per drop it
measures, by Dagster's own clock (GraphQL): landing -> run requested by the sensor, -> run
started, -> the last of those days materialized in gold.daily_revenue, and the run's duration.
Prints medians per `k` and writes benchmarks/results/latency-scale-<s>.json. The sensor ticks
every 15 s, so about 7.5 s of the latency is waiting for the next tick.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from benchmarks.instance import fresh_home, project_env
from benchmarks.services import FINISHED, running_dagster
from lakehouse_assets.sample_data import generate_landing_zone
from lakehouse_assets.sources import TABLES_BY_NAME

RESULTS = Path(__file__).resolve().parent / "results"
SENSOR_TAG = {"key": "dagster/sensor_name", "value": "landing_sensor"}


def drop(landing: Path, commit: datetime, days: list, first_id: int) -> Path:
    """One DMS CDC file of core_order inserting an order created on each of `days` (fields:
    Op, commit time, the table's columns, the change sequence; CONTRACT section 2)."""
    order = TABLES_BY_NAME["core_order"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for i, day in enumerate(days):
        created = f"{day} 12:00:00"
        values = {"id": first_id + i, "tenant_id": 1, "customer_id": 1, "status": "paid",
                  "currency": "EUR", "total_amount": "10.00", "created_at": created, "updated_at": created}
        ts = (commit + timedelta(seconds=i)).strftime("%Y-%m-%d %H:%M:%S.%f")
        writer.writerow(["I", ts, *(values.get(c) for c in order.column_names), str(10**30 + first_id + i)])
    folder = landing / order.landing_folder
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (commit.strftime("%Y%m%d-%H%M%S%f")[:18] + ".csv")
    path.write_text(out.getvalue())
    return path


def one_drop(services, landing: Path, commit: datetime, days: list, first_id: int) -> dict:
    known = {r["runId"] for r in services.runs()}
    drop(landing, commit, days, first_id)
    landed = time.time()

    def done():
        runs = services.runs()
        return runs if any(SENSOR_TAG in r["tags"] and r["runId"] not in known for r in runs) \
            and all(r["status"] in FINISHED for r in runs) else None

    runs = services.wait("the drop's run", done, timeout=900, every=2.0)
    [run] = [r for r in runs if r["runId"] not in known]
    if run["status"] != "SUCCESS":
        raise RuntimeError(f"the drop's run did not succeed: {run}")
    wanted = {str(d) for d in days}
    gold = [m for m in services.materializations("gold/daily_revenue", limit=500)
            if m["runId"] == run["runId"] and m["partition"] in wanted]
    if {m["partition"] for m in gold} != wanted:
        raise RuntimeError(f"gold.daily_revenue: wanted {sorted(wanted)} from the run, got {gold}")
    gold_at = max(int(m["timestamp"]) for m in gold) / 1000
    tags = {t["key"]: t["value"] for t in run["tags"]}
    return {
        "affected_days": len(days),
        "requested_after_s": round(run["creationTime"] - landed, 2),
        "started_after_s": round(run["startTime"] - landed, 2),
        "gold_after_s": round(gold_at - landed, 2),
        "run_seconds": round(run["endTime"] - run["startTime"], 2),
        "span": f"{tags.get('dagster/asset_partition_range_start')}...{tags.get('dagster/asset_partition_range_end')}",
        "assets": len(run["assetSelection"] or []),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.latency", description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--partitions", default="1,4,16", help="days a drop touches, comma-separated")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--instance", choices=("shipped", "stock"), default="shipped",
                        help="data/dagster_home/dagster.yaml as shipped, or without its plugin sections")
    args = parser.parse_args(argv)
    ks = [int(k) for k in args.partitions.split(",")]
    RESULTS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lakehouse-latency-") as tmp:
        tmp = Path(tmp)
        summary = generate_landing_zone(tmp / "landing", args.scale, args.seed)
        first_day = datetime.fromisoformat(summary.partition_range.split("...")[0]).date()
        print(f"scale {args.scale:g}: {summary.records:,} records in {summary.files} files; starting dagster dev")
        env = project_env(fresh_home(tmp / "dagster_home", args.instance), tmp / "landing",
                          tmp / "warehouse" / "lakehouse.duckdb", "2024-01-01")
        env.pop("LAKEHOUSE_SETTLE_SECONDS")  # files are written in place here: the product's settle time
        with running_dagster(env, tmp / "dagster-dev.log") as s:
            started = time.monotonic()
            s.wait("the first load", lambda: (lambda runs: any(SENSOR_TAG in r["tags"] for r in runs)
                   and all(r["status"] in FINISHED for r in runs))(s.runs()), timeout=1800, every=2.0)
            print(f"first load done {time.monotonic() - started:.0f} s after the services were up")
            commit = datetime.combine(summary.last_commit_date + timedelta(days=1), datetime.min.time())
            drops, next_id = [], 50_000_000
            for k in ks:
                for rep in range(args.repeat):
                    days = [first_day + timedelta(days=1 + (7 * i + rep) % 90) for i in range(k)]
                    commit += timedelta(minutes=5)
                    result = one_drop(s, tmp / "landing", commit, sorted(set(days)), next_id)
                    next_id += k
                    drops.append(result)
                    print(f"  k={k} rep {rep + 1}: gold {result['gold_after_s']:.1f} s after landing "
                          f"(requested {result['requested_after_s']:.1f} s, run {result['run_seconds']:.1f} s, "
                          f"span {result['span']})")
    rows = []
    for k in ks:
        mine = [d for d in drops if d["affected_days"] == k]
        med = {f: statistics.median(d[f] for d in mine) for f in
               ("requested_after_s", "started_after_s", "gold_after_s", "run_seconds")}
        rows.append({"affected_days": k, "drops": len(mine), **med})
    print(f"\n{'days touched':>12}{'drops':>7}{'-> run requested':>18}{'-> run started':>16}"
          f"{'-> gold fresh':>15}{'run s':>8}   (medians, seconds after the file landed)")
    for r in rows:
        print(f"{r['affected_days']:>12}{r['drops']:>7}{r['requested_after_s']:>18.1f}{r['started_after_s']:>16.1f}"
              f"{r['gold_after_s']:>15.1f}{r['run_seconds']:>8.1f}")
    out = RESULTS / f"latency-scale-{args.scale:g}.json"
    out.write_text(json.dumps({"scale": args.scale, "drops": drops, "medians": rows}, indent=2))
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
