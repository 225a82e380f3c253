#!/usr/bin/env bash
# The main job on the embedded default: set up, generate the sample DMS landing zone if it is
# missing (ending yesterday, so the UI's default last-90-days view shows it), and open the
# Dagster UI (webserver + daemon, sensors on) on http://127.0.0.1:$PORT (default 3000).
# The landing sensor's first tick materializes every bronze/silver/gold partition of the zone
# in one run; every file dropped into the landing zone afterwards refreshes what it changes.
#   SCALE=0.1 bash scripts/run.sh    a smaller sample (default 1: the source's volume)
#   PORT=3001 bash scripts/run.sh    another port
#   BACKFILL=1 bash scripts/run.sh   backfill from the command line first
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

export DAGSTER_HOME="${DAGSTER_HOME:-$PWD/data/dagster_home}"
export LAKEHOUSE_LANDING_URI="${LAKEHOUSE_LANDING_URI:-data/landing}"
export LAKEHOUSE_DUCKDB_PATH="${LAKEHOUSE_DUCKDB_PATH:-data/warehouse/lakehouse.duckdb}"
PORT="${PORT:-3000}"
# Dagster writes a run's asset events in batches only when this is set, in every process
# that writes events (dagster dev passes it on to all it starts); data/dagster_home's event log
# then stores each batch in one transaction (lakehouse_instance/sqlite_event_log.py).
export DAGSTER_EVENT_BATCH_SIZE="${DAGSTER_EVENT_BATCH_SIZE:-1000}"
mkdir -p "$DAGSTER_HOME"
[ -f "$DAGSTER_HOME/dagster.yaml" ] || cp data/dagster_home/dagster.yaml "$DAGSTER_HOME/"
PY=.venv/bin/python
START_FILE="$LAKEHOUSE_LANDING_URI/.partitions-start"

if [ ! -d "$LAKEHOUSE_LANDING_URI/public" ]; then
  # Ten days of CDC ending yesterday, after 91 days of business history before the load.
  LOAD=$(date -u -d "yesterday - 9 days" +%F)
  echo "== generating the sample landing zone in $LAKEHOUSE_LANDING_URI (scale ${SCALE:-1}, load $LOAD)"
  .venv/bin/lakehouse-generate --root "$LAKEHOUSE_LANDING_URI" --scale "${SCALE:-1}" --load-date "$LOAD"
  date -u -d "$LOAD - 91 days" +%F > "$START_FILE"
fi
if [ -z "${LAKEHOUSE_PARTITIONS_START:-}" ]; then
  # Partitions start at the zone's first day: the UI shows its days, not years of empty ones.
  [ -f "$START_FILE" ] || $PY -m lakehouse_assets.landing.span "$LAKEHOUSE_LANDING_URI" | cut -d. -f1 > "$START_FILE"
  export LAKEHOUSE_PARTITIONS_START=$(cat "$START_FILE")
fi

if [ -n "${BACKFILL:-}" ] && [ ! -f "$LAKEHOUSE_DUCKDB_PATH" ]; then
  # Optional: backfill from the command line before the UI starts. By default the landing
  # sensor does it: its first tick finds every file new and requests one run for the span.
  RANGE=$($PY -m lakehouse_assets.landing.span "$LAKEHOUSE_LANDING_URI")
  echo "== backfilling $RANGE into $LAKEHOUSE_DUCKDB_PATH (one run)"
  .venv/bin/dagster asset materialize -m lakehouse_assets.definitions --select '*' \
    --partition-range "$RANGE"
fi

echo "== Dagster UI on http://127.0.0.1:$PORT (partitions from $LAKEHOUSE_PARTITIONS_START; Ctrl-C stops it)"
exec .venv/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p "$PORT"
