"""The incremental measurement: a one-day CDC drop that updates old keys, refreshed by the
landing sensor's tick and the one run it requests.

1. The zone without the drop (its last day of CDC files, benchmarks/zone.py) is built with the
   contract's CLI over its own span, on a fresh instance and warehouse (reported, not the
   target's denominator: that is the full backfill of the whole zone).
2. The landing sensor ticks once (as the daemon evaluates it, benchmarks/sensor_tick.py): the
   cursor of a tick taken before the drop. Anything it requests is reported (nothing should
   be left to do after a backfill).
3. The drop lands; the sensor ticks again with that cursor (measured) and its one run request
   is executed through the CLI with its assets, range and tags (measured).
4. The sensor ticks again, as the daemon would next: a run it requests (work the first run
   left outside its days) is executed and measured too, and counted as the drop's cost.
5. The warehouse is compared with the baseline built over the whole zone.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from benchmarks import steps, zone
from benchmarks.compare import compare
from benchmarks.instance import copy_home, fresh_home, prepare_storage, project_env
from benchmarks.steps import Failed, log

MAX_FOLLOW_UPS = 3


def incremental(d: Path, full_zone: Path, split: zone.Split, base_db: Path, args, layers: tuple[str, ...],
                keep_for_profile: bool) -> dict:
    fp = args.first_partition
    landing = zone.link_zone(full_zone, d / "landing_held_in", leave_out=split.held_back)
    home = fresh_home(d / "dagster_home_incremental", args.instance)
    warehouse = d / "warehouse_incremental.duckdb"
    env = project_env(home, landing, warehouse, fp)
    prepare_storage(env)
    log(f"incremental: backfill of the zone without the drop, {split.held_in_span}")
    held_in = steps.backfill(env, home, warehouse, split.held_in_span, d, "held_in_backfill", args.timeout)
    log(f"incremental: held-in backfill {held_in['wall_seconds']:.1f} s")

    state = d / "sensor_state.json"
    before = steps.tick(env, state, d, "tick_before", args.timeout)
    if before["requests"]:
        log(f"!!! the tick before the drop requested a run: {before['requests'][0]['tags'].get('lakehouse/reason')}")
    saved = None
    if keep_for_profile:  # the state the measured tick and run start from, to profile them again
        saved = d / "before_drop"
        saved.mkdir()
        shutil.copy(warehouse, saved / warehouse.name)
        shutil.copy(state, saved / "sensor_state.json")
        copy_home(home, saved / "dagster_home")

    zone.land(full_zone, landing, split.held_back)
    log(f"incremental: the drop landed ({len(split.held_back)} files, {split.records:,} records); sensor tick")
    tick = steps.tick(env, state, d, "tick", args.timeout)
    if len(tick["requests"]) != 1:
        raise Failed(f"the sensor did not request one run after the drop: {tick['skip_reason']}")
    request = tick["requests"][0]
    log(f"incremental: tick {tick['wall_seconds']:.1f} s (evaluation {tick['tick_seconds']:.1f} s); "
        f"run of {len(request['asset_keys'])} assets over {request['tags']['dagster/asset_partition_range_start']}"
        f"...{request['tags']['dagster/asset_partition_range_end']}")
    run = steps.run_request(env, home, request, d, "incremental_run", args.timeout)
    log(f"incremental: run {run['wall_seconds']:.1f} s, peak RSS {run['peak_rss_bytes'] / 2**20:,.0f} MiB")

    follow_ups = []
    for i in range(MAX_FOLLOW_UPS + 1):
        after = steps.tick(env, state, d, f"tick_after_{i + 1}", args.timeout)
        if not after["requests"]:
            break
        if i == MAX_FOLLOW_UPS:
            raise Failed(f"the sensor kept requesting runs after the drop: {after['requests'][0]['tags']}")
        log(f"incremental: follow-up run requested: {after['requests'][0]['tags'].get('lakehouse/reason')}")
        follow_ups.append({"tick": after, "run": steps.run_request(env, home, after["requests"][0], d,
                                                                    f"follow_up_run_{i + 1}", args.timeout)})

    diffs = [x.as_dict() for x in compare(base_db, warehouse, layers)]
    return {
        "drop": split.as_dict(),
        "held_in_backfill": held_in,
        "tick_before": before,
        "tick": tick,
        "run": run,
        "follow_ups": follow_ups,
        "follow_up_seconds": sum(f["tick"]["wall_seconds"] + f["run"]["wall_seconds"] for f in follow_ups),
        "rows": steps.layer_rows(warehouse),
        "vs_baseline": diffs,
        "compared_layers": list(layers),
        "_paths": {"home": home, "warehouse": warehouse, "landing": landing, "env": env, "saved": saved,
                   "request": request},
    }
