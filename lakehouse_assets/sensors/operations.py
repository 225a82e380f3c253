"""Running the lakehouse day to day: a daily refresh for days without CDC, gold freshness
against the landing zone, and run failures made visible."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from dagster import (
    AssetCheckEvaluation,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    AssetSelection,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunRequest,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SensorResult,
    multi_asset_check,
    run_failure_sensor,
    schedule,
    sensor,
)

from lakehouse_assets.assets.gold import gold_key
from lakehouse_assets.gold import GOLD_TABLES
from lakehouse_assets.landing.files import LandingStore
from lakehouse_assets.partitions import first_partition
from lakehouse_assets.resources.landing import LandingZone
from lakehouse_assets.runs import RANGE_END_TAG, RANGE_START_TAG, range_tags
from lakehouse_assets.settings import settings
from lakehouse_assets.sources import SOURCE_TABLES

FRESHNESS_CHECK = "fresh_against_landing"


def freshness_threshold() -> timedelta:
    return timedelta(minutes=settings().freshness_minutes)


@schedule(
    name="daily_refresh",
    cron_schedule="30 0 * * *",
    execution_timezone="UTC",
    target=AssetSelection.all(),
    default_status=DefaultScheduleStatus.RUNNING,
    description=(
        "Every day at 00:30 UTC: yesterday and today for every asset, so days without CDC "
        "still get the gold rows the contract says exist (subscription_mrr, segments)."
    ),
)
def daily_refresh(context: ScheduleEvaluationContext):
    today = context.scheduled_execution_time.astimezone(timezone.utc).date()
    first = max(today - timedelta(days=1), first_partition())
    return RunRequest(run_key=f"daily_refresh_{today}", tags=range_tags(first, today))


def newest_landing(store: LandingStore) -> datetime | None:
    times = [f.modified for t in SOURCE_TABLES for f in store.list_files(t.landing_folder)[0]]
    return datetime.fromtimestamp(max(times), timezone.utc) if times else None


def freshness(instance, landed: datetime | None, key: AssetKey) -> tuple[bool, dict]:
    """Gold is stale when the newest landed file is newer than its last materialization by
    more than the threshold (LAKEHOUSE_FRESHNESS_MINUTES, default 15)."""
    event = instance.get_latest_materialization_event(key)
    updated = datetime.fromtimestamp(event.timestamp, timezone.utc) if event else None
    lag = (landed - updated) if landed and updated else None
    fresh = landed is None or (lag is not None and lag <= freshness_threshold())
    return fresh, {
        "newest_landed_file": str(landed),
        "last_materialized": str(updated),
        "lag_seconds": round(lag.total_seconds(), 1) if lag is not None else None,
        "threshold_minutes": freshness_threshold().total_seconds() / 60,
    }


@multi_asset_check(
    name="gold_freshness",
    specs=[
        AssetCheckSpec(
            name=FRESHNESS_CHECK,
            asset=gold_key(t),
            description="WARN when the newest landing file is newer than this table by more "
            "than LAKEHOUSE_FRESHNESS_MINUTES (default 15); also evaluated every minute by a sensor",
        )
        for t in GOLD_TABLES
    ],
    can_subset=True,  # a run refreshing some gold tables checks those
)
def gold_freshness(context, landing: LandingZone):
    """One step for every gold table's check: the landing zone is listed once."""
    landed = newest_landing(landing.store())
    for check_key in sorted(context.selected_asset_check_keys):
        fresh, metadata = freshness(context.instance, landed, check_key.asset_key)
        yield AssetCheckResult(
            asset_key=check_key.asset_key,
            check_name=check_key.name,
            passed=fresh,
            severity=AssetCheckSeverity.WARN,
            metadata=metadata,
        )


freshness_checks = [gold_freshness]


@sensor(
    name="gold_freshness_sensor",
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="Evaluates the gold freshness checks against the landing zone every minute.",
)
def gold_freshness_sensor(context: SensorEvaluationContext, landing: LandingZone):
    landed = newest_landing(landing.store())
    events = []
    for table in GOLD_TABLES:
        fresh, metadata = freshness(context.instance, landed, gold_key(table))
        events.append(
            AssetCheckEvaluation(
                asset_key=gold_key(table),
                check_name=FRESHNESS_CHECK,
                passed=fresh,
                metadata={k: v for k, v in metadata.items() if v is not None},
                severity=AssetCheckSeverity.WARN,
            )
        )
    return SensorResult(asset_events=events)


@run_failure_sensor(
    name="run_failure_report",
    default_status=DefaultSensorStatus.RUNNING,
    description="Logs every failed run with its failed steps, so failures show on this sensor.",
)
def run_failure_report(context: RunFailureSensorContext):
    failed = [e.step_key for e in context.get_step_failure_events()]
    context.log.error(
        f"run {context.dagster_run.run_id} ({context.dagster_run.job_name}) failed; "
        f"steps: {', '.join(failed) or 'none (failed before any step)'}; "
        f"partitions: {context.dagster_run.tags.get(RANGE_START_TAG, '-')}"
        f"...{context.dagster_run.tags.get(RANGE_END_TAG, '-')}; "
        f"{context.failure_event.message}"
    )


