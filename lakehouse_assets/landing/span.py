"""The span of dates a landing zone needs: its earliest business date to its latest commit date,
or to the latest day a CDC file is named after if that is later (DMS names the file it closes at
midnight a few seconds into the next day).

    lakehouse-span data/landing      ->  2024-09-01...2024-12-11

That is the `--partition-range` that rebuilds the whole zone (CONTRACT section 6: it covers the
earliest business date and the latest commit date), clamped to the partitions that exist
(LAKEHOUSE_PARTITIONS_START). It ends where the landing sensor's runs end: they reach a file's
name day too, and a day that a run materializes holds every row a backfill of it would.
"""

from __future__ import annotations

import sys
from datetime import date, datetime, timezone

from lakehouse_assets.landing.files import LocalLandingStore, newest_name_day
from lakehouse_assets.landing.reader import read_table
from lakehouse_assets.settings import settings
from lakehouse_assets.sources import SOURCE_TABLES
from lakehouse_assets.values import parse_sql, quote_ident, run_sql


def landing_span(root: str) -> tuple[date, date] | None:
    store = LocalLandingStore(root)
    firsts: list[date] = []
    lasts: list[date] = []
    now = datetime.now(timezone.utc)
    for table in SOURCE_TABLES:
        changes = read_table(store, table, now).changes
        if changes.is_empty():
            continue
        col = table.column(table.partition_column)
        business = run_sql(
            f"SELECT min(CAST({parse_sql(quote_ident(col.name), col.type)} AS DATE)) AS d "
            "FROM changes",
            changes=changes.select(col.name),
        )["d"][0]
        if business is not None:
            firsts.append(business)
        lasts.append(changes["_commit_ts"].max().date())
        firsts.append(changes["_commit_ts"].min().date())
    if not lasts:
        return None
    named = newest_name_day(store, SOURCE_TABLES)
    return max(min(firsts), settings().partitions_start), max(d for d in (*lasts, named) if d is not None)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    root = args[0] if args else "data/landing"
    span = landing_span(root)
    if span is None:
        print(f"no landing records under {root}", file=sys.stderr)
        return 1
    print(f"{span[0]}...{span[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
