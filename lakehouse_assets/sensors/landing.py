"""The landing sensor: new DMS files in, one run that refreshes what they make stale.

Its cursor is the set of files it has seen, each with a fingerprint (size + ETag, or size +
mtime locally) and a content checksum. A set, not a high-water mark: a file that lands out of
name order, in the same second as another, or while a tick runs is new until a tick has seen
it. A file seen before with the same checksum (DMS re-delivering it under the same name) is
nothing new. Downstream propagation is the sensor's own run request rather than declarative
automation: silver reads every bronze partition (AllPartitionMapping), so an eager condition
would rebuild every silver and gold day on any change, while the sensor knows from the changed
keys exactly which days are stale (see impact.py).

The cursor also keeps a fingerprint of every table's declaration. When a declaration changes
(a column is added after schema drift, a rule changes), every file of that table is new again:
the records that were rejected for drift are read again and the table's silver and gold are
rebuilt with the new declaration, with no command to run.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import zlib
from collections import defaultdict
from datetime import date

from dagster import (
    AssetSelection,
    DefaultSensorStatus,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from lakehouse_assets.assets.bronze import REJECTS_KEY, bronze_key
from lakehouse_assets.landing.files import LandingFile, LandingStore
from lakehouse_assets.partitions import daily_partitions
from lakehouse_assets.resources.landing import LandingZone
from lakehouse_assets.sensors.impact import compute_impact
from lakehouse_assets.sources import SOURCE_TABLES, SourceTable

SENSOR_INTERVAL_SECONDS = 15


def encode_cursor(state: dict) -> str:
    """The seen-file set and the declarations, compressed: hundreds of paths fit in a few
    kilobytes."""
    raw = json.dumps(state, sort_keys=True, separators=(",", ":")).encode()
    return "z1:" + base64.b64encode(zlib.compress(raw, 9)).decode()


def decode_cursor(cursor: str | None) -> dict:
    """{"files": {path: {etag, size, sha}}, "declarations": {table: fingerprint}}."""
    if not cursor:
        return {"files": {}, "declarations": {}}
    raw = zlib.decompress(base64.b64decode(cursor[3:])) if cursor.startswith("z1:") else cursor
    state = json.loads(raw)
    if "files" not in state:  # a cursor of before the declarations were kept
        state = {"files": state, "declarations": None}
    return state


def fingerprint(table: SourceTable) -> str:
    """Of everything a table's declaration says (columns, types, rules, layout)."""
    text = json.dumps(dataclasses.asdict(table), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def checksum(store: LandingStore, file: LandingFile) -> str:
    """Content checksum: the store's own (sha256 locally, the ETag on S3), else sha256."""
    own = getattr(store, "checksum", None)
    return own(file) if own is not None else hashlib.sha256(store.read_bytes(file)).hexdigest()


def scan(
    store: LandingStore, seen: dict[str, dict], tables: tuple[SourceTable, ...] = SOURCE_TABLES,
    redeclared: frozenset[str] = frozenset(),
) -> tuple[dict[str, set[str]], dict[str, dict]]:
    """New files per table, and the seen files after this scan (files that are gone drop out).
    Every file of a `redeclared` table is new."""
    new: dict[str, set[str]] = defaultdict(set)
    now_seen: dict[str, dict] = {}
    for table in tables:
        files, _ignored = store.list_files(table.landing_folder)
        for f in files:
            if table.name in redeclared:
                new[table.name].add(f.path)
            before = seen.get(f.path)
            if before and before["etag"] == f.etag and before["size"] == f.size:
                now_seen[f.path] = before
                continue
            try:
                digest = checksum(store, f)
            except OSError:
                continue  # vanished between listing and reading: the next tick decides
            now_seen[f.path] = {"etag": f.etag, "size": f.size, "sha": digest}
            if before and before.get("sha") == digest:
                continue  # landed again, same content: not new data
            new[table.name].add(f.path)
    return dict(new), now_seen


def run_for(
    new: dict[str, set[str]], store: LandingStore, context, first_tick: bool,
    tables: tuple[SourceTable, ...] = SOURCE_TABLES, redeclared: frozenset[str] = frozenset(),
) -> RunRequest | None:
    by_name = {t.name: t for t in tables}
    impact = compute_impact(store, new, by_name)
    for name in redeclared:  # what the old declaration rejected is rewritten too
        impact.add(REJECTS_KEY, impact.dates.get(bronze_key(by_name[name]), set()))
    if first_tick:  # create the rejects table along with bronze, even when nothing is rejected
        impact.add(REJECTS_KEY, [d for k, v in list(impact.dates.items()) if k.path[0] == "bronze" for d in v])
    first = date.fromisoformat(daily_partitions.get_first_partition_key())
    last = date.fromisoformat(daily_partitions.get_last_partition_key())
    newest = {}
    for key in impact.from_date:
        done = context.instance.get_materialized_partitions(key)
        if done:
            newest[key] = date.fromisoformat(max(done))
    span = impact.span(first, last, newest)
    if span is None:
        return None
    keys = sorted(impact.keys(), key=lambda k: k.to_user_string())
    graph = context.repository_def.asset_graph
    checks = sorted(graph.get_check_keys_for_assets(set(keys)), key=str)
    files = sorted(p for paths in new.values() for p in paths)
    declared = sorted(f"{t.name}:{fingerprint(t)}" for t in tables if t.name in redeclared)
    run_key = hashlib.sha256("\n".join([*files, *declared]).encode()).hexdigest()[:20]
    return RunRequest(
        run_key=run_key,
        asset_selection=keys,
        asset_check_keys=checks,
        tags={
            ASSET_PARTITION_RANGE_START_TAG: span[0].isoformat(),
            ASSET_PARTITION_RANGE_END_TAG: span[1].isoformat(),
            "lakehouse/trigger": "landing_sensor",
            "lakehouse/new_files": str(len(files)),
            **({"lakehouse/redeclared": ",".join(sorted(redeclared))} if redeclared else {}),
        },
    )


def build_landing_sensor(tables: tuple[SourceTable, ...]) -> SensorDefinition:
    @sensor(
        name="landing_sensor",
        description=(
            "Watches LAKEHOUSE_LANDING_URI for new DMS files (and changed table declarations) and "
            "requests one run refreshing the bronze, silver and gold partitions they make stale."
        ),
        minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
        default_status=DefaultSensorStatus.RUNNING,
        target=AssetSelection.all(include_sources=False),
    )
    def landing_sensor(context: SensorEvaluationContext, landing: LandingZone):
        store = landing.store()
        state = decode_cursor(context.cursor)
        declarations = {t.name: fingerprint(t) for t in tables}
        before = state["declarations"]
        redeclared = frozenset(
            name for name, fp in declarations.items() if before is not None and before.get(name, fp) != fp
        )
        if redeclared:
            context.log.info(f"declarations changed: {', '.join(sorted(redeclared))}; their files are read again")
        new, now_seen = scan(store, state["files"], tables, redeclared)
        cursor = encode_cursor({"files": now_seen, "declarations": declarations})
        if not new:
            return SensorResult(skip_reason=SkipReason("no new landing files"), cursor=cursor)
        count = sum(len(p) for p in new.values())
        context.log.info(f"{count} new landing files: " + ", ".join(f"{t} {len(p)}" for t, p in new.items()))
        request = run_for(new, store, context, first_tick=not state["files"], tables=tables, redeclared=redeclared)
        if request is None:
            return SensorResult(skip_reason=SkipReason(f"{count} new files, no records"), cursor=cursor)
        return SensorResult(run_requests=[request], cursor=cursor)

    return landing_sensor


landing_sensor = build_landing_sensor(SOURCE_TABLES)
