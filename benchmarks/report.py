"""Medians over repetitions, the issue's targets that apply to the scale, and the table."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

GIB = 2**30
MIB = 2**20

# Targets (2 cores, 24 GiB). Full backfill vs the plain-DuckDB baseline, and its peak RSS.
TARGET_RATIO = {1: 3.0, 10: 2.0, 30: 2.0}
TARGET_RSS = {10: ("<", 4 * GIB), 30: ("<=", 6 * GIB)}
TARGET_SCALE_GROWTH = 12.0  # full backfill at 10x within 12x of 1x
# The one-day drop: tick + run as a share of the full backfill's wall, by scale.
TARGET_DROP_SHARE = {10: 0.25, 30: 0.10}
TARGET_DROP_RSS_SHARE = {10: 0.25}
TARGET_TICK_SECONDS = {10: 5.0}
TARGET_RUN_GROWTH = 1.5  # the drop's run at 10x within 1.5x of its run at 1x
TARGET_UI_SHARE = {10: 0.15}


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def pick(reps: list[dict], *path):
    out = []
    for r in reps:
        v = r
        for k in path:
            v = v.get(k) if isinstance(v, dict) else None
        out.append(v)
    return out


def summarize(reps: list[dict]) -> dict:
    s: dict = {}
    for variant in ("baseline", "backfill"):
        s[variant] = {
            "wall_seconds": med(pick(reps, variant, "wall_seconds")),
            "peak_rss_bytes": med(pick(reps, variant, "peak_rss_bytes")),
            "rows": reps[0][variant]["rows"]["totals"],
            "layer_seconds": {layer: med(pick(reps, variant, "layer_seconds", layer))
                              for layer in ("bronze", "silver", "gold", "checks")},
        }
    s["backfill"]["instance_setup_seconds_not_counted"] = med(pick(reps, "instance_setup_seconds_not_counted"))
    s["backfill"]["peak_rss_bytes_by_step"] = _top_steps(reps[0]["backfill"])
    s["ratio_of_medians"] = s["backfill"]["wall_seconds"] / s["baseline"]["wall_seconds"]
    if all("incremental" in r for r in reps):
        inc = [r["incremental"] for r in reps]
        tick_run = [i["tick"]["wall_seconds"] + i["run"]["wall_seconds"] + i["follow_up_seconds"] for i in inc]
        s["incremental"] = {
            "held_in_backfill_wall_seconds": med(pick(inc, "held_in_backfill", "wall_seconds")),
            "tick_wall_seconds": med(pick(inc, "tick", "wall_seconds")),
            "tick_seconds": med(pick(inc, "tick", "tick_seconds")),
            "tick_peak_rss_bytes": med(pick(inc, "tick", "peak_rss_bytes")),
            "run_wall_seconds": med(pick(inc, "run", "wall_seconds")),
            "run_peak_rss_bytes": med(pick(inc, "run", "peak_rss_bytes")),
            "run_layer_seconds": {layer: med(pick(inc, "run", "layer_seconds", layer))
                                  for layer in ("bronze", "silver", "gold", "checks")},
            "follow_up_seconds": med([i["follow_up_seconds"] for i in inc]),
            "follow_up_runs": max(len(i["follow_ups"]) for i in inc),
            "tick_before_requested": any(i["tick_before"]["requests"] for i in inc),
            "tick_plus_run_seconds": med(tick_run),
            "share_of_full_backfill": med([t / r["backfill"]["wall_seconds"] for t, r in zip(tick_run, reps)]),
            "run_rss_share_of_full_backfill": med([i["run"]["peak_rss_bytes"] / r["backfill"]["peak_rss_bytes"]
                                                   for i, r in zip(inc, reps)]),
            "gold_fresh_after_seconds": med(pick(inc, "run", "gold_fresh_after_seconds")),
            "gold_partitions_materialized": med(pick(inc, "run", "gold_partitions_materialized")),
            "partitions_materialized": med([sum((i["run"].get("materializations_per_asset") or {}).values())
                                            for i in inc]),
            "run_peak_rss_bytes_by_step": _top_steps(inc[0]["run"]),
            "drop": inc[0]["drop"],
            "span": inc[0]["run"]["request"]["span"],
            "assets": inc[0]["run"]["request"]["assets"],
            "reason": inc[0]["run"]["request"]["reason"],
        }
    if all("ui_backfill" in r for r in reps):
        ui = [r["ui_backfill"] for r in reps]
        s["ui_backfill"] = {
            "wall_seconds": med(pick(ui, "wall_seconds")),
            "share_of_full_backfill": med([u["wall_seconds"] / r["backfill"]["wall_seconds"] for u, r in zip(ui, reps)]),
            "data_fresh_share": med([u["data_fresh_seconds"] / r["backfill"]["wall_seconds"]
                                     for u, r in zip(ui, reps) if u["data_fresh_seconds"]]),
            "days": ui[0]["days"],
            "assets": ui[0]["assets_selected"],
            "partitions_targeted_per_asset": sorted({v for u in ui for v in u["every_asset_exactly"]}, key=str),
            "runs": max(len(u["dagster_timestamps"]["runs"]) for u in ui),
            "status": sorted({u["status"] for u in ui}),
            "phases_seconds": {k: med([u["phases_seconds"][k] for u in ui]) for k in ui[0]["phases_seconds"]},
            "data_fresh_seconds": med(pick(ui, "data_fresh_seconds")),
            "peak_rss_bytes_dagster_dev_tree": med(pick(ui, "peak_rss_bytes_dagster_dev_tree")),
        }
    return s


def _top_steps(run: dict, n: int = 3) -> dict:
    """The steps during which the run's process was largest (first repetition)."""
    by_step = run.get("peak_rss_bytes_by_step") or {}
    return dict(list(by_step.items())[:n])


