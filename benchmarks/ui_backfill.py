"""A backfill of a few days of every asset, launched as the UI launches it.

On `dagster dev` started with the measurement's instance (the shipped dagster.yaml unless
--instance stock), warehouse and landing zone: the asset keys as the UI lists them
(`assetNodes`), then `launchPartitionBackfill` with `partitionNames` (the days) and an
`assetSelection` of every asset, as "Materialize all" and a partition selection do. Measured:
the wall time from the mutation to the backfill's completion (polled every 0.25 s), Dagster's
own timestamps (backfill created, its runs created, started, ended, backfill ended), the
partitions Dagster targeted per asset (the backfill's asset status counts), the runs it
launched, and the peak RSS of the whole `dagster dev` process tree (webserver, daemon, code
server and the run; summed, so an upper bound).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from benchmarks import measure
from benchmarks.services import FINISHED, running_dagster

ASSETS = """{ assetNodes { assetKey { path } isMaterializable isPartitioned } }"""

LAUNCH = """
mutation Launch($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) {
  __typename ... on LaunchBackfillSuccess { backfillId launchedRunIds }
  ... on PythonError { message stack } ... on PartitionKeysNotFoundError { message }
  ... on InvalidSubsetError { message } ... on UnauthorizedError { message } } }"""

BACKFILL = """
query Backfill($id: String!) { partitionBackfillOrError(backfillId: $id) { __typename
  ... on PartitionBackfill { id status timestamp endTimestamp numPartitions partitionNames
    error { message }
    assetBackfillData { assetBackfillStatuses { __typename
      ... on AssetPartitionsStatusCounts { assetKey { path } numPartitionsTargeted
          numPartitionsInProgress numPartitionsMaterialized numPartitionsFailed }
      ... on UnpartitionedAssetStatus { assetKey { path } inProgress materialized failed } } } }
  ... on PythonError { message } } }"""

BACKFILL_RUNS = """
query BackfillRuns($id: String!) { runsOrError(filter: {tags: [{key: "dagster/backfill", value: $id}]}) {
  __typename ... on Runs { results { runId status creationTime startTime endTime
    tags { key value } assetSelection { path } } } } }"""

DONE = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}


def ui_backfill(env: dict, days: list[str], log: Path, timeout: float = 3600) -> dict:
    with running_dagster(env, log) as s:
        nodes = s.graphql(ASSETS)["assetNodes"]
        keys = [n["assetKey"]["path"] for n in nodes if n["isMaterializable"]]
        # The daemon's sensors start with the services: let their first ticks pass.
        s.wait("no run in progress", lambda: all(r["status"] in FINISHED for r in s.runs()), 600, 2.0)
        before = {r["runId"] for r in s.runs()}
        peak = [0]
        stop = threading.Event()

        def poll_rss() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], measure.tree_rss(s.process.pid))
                stop.wait(measure.POLL_SECONDS)

        poller = threading.Thread(target=poll_rss, daemon=True)
        load_before = measure.loadavg()
        launched_at = time.time()
        t0 = time.perf_counter()
        poller.start()
        try:
            result = s.graphql(LAUNCH, p={"partitionNames": days, "assetSelection": [{"path": k} for k in keys],
                                          "fromFailure": False})["launchPartitionBackfill"]
            if result["__typename"] != "LaunchBackfillSuccess":
                raise RuntimeError(f"launchPartitionBackfill: {result}")
            backfill_id = result["backfillId"]

            def finished():
                b = s.graphql(BACKFILL, id=backfill_id)["partitionBackfillOrError"]
                return b if b.get("status") in DONE else None

            backfill = s.wait(f"backfill {backfill_id}", finished, timeout, every=0.25)
            wall = time.perf_counter() - t0
        finally:
            stop.set()
            poller.join()
        runs = s.graphql(BACKFILL_RUNS, id=backfill_id)["runsOrError"]["results"]
        others = [r for r in s.runs() if r["runId"] not in before and r["runId"] not in {x["runId"] for x in runs}]
    statuses = backfill["assetBackfillData"]["assetBackfillStatuses"]
    created = [r["creationTime"] for r in runs if r["creationTime"]]
    started = [r["startTime"] for r in runs if r["startTime"]]
    ended = [r["endTime"] for r in runs if r["endTime"]]
    # Where the wall goes, by Dagster's clock: the backfill daemon picks the backfill up on its
    # next iteration (every 30 s, fixed in Dagster 1.13), the run queue and launcher start the
    # run's process, the run, and the daemon's next iteration marks the backfill complete.
    phases = {
        "daemon_picks_up": min(created) - backfill["timestamp"] if created else None,
        "queued_and_launching": max(started) - min(created) if created and started else None,
        "runs": max(ended) - min(started) if started and ended else None,
        "daemon_marks_complete": backfill["endTimestamp"] - max(ended) if ended and backfill["endTimestamp"] else None,
    }
    targeted = {"/".join(x["assetKey"]["path"]): x.get("numPartitionsTargeted") for x in statuses}
    return {
        "days": days,
        "assets_selected": len(keys),
        "backfill_id": backfill_id,
        "status": backfill["status"],
        "error": backfill.get("error"),
        "wall_seconds": wall,
        "peak_rss_bytes_dagster_dev_tree": peak[0],
        "load_before": load_before,
        "load_after": measure.loadavg(),
        "partitions_targeted_per_asset": targeted,
        "every_asset_exactly": sorted(set(targeted.values()), key=str),
        "phases_seconds": phases,
        "data_fresh_seconds": max(ended) - launched_at if ended else None,
        "dagster_timestamps": {
            "launched": launched_at,
            "backfill_created": backfill["timestamp"],
            "backfill_ended": backfill["endTimestamp"],
            "runs": [{"run_id": r["runId"], "status": r["status"], "created": r["creationTime"],
                      "started": r["startTime"], "ended": r["endTime"],
                      "assets": len(r["assetSelection"] or []),
                      "range": [t["value"] for t in r["tags"] if t["key"].startswith("dagster/asset_partition_range")]}
                     for r in runs],
        },
        "other_runs_meanwhile": [{"run_id": r["runId"], "status": r["status"],
                                  "tags": {t["key"]: t["value"] for t in r["tags"]}} for r in others],
    }
