"""The span of dates a landing zone needs: its earliest business date to its latest commit date.

    lakehouse-span data/landing      ->  2024-09-01...2024-12-10

That is the `--partition-range` that rebuilds the whole zone (CONTRACT section 6), clamped to
the partitions that exist (LAKEHOUSE_PARTITIONS_START).
"""

from __future__ import annotations

import sys
from datetime import date, datetime, timezone

from lakehouse_assets.landing.files import LocalLandingStore
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
    return max(min(firsts), settings().partitions_start), max(lasts)


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