def _earlier(results_dir: Path, scale: str, *path):
    f = results_dir / f"scale-{scale}.json"
    if not f.exists():
        return None
    v = json.loads(f.read_text()).get("median")
    for k in path:
        v = v.get(k) if isinstance(v, dict) else None
    return v


def targets(scale: float, s: dict, results_dir: Path) -> list[dict]:
    out = []

    def add(target: str, value, ok: bool) -> None:
        out.append({"target": target, "value": value, "pass": bool(ok)})

    sc = int(scale) if scale == int(scale) else None
    if sc in TARGET_RATIO:
        add(f"scale {sc}: full backfill <= {TARGET_RATIO[sc]:g}x baseline wall",
            round(s["ratio_of_medians"], 2), s["ratio_of_medians"] <= TARGET_RATIO[sc])
    if sc in TARGET_RSS:
        op, limit = TARGET_RSS[sc]
        rss = s["backfill"]["peak_rss_bytes"]
        add(f"scale {sc}: full backfill peak RSS {op} {limit / GIB:g} GiB", f"{rss / GIB:.2f} GiB",
            rss < limit if op == "<" else rss <= limit)
    if sc == 10:
        one = _earlier(results_dir, "1", "backfill", "wall_seconds")
        if one:
            growth = s["backfill"]["wall_seconds"] / one
            add("scale 10 full backfill <= 12x scale 1 (results/scale-1.json)", round(growth, 2),
                growth <= TARGET_SCALE_GROWTH)
    inc = s.get("incremental")
    if inc:
        if sc in TARGET_DROP_SHARE:
            add(f"scale {sc}: one-day drop, tick + run <= {TARGET_DROP_SHARE[sc]:.0%} of the full backfill",
                f"{inc['share_of_full_backfill']:.1%}", inc["share_of_full_backfill"] <= TARGET_DROP_SHARE[sc])
        if sc in TARGET_DROP_RSS_SHARE:
            add(f"scale {sc}: the drop's run peak RSS <= {TARGET_DROP_RSS_SHARE[sc]:.0%} of the full backfill's",
                f"{inc['run_rss_share_of_full_backfill']:.1%}",
                inc["run_rss_share_of_full_backfill"] <= TARGET_DROP_RSS_SHARE[sc])
        if sc in TARGET_TICK_SECONDS:
            add(f"scale {sc}: sensor tick <= {TARGET_TICK_SECONDS[sc]:g} s (evaluation; process wall "
                f"{inc['tick_wall_seconds']:.1f} s)", round(inc["tick_seconds"], 2),
                inc["tick_seconds"] <= TARGET_TICK_SECONDS[sc])
        if sc == 10:
            one = _earlier(results_dir, "1", "incremental", "run_wall_seconds")
            if one:
                growth = inc["run_wall_seconds"] / one
                add("scale 10: the drop's run <= 1.5x its run at scale 1 (results/scale-1.json)",
                    round(growth, 2), growth <= TARGET_RUN_GROWTH)
    ui = s.get("ui_backfill")
    if ui:
        n = len(ui["days"])
        add(f"UI backfill: exactly {n} partitions targeted per asset", ui["partitions_targeted_per_asset"],
            ui["partitions_targeted_per_asset"] == [n])
        if sc in TARGET_UI_SHARE:
            add(f"scale {sc}: UI backfill of {n} days <= {TARGET_UI_SHARE[sc]:.0%} of the full backfill",
                f"{ui['share_of_full_backfill']:.1%}", ui["share_of_full_backfill"] <= TARGET_UI_SHARE[sc])
    return out


def fmt(v, spec: str = ",.0f", missing: str = "-") -> str:
    return missing if v is None else format(v, spec)


