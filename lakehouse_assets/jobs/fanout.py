"""A backfill fanned out over K runs at once (AWS mode: Iceberg tables take concurrent
writers), with the same result as the single run `dagster asset materialize --select '*'
--partition-range A...B`.

Not every step may run K at once:
- bronze ingests every new landing file, whatever the run's days;
- a silver step first merges every pending bronze change into the key state
  (`state.<entity>_keys`, its watermark in `state.marks`), saving rows computed from what it
  read: two merges at once could each overwrite the other's keys with an older winner (an
  Iceberg re-plan re-applies the same stale rows), so the merge has one writer;
- gold for a day reads silver of other days (90-day windows, an order's items, every
  subscription), so all of silver comes first.

Hence four phases, each started when the one before has succeeded:
1. bronze: one run over the whole range (what a full backfill ingests and re-reads);
2. merge: one silver run over the range's first day (the merge happens there);
3. silver: K runs over disjoint day ranges at once: nothing is left to merge, so each writes
   its days and records, for its own keys only, what silver holds;
4. gold: K runs over the same ranges at once, over the finished silver.

Runs are submitted to the instance (`dagster job launch`), so the run queue admits them
(deploy/dagster.yaml) and the run launcher gives each its own process, or ECS task. The
landing sensor and the daily schedule would merge too: they are stopped for the fan-out
(runs already in flight are waited for) and started again after, also when a phase fails.

    lakehouse-fanout --runs 4 --partition-range 2024-09-01...2024-12-10
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from dagster import AssetSelection, DagsterInstance, DagsterRunStatus, RunsFilter, define_asset_job

from lakehouse_assets.runs import range_tags

FANOUT_TAG = "lakehouse/fanout"  # the phase; deploy/dagster.yaml limits runs by it
LAYERS = ("bronze", "silver", "gold")
# One job per layer (its assets and their checks), for runs that write one layer.
LAYER_JOBS = [define_asset_job(f"{layer}_layer", selection=AssetSelection.groups(layer),
                               description=f"Every {layer} asset over a range of days (the fan-out's phases)")
              for layer in LAYERS]
AUTOMATION = (("sensor", "landing_sensor"), ("schedule", "daily_refresh"))
IN_FLIGHT = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING,
             DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]
DAGSTER = str(Path(sys.executable).with_name("dagster"))


@dataclass(frozen=True)
class PhaseRun:
    phase: str
    job: str
    first: date
    last: date

    def tags(self) -> dict[str, str]:
        return {**range_tags(self.first, self.last), FANOUT_TAG: self.phase}


def split(first: date, last: date, k: int) -> list[tuple[date, date]]:
    """first...last as at most k disjoint ranges of consecutive days, as even as can be."""
    days = (last - first).days + 1
    if k < 1 or days < 1:
        raise ValueError("need k >= 1 and first <= last")
    k = min(k, days)
    bounds = [first + timedelta(days=days * i // k) for i in range(k + 1)]
    return [(bounds[i], bounds[i + 1] - timedelta(days=1)) for i in range(k)]


def plan(first: date, last: date, k: int) -> list[list[PhaseRun]]:
    ranges = split(first, last, k)
    return [
        [PhaseRun("bronze", "bronze_layer", first, last)],
        [PhaseRun("merge", "silver_layer", first, first)],
        [PhaseRun("silver", "silver_layer", a, b) for a, b in ranges],
        [PhaseRun("gold", "gold_layer", a, b) for a, b in ranges],
    ]


class Fanout:
    def __init__(self, target: list[str], instance: DagsterInstance, timeout: float, log=print):
        # target: how the CLI finds the code location (-m module, or -w workspace.yaml)
        self.target, self.instance, self.timeout, self.log = target, instance, timeout, log

    def cli(self, calls: list[tuple[str, ...]]) -> list[tuple[int, str]]:
        """dagster CLI commands on this code location, at once: (return code, output) each."""
        started = [subprocess.Popen([DAGSTER, *args, *self.target], stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True) for args in calls]
        outputs = [p.communicate()[0] for p in started]
        return [(p.returncode, out) for p, out in zip(started, outputs)]

    def pause(self) -> list[tuple[str, str]]:
        """Stop what would merge meanwhile; returns what was running (to start again)."""
        results = self.cli([(kind, "stop", name) for kind, name in AUTOMATION])
        stopped = [a for a, (code, _) in zip(AUTOMATION, results) if code == 0]
        self.log(f"stopped {', '.join(n for _, n in stopped) or 'nothing (already stopped)'}")
        return stopped

    def resume(self, stopped: list[tuple[str, str]]) -> None:
        results = self.cli([(kind, "start", name) for kind, name in stopped])
        for (_, name), (code, out) in zip(stopped, results):
            self.log(f"started {name}" if code == 0 else f"could not start {name}: {out[-500:]}")

    def wait(self, run_ids: list[str]) -> list[str]:
        """Until every run has finished; the ids of those that did not succeed."""
        deadline = time.monotonic() + self.timeout
        while True:
            runs = [self.instance.get_run_by_id(i) for i in run_ids]
            if all(r is not None and r.is_finished for r in runs):
                return [r.run_id for r in runs if r.status != DagsterRunStatus.SUCCESS]
            if time.monotonic() > deadline:
                raise TimeoutError(f"runs still going after {self.timeout:.0f} s: {run_ids}")
            time.sleep(1)

    def launch(self, runs: list[PhaseRun]) -> list[str]:
        """Submit the runs of a phase to the queue, at once."""
        ids = [str(uuid.uuid4()) for _ in runs]
        started = [subprocess.Popen([DAGSTER, "job", "launch", *self.target, "-j", r.job, "--run-id", i,
                                     "--tags", json.dumps(r.tags())], stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True) for r, i in zip(runs, ids)]
        for process, run in zip(started, runs):
            out, _ = process.communicate()
            if process.returncode:
                raise RuntimeError(f"could not launch {run}: {out[-2000:]}")
        return ids

    def run(self, phases: list[list[PhaseRun]]) -> None:
        stopped = self.pause()
        try:
            in_flight = [r.run_id for r in self.instance.get_runs(RunsFilter(statuses=IN_FLIGHT))]
            if in_flight:
                self.log(f"waiting for {len(in_flight)} runs in flight to finish")
                self.wait(in_flight)
            for runs in phases:
                self.log(f"{runs[0].phase}: {len(runs)} runs: " + ", ".join(f"{r.first}...{r.last}" for r in runs))
                failed = self.wait(self.launch(runs))
                if failed:
                    raise RuntimeError(f"{runs[0].phase}: runs {failed} did not succeed; later phases not started")
        finally:
            self.resume(stopped)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lakehouse-fanout", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, required=True, help="K: runs at once for silver and gold")
    parser.add_argument("--partition-range", required=True, help="first...last, as the contract's CLI")
    parser.add_argument("--module", default="lakehouse_assets.definitions", help="the code location, loaded here")
    parser.add_argument("--workspace", help="a workspace.yaml instead: runs then name its code location, as the "
                                            "daemon knows it (production: deploy/workspace.yaml)")
    parser.add_argument("--timeout", type=float, default=6 * 3600, help="seconds a phase may take")
    args = parser.parse_args(argv)
    first, _, last = args.partition_range.partition("...")
    phases = plan(date.fromisoformat(first), date.fromisoformat(last), args.runs)
    with DagsterInstance.get() as instance:
        target = ["-w", args.workspace] if args.workspace else ["-m", args.module]
        Fanout(target, instance, args.timeout, log=lambda m: print(m, flush=True)).run(phases)
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
