"""One tick of the landing sensor, evaluated as the daemon evaluates it.

    python -m benchmarks.sensor_tick --state STATE.json

The instance is the one of DAGSTER_HOME (so the sensor sees what earlier runs materialized,
as it does under the daemon), its resources are the landing zone and the warehouse of the
CONTRACT section 6 variables (the tick reads the manifest and the key state from the
warehouse), and the cursor is carried from tick to tick in STATE.json like the daemon stores
it. The tick's outcome is written back to STATE.json: the new cursor, and the run request
(asset keys, check keys, tags, run key) if there is one, with the tick's seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sensor_tick")
    parser.add_argument("--state", type=Path, required=True, help="JSON file carrying the cursor")
    args = parser.parse_args(argv)
    state = json.loads(args.state.read_text()) if args.state.exists() else {}

    started = time.perf_counter()
    from dagster import DagsterInstance, build_sensor_context

    from lakehouse_assets.definitions import defs
    from lakehouse_assets.resources.landing import LandingZone
    from lakehouse_assets.sensors.landing import landing_sensor
    from lakehouse_assets.storage.warehouse import DuckDBWarehouse

    imported = time.perf_counter()
    with DagsterInstance.get() as instance:
        with build_sensor_context(
            instance=instance,
            cursor=state.get("cursor"),
            definitions=defs,
            resources={
                "landing": LandingZone(uri=os.environ["LAKEHOUSE_LANDING_URI"]),
                "warehouse": DuckDBWarehouse(path=os.environ["LAKEHOUSE_DUCKDB_PATH"],
                                             memory_limit=os.environ.get("LAKEHOUSE_MEMORY_LIMIT") or "2GB"),
            },
        ) as context:
            result = landing_sensor(context)
    done = time.perf_counter()

    requests = [
        {
            "asset_keys": [k.to_user_string() for k in (r.asset_selection or [])],
            "check_keys": [str(k) for k in (r.asset_check_keys or [])],
            "tags": dict(r.tags),
            "run_key": r.run_key,
        }
        for r in (result.run_requests or [])
    ]
    state.update(
        cursor=result.cursor,
        requests=requests,
        skip_reason=result.skip_reason.skip_message if result.skip_reason else None,
        import_seconds=imported - started,
        tick_seconds=done - imported,
    )
    args.state.write_text(json.dumps(state))
    return 0


if __name__ == "__main__":
    sys.exit(main())
