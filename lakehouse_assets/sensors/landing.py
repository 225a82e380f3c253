"""The landing sensor: new DMS files in, one run that refreshes exactly what they make stale.

A tick lists the landing zone and compares it with the manifest (bronze's ledger, read from
the warehouse) and its small cursor (sensors/cursor.py): a file is new until a run has
ingested it, whatever its name or the second it landed in; a file landed again with the same
content is nothing new; a local file still being copied waits for the next tick. It reads only
the new files and foresees their impact from the warehouse's key state (sensors/impact.py).
It also asks for what earlier runs left to do: bronze changes no silver step merged yet, keys
and gold cells outside the days of the run that changed them, tables whose declaration
changed. It requests one run for all of it, with the reason in its tags. While a run writes
the warehouse (DuckDB has one writer) the tick waits for the next one.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

from dagster import (
    AssetSelection,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from lakehouse_assets.ingest.ledger import classify, content_sha, ingested_files
from lakehouse_assets.landing.files import LandingFile
from lakehouse_assets.partitions import first_partition, last_partition
from lakehouse_assets.resources import LandingZone
from lakehouse_assets.runs import LANDED_BEFORE_TAG, MODE_TAG, REASON_TAG, TRIGGER_TAG, range_tags
from lakehouse_assets.sensors.cursor import Cursor
from lakehouse_assets.sensors.impact import BRONZE_LEDGER, Impact
from lakehouse_assets.sensors.leftovers import leftovers, new_days, new_files_impact
from lakehouse_assets.settings import settings
from lakehouse_assets.sources import SOURCE_TABLES, SourceTable
from lakehouse_assets.storage.tables import WarehouseBusy
from lakehouse_assets.storage.warehouse import Warehouse

SENSOR_INTERVAL_SECONDS = 15
MAX_ATTEMPTS = 3


def tick(context: SensorEvaluationContext, landing: LandingZone, warehouse: Warehouse,
         tables: tuple[SourceTable, ...] = SOURCE_TABLES) -> SensorResult:
    now = datetime.now(timezone.utc)
    cursor = Cursor.decode(context.cursor)
    store = landing.store()
    listing = {t.name: store.list_files(t.landing_folder)[0] for t in tables}
    try:
        with warehouse.reader() as look:
            ingested = ingested_files(look)
            cursor.forget_ingested({p: f.etag for files in ingested.values() for p, f in files.items()})
            new = _new_files(context, cursor, listing, ingested, store, now)
            first, last = first_partition(), last_partition()
            impact = new_files_impact(look, store, tables, new, now, first, last)
            impact.update(leftovers(look, tables, first, last))
            if impact.days:  # with other work to do (a table that reaches forward may hold no row on its last day)
                impact.update(new_days(look, impact, impact.newest_commit, last))
    except WarehouseBusy:
        return SensorResult(skip_reason=SkipReason("a run is writing the warehouse: looking again next tick"),
                            cursor=context.cursor)
    span = impact.span(first, last)
    if span is None:
        return SensorResult(skip_reason=SkipReason("nothing new in the landing zone, nothing left to do"),
                            cursor=cursor.encode())
    files = sorted(f"{f.path}@{f.etag}" for fs in new.values() for f in fs)
    attempt = max([cursor.requested[p][2] for fs in new.values() for p in (f.path for f in fs)
                   if p in cursor.requested] or [0])
    run_key = hashlib.sha256("\n".join([*files, *impact.reasons, str(attempt)]).encode()).hexdigest()[:20]
    for fs in new.values():
        for f in fs:
            cursor.requested[f.path] = [f.etag, run_key, attempt]
    keys = impact.keys()
    if any(k.path[0] == "bronze" for k in keys):
        keys = sorted({*keys, *BRONZE_LEDGER}, key=lambda k: k.to_user_string())  # rows go with their ledger
    graph = context.repository_def.asset_graph
    reason = "; ".join(impact.reasons) or "new landing files"
    context.log.info(f"requesting a run over {span[0]}...{span[1]} for {len(keys)} assets: {reason}")
    request = RunRequest(
        run_key=run_key,
        asset_selection=keys,
        asset_check_keys=sorted(graph.get_check_keys_for_assets(set(keys)), key=str),
        tags={**range_tags(*span), MODE_TAG: "changes", LANDED_BEFORE_TAG: now.isoformat(),
              TRIGGER_TAG: "landing_sensor", REASON_TAG: reason[:200],
              "lakehouse/new_files": str(len(files)), "lakehouse/records_read": str(impact.records_read)},
    )
    return SensorResult(run_requests=[request], cursor=cursor.encode())


def _new_files(context, cursor: Cursor, listing, ingested, store, now) -> dict[str, list[LandingFile]]:
    """Settled files the manifest does not have (or has with other content), not already
    requested; a requested file whose run failed is requested again, up to MAX_ATTEMPTS."""
    cutoff = now.timestamp() - settings().settle_seconds
    failed = _failed_run_keys(context, {e[1] for e in cursor.requested.values()})
    sha = content_sha(store)
    out = {}
    for table, files in listing.items():
        known = ingested.get(table, {})
        candidates = []
        for f in files:
            if f.modified > cutoff or cursor.relanded.get(f.path) == f.etag:
                continue
            asked = cursor.requested.get(f.path)
            if asked and asked[0] == f.etag and (asked[1] not in failed or asked[2] + 1 >= MAX_ATTEMPTS):
                continue
            if asked and asked[1] in failed:
                cursor.requested[f.path] = [f.etag, asked[1], asked[2] + 1]
            candidates.append(f)
        classified = classify(candidates, known, sha)
        cursor.relanded.update({f.path: f.etag for f in classified.relanded})
        if classified.new or classified.changed:
            out[table] = classified.new + classified.changed
    return out


def _failed_run_keys(context: SensorEvaluationContext, run_keys: set[str]) -> set[str]:
    if not run_keys:
        return set()
    runs = context.instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED],
                                                tags={TRIGGER_TAG: "landing_sensor"}), limit=100)
    return {r.tags.get("dagster/run_key") for r in runs} & run_keys


def build_landing_sensor(tables: tuple[SourceTable, ...]):
    @sensor(
        name="landing_sensor",
        description=(
            "Watches LAKEHOUSE_LANDING_URI for new DMS files (and for work earlier runs left) and "
            "requests one run refreshing exactly the bronze, silver and gold partitions they make stale."
        ),
        minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
        default_status=DefaultSensorStatus.RUNNING,
        target=AssetSelection.all(),
    )
    def landing_sensor(context: SensorEvaluationContext, landing: LandingZone, warehouse: Warehouse):
        return tick(context, landing, warehouse, tables)

    return landing_sensor


landing_sensor = build_landing_sensor(SOURCE_TABLES)
__all__ = ["Impact", "landing_sensor", "tick"]