def table(title: str, s: dict) -> str:
    rows_b, rows_p = s["baseline"]["rows"], s["backfill"]["rows"]
    head = (f"{'variant':<46}{'wall s':>9}{'bronze rows/s':>15}{'silver rows/s':>15}"
            f"{'gold rows/s':>13}{'peak RSS MiB':>14}  {'vs'}")
    lines = [title, head, "-" * (len(head) + 24)]

    def line(name, wall, rows, rss, vs=""):
        per = [(rows[k] / wall if rows and wall else None) for k in ("bronze", "silver", "gold")]
        lines.append(f"{name:<46}{fmt(wall, ',.1f'):>9}{fmt(per[0]):>15}{fmt(per[1]):>15}"
                     f"{fmt(per[2]):>13}{fmt(rss and rss / MIB, ',.0f'):>14}  {vs}")

    full = s["backfill"]["wall_seconds"]
    line("baseline (plain DuckDB, 1 process)", s["baseline"]["wall_seconds"], rows_b, s["baseline"]["peak_rss_bytes"])
    line("dagster full backfill (CLI, 1 run)", full, rows_p, s["backfill"]["peak_rss_bytes"],
         f"{s['ratio_of_medians']:.2f}x baseline")
    inc = s.get("incremental")
    if inc:
        line("drop: backfill without the drop (set-up)", inc["held_in_backfill_wall_seconds"], None, None)
        line(f"drop: sensor tick (evaluation {fmt(inc['tick_seconds'], '.2f')} s)", inc["tick_wall_seconds"], None,
             inc["tick_peak_rss_bytes"], f"{inc['tick_wall_seconds'] / full:.1%} of full backfill")
        line("drop: the run it requested (CLI + tags)", inc["run_wall_seconds"], None, inc["run_peak_rss_bytes"],
             f"{inc['run_wall_seconds'] / full:.1%} of full; RSS {inc['run_rss_share_of_full_backfill']:.1%} of full's")
        if inc["follow_up_runs"]:
            line("drop: follow-up ticks and runs", inc["follow_up_seconds"], None, None)
        line("drop: tick + run", inc["tick_plus_run_seconds"], None, None,
             f"{inc['share_of_full_backfill']:.1%} of full backfill")
    ui = s.get("ui_backfill")
    if ui:
        line(f"UI backfill: {len(ui['days'])} days x {ui['assets']} assets (GraphQL)", ui["wall_seconds"], None,
             ui["peak_rss_bytes_dagster_dev_tree"], f"{ui['share_of_full_backfill']:.1%} of full backfill")
    lines.append("")
    lines.append(f"rows: bronze {rows_p['bronze']:,}  silver+quarantine {rows_p['silver']:,}  gold {rows_p['gold']:,}"
                 f"  (baseline: {rows_b['bronze']:,} / {rows_b['silver']:,} / {rows_b['gold']:,})")
    lb, lp = s["baseline"]["layer_seconds"], s["backfill"]["layer_seconds"]
    lines.append("seconds per layer (baseline phases | dagster step durations): "
                 + "  ".join(f"{k} {fmt(lb.get(k), '.1f')} | {fmt(lp.get(k), '.1f')}" for k in ("bronze", "silver", "gold"))
                 + f"  checks - | {fmt(lp.get('checks'), '.1f')}"
                 + f"  dagster outside steps {fmt(full - sum(v or 0 for v in lp.values()), '.1f')}")
    lines.append(f"(each DAGSTER_HOME had its storage created beforehand by `dagster instance migrate`, a "
                 f"{fmt(s['backfill'].get('instance_setup_seconds_not_counted'), '.1f')} s process, not counted)")
    def steps_rss(by_step: dict) -> str:
        return ", ".join(f"{k} {fmt(v and v / MIB, ',.0f')}" for k, v in by_step.items()) or "-"

    lines.append(f"peak RSS MiB during the largest steps: full backfill: {steps_rss(s['backfill']['peak_rss_bytes_by_step'])}"
                 + (f"; the drop's run: {steps_rss(inc['run_peak_rss_bytes_by_step'])}" if inc else ""))
    if inc:
        d = inc["drop"]
        rl = inc["run_layer_seconds"]
        lines.append(f"drop: {d['records']:,} records in {d['files']} files named {d['day']} or later; the sensor requested "
                     f"{inc['assets']} assets over {inc['span']} ({inc['reason']}); the run recorded "
                     f"{fmt(inc['partitions_materialized'])} asset partitions materialized "
                     f"({fmt(inc['gold_partitions_materialized'])} of gold), the last gold one "
                     f"{fmt(inc['gold_fresh_after_seconds'], '.1f')} s after it started; its steps: "
                     + "  ".join(f"{k} {fmt(rl.get(k), '.1f')}" for k in ("bronze", "silver", "gold", "checks")))
        if inc["tick_before_requested"]:
            lines.append("!!! the tick before the drop requested a run (work left by the backfill): see the JSON")
    if ui:
        ph = ui["phases_seconds"]
        lines.append(f"UI backfill of {ui['days'][0]}...{ui['days'][-1]}: {ui['runs']} run(s), status {ui['status']}, "
                     f"partitions targeted per asset {ui['partitions_targeted_per_asset']}; its wall: the backfill "
                     f"daemon picks it up {fmt(ph['daemon_picks_up'], '.1f')} s, run queued and launched "
                     f"{fmt(ph['queued_and_launching'], '.1f')} s, run {fmt(ph['runs'], '.1f')} s, daemon marks it "
                     f"complete {fmt(ph['daemon_marks_complete'], '.1f')} s (data fresh after "
                     f"{fmt(ui['data_fresh_seconds'], '.1f')} s, {fmt(ui['data_fresh_share'], '.1%')} of full backfill)")
    return "\n".join(lines)
